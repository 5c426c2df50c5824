// Command supervised shows crash isolation by process.
//
// A parent supervises three worker processes (Erlang's one_for_one). Each
// worker serves requests with a weave scheduler of two threads, one task per
// request, its Conn read and written through socket.Proc. One request is
// poisoned: the worker that gets it fails, and only that process goes down.
// The supervisor restarts it, and meanwhile the other two keep answering.
//
//	go run ./examples/supervised
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/weavert/weave/proc"
	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/socket"
)

func init() {
	proc.Register("worker", worker)
}

func main() {
	proc.Main() // in a worker process, run the worker and exit
	if err := run(os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "supervised:", err)
		os.Exit(1)
	}
}

// worker serves its parent: each request is a line of text, answered with
// the line in upper case, by a task of its own. The request "poison" makes the
// worker fail, as a bug that a request triggers would.
func worker(ctx context.Context, c *proc.Conn) error {
	s := sched.New(sched.Threads(2))
	return s.Run(func(t *sched.Task) error {
		// Through socket.Proc, a Recv or a Send that must wait parks its
		// task on the scheduler's poller: no thread blocks in the Conn.
		pc, err := socket.Proc(t, c)
		if err != nil {
			return err
		}
		var replies sched.WaitGroup
		defer func() {
			replies.Wait(t)
			pc.Close()
		}()
		for {
			msg, err := pc.Recv(t)
			if errors.Is(err, io.EOF) {
				return nil // the parent hung up
			}
			if err != nil {
				return err
			}
			if string(msg) == "poison" {
				return errors.New("poisoned request")
			}
			replies.Go(t, func(t *sched.Task) error {
				return pc.Send(t, []byte(fmt.Sprintf("%d: %s", os.Getpid(), strings.ToUpper(string(msg)))))
			})
		}
	})
}

// run supervises three workers, sends each a request, poisons one, and shows
// that the others answered while it was restarted, and that it serves again.
func run(out, logs io.Writer) error {
	var children []proc.Child
	for _, name := range []string{"w1", "w2", "w3"} {
		children = append(children, proc.Child{
			Name:     name,
			Spec:     proc.Spec{Entry: "worker", Stderr: io.Discard},
			Restart:  proc.Permanent,
			Shutdown: time.Second,
		})
	}
	sup := proc.NewSupervisor(proc.OneForOne, children...)
	sup.Logger = slog.New(slog.NewTextHandler(logs, nil))
	type incarnation struct {
		name string
		p    *proc.Process
	}
	started := make(chan incarnation, 8)
	sup.Started = func(child string, p *proc.Process) { started <- incarnation{child, p} }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	workers := map[string]*proc.Process{}
	for range 3 {
		w := <-started
		workers[w.name] = w.p
	}
	ask := func(name, req string) error {
		p := workers[name]
		if err := p.Conn().Send([]byte(req)); err != nil {
			return err
		}
		reply, err := p.Conn().Recv()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(out, "%s answered %q\n", name, after(reply))
		return nil
	}
	for _, name := range []string{"w1", "w2", "w3"} {
		if err := ask(name, "hello from "+name); err != nil {
			return err
		}
	}

	// Poison w2. Its process fails; w1 and w3 are other processes, and go on.
	w2 := workers["w2"]
	w2.Conn().Send([]byte("poison"))
	if _, err := w2.Conn().Recv(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("w2 after the poison: %v, want EOF", err)
	}
	fmt.Fprintln(out, "w2 crashed on the poisoned request")
	for _, name := range []string{"w1", "w3"} {
		if err := ask(name, "still here?"); err != nil {
			return err
		}
	}

	// The supervisor has restarted w2 as a new process.
	w := <-started
	if w.name != "w2" || w.p.PID() == w2.PID() {
		return fmt.Errorf("restarted %s (pid %d), want a new w2", w.name, w.p.PID())
	}
	workers["w2"] = w.p
	fmt.Fprintln(out, "w2 was restarted in a new process")
	return ask("w2", "back again")
}

// after drops the "pid: " prefix of a reply, which differs from run to run.
func after(reply []byte) string {
	_, text, _ := strings.Cut(string(reply), ": ")
	return text
}
