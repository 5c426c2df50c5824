package sched_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
)

// recorder is a Tracer that logs events as text.
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.log = append(r.log, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func id(t *sched.Task) any {
	if t == nil {
		return "-"
	}
	return t.ID()
}

func (r *recorder) Spawn(t, parent *sched.Task)  { r.add("spawn %v by %v", id(t), id(parent)) }
func (r *recorder) Resume(t *sched.Task, th int) { r.add("resume %v on %d", id(t), th) }
func (r *recorder) Park(t *sched.Task, why string) {
	r.add("park %v: %.8s", id(t), why)
}
func (r *recorder) Wake(t, by *sched.Task)      { r.add("wake %v by %v", id(t), id(by)) }
func (r *recorder) Done(t *sched.Task, _ error) { r.add("done %v", id(t)) }

func TestTracer(t *testing.T) {
	var r recorder
	err := sched.New(sched.Threads(1), sched.WithTracer(&r)).Run(func(task *sched.Task) error {
		ch := sched.NewChan[int](0)
		task.Go(func(task *sched.Task) error {
			ch.Send(task, 1)
			return nil
		})
		ch.Recv(task)
		task.Go(func(*sched.Task) error { return nil })
		task.Yield() // not alone: task 3 runs
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"spawn 1 by -",
		"resume 1 on 0",
		"spawn 2 by 1",
		"park 1: *sched.C", // Recv
		"resume 2 on 0",
		"wake 1 by 2",
		"done 2",
		"resume 1 on 0",
		"spawn 3 by 1",
		"park 1: yield",
		"resume 3 on 0",
		"done 3",
		"resume 1 on 0",
		"done 1",
	}
	if !slices.Equal(r.log, want) {
		t.Fatalf("events:\n%q\nwant:\n%q", r.log, want)
	}
}

// A Yield with nothing else to run returns without a switch: the task is
// resumed once, however often it yields.
func TestYieldAloneDoesNotSwitch(t *testing.T) {
	var r recorder
	err := sched.New(sched.Threads(1), sched.WithTracer(&r)).Run(func(task *sched.Task) error {
		for range 1000 {
			task.Yield()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"spawn 1 by -", "resume 1 on 0", "done 1"}; !slices.Equal(r.log, want) {
		t.Fatalf("events %q, want %q", r.log, want)
	}
}

// A tracer on several threads, with tasks parking on every primitive: its
// reasons are built while other tasks use the primitives (run with -race).
func TestTracerConcurrent(t *testing.T) {
	var r recorder
	err := sched.New(sched.Threads(4), sched.WithTracer(&r)).Run(func(task *sched.Task) error {
		ch := sched.NewChan[int](2)
		var mu sched.Mutex
		var wg sched.WaitGroup
		for i := range 20 {
			wg.Go(task, func(task *sched.Task) error {
				for j := range 50 {
					if i%2 == 0 {
						ch.Send(task, j)
					} else {
						ch.Recv(task)
					}
					mu.Lock(task)
					task.Yield()
					mu.Unlock()
				}
				return nil
			})
		}
		wg.Wait(task)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A Sleep ended by its context leaves no timer behind: a task alone on its
// thread then yields without a switch, as it did before the sleep.
func TestCancelledSleepLeavesNoTimer(t *testing.T) {
	var r recorder
	err := sched.New(sched.Threads(1), sched.WithTracer(&r)).Run(func(task *sched.Task) error {
		g := sched.NewGroup(task)
		g.Go(task, func(task *sched.Task) error { return task.Sleep(time.Hour) })
		g.Go(task, func(task *sched.Task) error { return errStop })
		if err := g.Wait(task); !errors.Is(err, errStop) {
			t.Errorf("Wait = %v", err)
		}
		r.add("mark")
		for range 10 {
			task.Yield()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after := r.log[slices.Index(r.log, "mark"):]
	for _, e := range after {
		if strings.HasPrefix(e, "park 1: yield") {
			t.Fatalf("the main task switched on a Yield with nothing else to run: %q", after)
		}
	}
}

var errStop = errors.New("stop")
