package sched_test

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weavert/weave/sched"
)

// watchdogLimit is short, so that the tests are quick, but long enough that
// a healthy step never takes it, even on a busy machine: the tests look at
// what the report says, never at when it came.
const watchdogLimit = 250 * time.Millisecond

// stuck is a way for a task to keep its goroutine without giving control
// back to the scheduler, with the way to let it go.
type stuck struct {
	name   string
	status []string // the goroutine's, one of them, in its stack's first line
	hold   func() (run func(), release func())
}

var stuckWays = []stuck{
	{"spin", []string{"[running", "[runnable"}, func() (func(), func()) {
		var stop atomic.Bool
		return func() {
			for !stop.Load() {
			}
		}, func() { stop.Store(true) }
	}},
	{"Go channel", []string{"[chan receive"}, func() (func(), func()) {
		ch := make(chan struct{})
		return func() { <-ch }, func() { close(ch) }
	}},
	{"system call", []string{"[syscall"}, func() (func(), func()) {
		r, w, err := os.Pipe()
		if err != nil {
			panic(err)
		}
		fd := int(r.Fd()) // blocking: a read waits in the kernel, not in Go's poller
		return func() {
				unix.Read(fd, make([]byte, 1))
				r.Close()
			}, func() {
				w.Write([]byte{1})
				w.Close()
			}
	}},
}

// A task that keeps its goroutine ends the run with a report of it, at the
// watchdog's limit, rather than hanging Run. Once the task lets go, the run
// given up ends, and its goroutines with it.
func TestWatchdog(t *testing.T) {
	for _, way := range stuckWays {
		t.Run(way.name, func(t *testing.T) {
			hold, release := way.hold()
			s := sched.New(sched.Deterministic(first{}), sched.Watchdog(watchdogLimit))
			err := s.Run(func(t *sched.Task) error {
				t.GoNamed("stuck", func(t *sched.Task) error {
					t.Yield()
					hold()
					return nil
				})
				sched.NewChan[int](0).Recv(t) // parks for good
				return nil
			})
			release()
			var we *sched.WatchdogError
			if !errors.As(err, &we) || !errors.Is(err, sched.ErrWatchdog) {
				t.Fatalf("Run returned %v, want a *WatchdogError", err)
			}
			<-we.Ended()
			if we.ID != 2 || we.Name != "stuck" || we.Limit != watchdogLimit || we.Step != s.LastRun().Steps || we.Step < 2 {
				t.Fatalf("%+v, LastRun %+v", we, s.LastRun())
			}
			head, _, _ := bytes.Cut(we.Stack, []byte("\n"))
			if !bytes.HasPrefix(head, []byte("goroutine ")) || !slices.ContainsFunc(way.status, func(s string) bool { return bytes.Contains(head, []byte(s)) }) ||
				!bytes.Contains(we.Stack, []byte("sched_test.TestWatchdog.func")) {
				t.Fatalf("the stack of the task's goroutine:\n%s", we.Stack)
			}
			if msg := err.Error(); !strings.Contains(msg, "task 2 (stuck) ran for 250ms of real time without giving control back") || !strings.Contains(msg, string(head)) {
				t.Fatal(msg)
			}
		})
	}
}

// A deferred call that hangs while the end of the run unwinds its task is
// reported too.
func TestWatchdogDeferred(t *testing.T) {
	ch := make(chan struct{})
	s := sched.New(sched.Deterministic(first{}), sched.MaxSteps(10), sched.Watchdog(watchdogLimit))
	err := s.Run(func(t *sched.Task) error {
		t.GoNamed("yielder", func(t *sched.Task) error {
			defer func() { <-ch }()
			for {
				t.Yield()
			}
		})
		for {
			t.Yield()
		}
	})
	close(ch)
	var we *sched.WatchdogError
	if !errors.As(err, &we) {
		t.Fatalf("Run returned %v, want a *WatchdogError", err)
	}
	<-we.Ended()
	if we.ID != 2 || !bytes.Contains(we.Stack, []byte("[chan receive")) || !bytes.Contains(we.Stack, []byte("sched_test.TestWatchdogDeferred.func")) {
		t.Fatalf("%v", we)
	}
}

// A Chooser that does not return is the scheduler's fault, not the task's
// that ran before it.
func TestWatchdogChooser(t *testing.T) {
	for _, tt := range []struct {
		step int
		says string
	}{
		{1, "no step for 250ms of real time, before any task ran: a Chooser or a Tracer that does not return?"},
		{3, "after task 1 (main) ran from step 2 (virtual time +0s) and gave control back: a Chooser or a Tracer that does not return?"},
	} {
		ch := make(chan struct{})
		s := sched.New(sched.Deterministic(&blockAt{step: tt.step, ch: ch}), sched.Watchdog(watchdogLimit))
		err := s.Run(func(t *sched.Task) error {
			for range 5 {
				t.Yield()
			}
			return nil
		})
		close(ch)
		var we *sched.WatchdogError
		if !errors.As(err, &we) {
			t.Fatalf("Run returned %v, want a *WatchdogError", err)
		}
		<-we.Ended()
		if !strings.Contains(we.Error(), tt.says) || !bytes.Contains(we.Stack, []byte("sched_test.(*blockAt).Choose")) {
			t.Fatalf("step %d: %v", tt.step, we)
		}
	}
}

// A watched run that ends returns its own result, however long it takes in
// virtual time.
func TestWatchdogQuiet(t *testing.T) {
	s := sched.New(sched.Deterministic(first{}), sched.Watchdog(time.Hour))
	err := s.Run(func(t *sched.Task) error {
		t.GoNamed("sleeper", func(t *sched.Task) error {
			t.Sleep(time.Hour)
			return errors.New("woke")
		})
		return nil
	})
	var te *sched.TaskError
	if !errors.As(err, &te) || te.Name != "sleeper" || errors.Is(err, sched.ErrWatchdog) || s.LastRun().Virtual != time.Hour {
		t.Fatalf("Run returned %v, %+v", err, s.LastRun())
	}
}

// first chooses the first runnable task.
type first struct{}

func (first) Choose([]*sched.Task) int { return 0 }

// blockAt chooses the first runnable task, and blocks on ch at its step.
type blockAt struct {
	n, step int
	ch      chan struct{}
}

func (b *blockAt) Choose([]*sched.Task) int {
	if b.n++; b.n == b.step {
		<-b.ch
	}
	return 0
}
