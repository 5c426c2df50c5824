package inspect_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/weavert/weave/inspect"
	"github.com/weavert/weave/proc"
	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/socket"
)

// Tasks talk to a child through Peers that tasks read on both sides: the
// messages go both ways with their arrows, snapshots and traces span both
// processes, and the end of the child's stream ends the reading task.
func TestTaskPeers(t *testing.T) {
	p, err := proc.Start(context.Background(), proc.Spec{Entry: "tasked"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Wait()
	defer p.Kill() // if the test fails before the child ends
	rec := inspect.NewRecorder(inspect.Config{Name: "parent", Threads: 2, Timeline: true})
	defer rec.Close()
	var kid inspect.ChildProcess
	var self inspect.Scheduler
	var trace bytes.Buffer
	var recvPanic any
	err = sched.New(sched.Threads(2), sched.WithTracer(rec)).Run(func(task *sched.Task) error {
		peer, err := inspect.ChildTask(task, "kid", p)
		if err != nil {
			return err
		}
		defer peer.Close()
		echo := func(m string) error {
			if err := peer.SendFrom(task, []byte(m)); err != nil {
				return err
			}
			got, err := peer.RecvTask(task)
			if err != nil || string(got) != m {
				return fmt.Errorf("sent %q, got %q back (%v)", m, got, err)
			}
			return nil
		}
		if err := echo("one"); err != nil {
			return err
		}
		// The child's main task parks in RecvTask moments after it
		// echoed: ask until it has.
		for try := 0; ; try++ {
			tree, _ := sched.Await(task, func(ctx context.Context) (*inspect.Tree, error) {
				return inspect.Snapshot(ctx, inspect.Options{}), nil
			})
			self, kid = tree.Process.Schedulers[0], tree.Process.Children[0]
			if kid.Process == nil || try == 1000 {
				break
			}
			if main, _ := taskNamed(kid.Process.Schedulers[0], "main"); main.State == "parked" {
				break
			}
		}
		if _, err := sched.Await(task, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, inspect.WriteTrace(ctx, &trace)
		}); err != nil {
			return err
		}
		func() {
			defer func() { recvPanic = recover() }()
			peer.Recv()
		}()
		if err := echo("bye"); err != nil {
			return err
		}
		if m, err := peer.RecvTask(task); !errors.Is(err, io.EOF) {
			return fmt.Errorf("RecvTask after the child closed: %q, %v; want io.EOF", m, err)
		}
		return nil // the reading task has ended: so does the run
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); err != nil {
		t.Errorf("the child: %v", err)
	}

	if kid.Process == nil {
		t.Fatalf("no snapshot of the child: %s", kid.Error)
	}
	sc := kid.Process.Schedulers[0]
	main, _ := taskNamed(sc, "main")
	reader, ok := taskNamed(sc, "inspect peer parent")
	if main.State != "parked" || !strings.Contains(main.Wait, "sched.Chan") {
		t.Errorf("the child's main task = %+v, want parked on the Peer's messages", main)
	}
	if !ok || reader.State != "parked" || reader.Wait != "Await" {
		t.Errorf("the child's reading task = %+v, want parked in Await, answering this very snapshot", reader)
	}
	if _, ok := taskNamed(self, "inspect peer kid"); !ok {
		t.Errorf("no reading task in the parent's tree: %+v", self.Tasks)
	}
	tr := checkTrace(t, trace.Bytes())
	if !tr.pids[p.PID()] {
		t.Errorf("no events of the child (pid %d) in the trace", p.PID())
	}
	if tr.flows["msg"] != 2 {
		t.Errorf("%d message arrows, want 2: the parent's \"one\" and the child's", tr.flows["msg"])
	}
	if s, _ := recvPanic.(string); !strings.Contains(s, "RecvTask") {
		t.Errorf("Recv on a Peer a task reads: panic %v, want one that says to call RecvTask", recvPanic)
	}
}

// RecvTask on a Peer that its goroutine reads panics, and says what to
// call instead.
func TestRecvTaskMisuse(t *testing.T) {
	a, _ := connPair(t)
	peer := inspect.Parent(a)
	defer peer.Close()
	var v any
	sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		defer func() { v = recover() }()
		peer.RecvTask(task)
		return nil
	})
	if s, _ := v.(string); !strings.Contains(s, "call Recv") {
		t.Errorf("panic %v, want one that says to call Recv", v)
	}
}

// A snapshot says where each locked thread sleeps in the kernel: a thread
// with nothing to run, in a run that waits on a socket, waits in the
// scheduler's poller, in epoll_wait. The thread's TID is known once it has
// run a task, and the run has one thread, so that its only thread has; a
// goroutine outside the run takes the snapshots, then connects to end it.
func TestIdleThreadInPoller(t *testing.T) {
	rec := inspect.NewRecorder(inspect.Config{Name: "poller", Threads: 1, LockedThreads: true})
	defer rec.Close()
	addr := make(chan string, 1)
	found := make(chan []inspect.Thread, 1)
	go func() {
		a := <-addr
		var threads []inspect.Thread
		for try := 0; try < 10_000 && !anyInEpoll(threads); try++ {
			threads = nil
			tree := inspect.Snapshot(context.Background(), inspect.Options{})
			for _, s := range tree.Process.Schedulers {
				if s.Name == "poller" {
					threads = s.Threads
				}
			}
		}
		found <- threads
		if c, err := net.Dial("tcp", a); err == nil {
			c.Close()
		}
	}()
	err := sched.New(sched.Threads(1), sched.LockThreads(), sched.WithTracer(rec)).Run(func(task *sched.Task) error {
		l, err := socket.Listen(task, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		addr <- l.Addr().String()
		c, err := l.Accept(task)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	threads := <-found
	if !anyInEpoll(threads) {
		t.Errorf("the thread of a run waiting on a socket: %+v, want it idle in epoll_wait", threads)
	}
}

// anyInEpoll reports whether one of threads is idle, asleep in epoll_wait.
func anyInEpoll(threads []inspect.Thread) bool {
	for _, th := range threads {
		if th.State == "idle" && th.OSState == "S" && inEpoll(th.OSWait) {
			return true
		}
	}
	return false
}

// inEpoll reports whether wait, a wait channel, is epoll_wait's: the kernel
// names it do_epoll_wait, or ep_poll in other versions.
func inEpoll(wait string) bool {
	return strings.Contains(wait, "epoll") || strings.Contains(wait, "ep_poll")
}
