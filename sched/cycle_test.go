package sched_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/weavert/weave/sched"
)

func TestLockCycleSelf(t *testing.T) {
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		var mu sched.Mutex
		mu.Lock(task)
		mu.Lock(task)
		return nil
	})
	var ce *sched.LockCycleError
	if !errors.As(err, &ce) || !errors.Is(err, sched.ErrDeadlock) || len(ce.Cycle) != 1 {
		t.Fatalf("Run = %v, want a lock cycle of one", err)
	}
}

// Two tasks lock two mutexes in opposite orders. Whichever closes the cycle
// panics with both named; its deferred Unlock lets the other finish, and an
// unrelated task runs on throughout.
func TestLockCycleTwoTasks(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		finished := 0
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			var m1, m2, count sched.Mutex
			aHas, bHas := sched.NewChan[int](1), sched.NewChan[int](1)
			body := func(first, second *sched.Mutex, mine, theirs *sched.Chan[int]) func(*sched.Task) error {
				return func(task *sched.Task) error {
					first.Lock(task)
					defer first.Unlock()
					mine.Send(task, 1)
					theirs.Recv(task)
					second.Lock(task)
					second.Unlock()
					count.Lock(task)
					finished++
					count.Unlock()
					return nil
				}
			}
			task.GoNamed("a", body(&m1, &m2, aHas, bHas))
			task.GoNamed("b", body(&m2, &m1, bHas, aHas))
			stop := sched.NewChan[int](0)
			task.GoNamed("bystander", func(task *sched.Task) error {
				for {
					if _, _, ready := stop.TryRecv(task); ready {
						return nil
					}
					task.Yield()
				}
			})
			var wg sched.WaitGroup
			wg.Go(task, func(task *sched.Task) error {
				for {
					count.Lock(task)
					f := finished
					count.Unlock()
					if f > 0 {
						return nil
					}
					task.Yield()
				}
			})
			wg.Wait(task)
			stop.Close()
			return nil
		})
		var ce *sched.LockCycleError
		if !errors.As(err, &ce) || len(ce.Cycle) != 2 || finished != 1 {
			t.Fatalf("Run = %v; %d finished, want a cycle of two and 1", err, finished)
		}
		msg := err.Error()
		if !strings.Contains(msg, "(a)") || !strings.Contains(msg, "(b)") {
			t.Fatalf("the report does not name both tasks:\n%s", msg)
		}
	})
}
