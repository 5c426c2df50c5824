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

// cycleOf returns the lock cycle err holds, or fails the test.
func cycleOf(t *testing.T, err error, edges int) *sched.LockCycleError {
	t.Helper()
	var ce *sched.LockCycleError
	if !errors.As(err, &ce) || !errors.Is(err, sched.ErrDeadlock) || len(ce.Cycle) != edges {
		t.Fatalf("Run = %v, want a lock cycle of %d", err, edges)
	}
	return ce
}

// Cycles close through an RWMutex as through a Mutex: the Lock or RLock that
// would wait forever panics, naming every task and lock of the cycle.
func TestLockCycleRWMutex(t *testing.T) {
	t.Run("write lock while holding the read lock", func(t *testing.T) {
		err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
			var rw sched.RWMutex
			rw.RLock(task)
			defer rw.RUnlock(task)
			rw.Lock(task)
			return nil
		})
		ce := cycleOf(t, err, 1)
		if w := ce.Cycle[0]; w.Task != "1 (main)" || w.Holder != "1 (main)" || !strings.HasPrefix(w.Mutex, "sched.RWMutex") {
			t.Fatalf("cycle %+v", ce.Cycle)
		}
	})
	t.Run("recursive read lock with a writer between", func(t *testing.T) {
		forThreads(t, func(t *testing.T, n int) {
			err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
				var rw sched.RWMutex
				rw.RLock(task)
				defer rw.RUnlock(task)
				writing := sched.NewChan[int](0)
				task.GoNamed("writer", func(task *sched.Task) error {
					writing.Close()
					rw.Lock(task)
					rw.Unlock()
					return nil
				})
				writing.Recv(task)
				for rw.TryRLock(task) { // until the writer waits, and keeps readers out
					rw.RUnlock(task)
					task.Yield()
				}
				rw.RLock(task)
				return nil
			})
			ce := cycleOf(t, err, 2)
			if ce.Cycle[0].Task != "1 (main)" || ce.Cycle[0].Holder != "2 (writer)" || ce.Cycle[1].Holder != "1 (main)" {
				t.Fatalf("cycle %+v", ce.Cycle)
			}
		})
	})
	t.Run("through a Mutex and an RWMutex", func(t *testing.T) {
		forThreads(t, func(t *testing.T, n int) {
			err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
				var mu sched.Mutex
				var rw sched.RWMutex
				ready := sched.NewChan[int](0)
				task.GoNamed("reader", func(task *sched.Task) error {
					rw.RLock(task)
					defer rw.RUnlock(task)
					ready.Send(task, 1)
					ready.Send(task, 2)
					mu.Lock(task)
					mu.Unlock()
					return nil
				})
				task.GoNamed("locker", func(task *sched.Task) error {
					mu.Lock(task)
					defer mu.Unlock()
					ready.Recv(task)
					ready.Recv(task)
					rw.Lock(task)
					rw.Unlock()
					return nil
				})
				return nil
			})
			ce := cycleOf(t, err, 2)
			msg := ce.Error()
			if !strings.Contains(msg, "sched.Mutex") || !strings.Contains(msg, "sched.RWMutex") {
				t.Fatalf("the cycle does not name both locks:\n%s", msg)
			}
		})
	})
}

// A deadlock on an RWMutex names who holds it, for reading or for writing.
func TestDeadlockNamesRWMutexHolders(t *testing.T) {
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		var rw sched.RWMutex
		never := sched.NewChan[int](0)
		for _, name := range []string{"r1", "r2"} {
			task.GoNamed(name, func(task *sched.Task) error {
				rw.RLock(task)
				defer rw.RUnlock(task)
				never.Recv(task)
				return nil
			})
		}
		task.Yield()
		rw.Lock(task)
		return nil
	})
	if !errors.Is(err, sched.ErrDeadlock) || !strings.Contains(err.Error(), "RWMutex.Lock on *sched.RWMutex") ||
		!strings.Contains(err.Error(), "read-locked by tasks 2 (r1), 3 (r2)") && !strings.Contains(err.Error(), "read-locked by tasks 3 (r2), 2 (r1)") {
		t.Fatalf("Run = %v, want the readers named", err)
	}
}
