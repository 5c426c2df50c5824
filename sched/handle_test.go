package sched_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weavert/weave/coro"
	"github.com/weavert/weave/sched"
)

// Wait returns what the task returned, its value and error, as often as it
// is called; Run then does not report the error again.
func TestHandleWait(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		errOdd := errors.New("odd")
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			double := func(x int) *sched.Handle[int] {
				return sched.Spawn(task, func(task *sched.Task) (int, error) {
					task.Yield()
					if x%2 == 1 {
						return 0, errOdd
					}
					return 2 * x, nil
				})
			}
			h2, h3 := double(2), double(3)
			for range 2 {
				if v, err := h2.Wait(task); v != 4 || err != nil {
					return fmt.Errorf("Wait = %d, %v; want 4", v, err)
				}
			}
			if _, err := h3.Wait(task); !errors.Is(err, errOdd) {
				return fmt.Errorf("Wait = %v, want odd", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// An error nobody waited for is not lost: Run reports it. A panic comes out
// of Wait as a *coro.PanicError.
func TestHandleErrorNotTaken(t *testing.T) {
	errLost := errors.New("nobody asked")
	err := sched.New(sched.Threads(2)).Run(func(task *sched.Task) error {
		sched.SpawnNamed(task, "forgotten", func(*sched.Task) (int, error) { return 0, errLost })
		h := sched.Spawn(task, func(*sched.Task) (int, error) { panic("boom") })
		var pe *coro.PanicError
		if _, err := h.Wait(task); !errors.As(err, &pe) || pe.Value != "boom" {
			return fmt.Errorf("Wait = %v, want the panic", err)
		}
		return nil
	})
	if !errors.Is(err, errLost) || !strings.Contains(err.Error(), "task 2 (forgotten)") || strings.Contains(err.Error(), "boom") {
		t.Fatalf("Run = %v, want the forgotten task's error and not the panic Wait took", err)
	}
}

// Cancel ends the task's waits and those of the tasks it started; Wait then
// returns the context's error, and Run nothing: a cancelled task did not
// fail. A Wait whose own task is cancelled returns at once.
func TestHandleCancel(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			var children atomic.Int32
			h := sched.Spawn(task, func(task *sched.Task) (string, error) {
				var wg sched.WaitGroup
				for range 3 {
					wg.Go(task, func(task *sched.Task) error {
						defer children.Add(1)
						sched.NewChan[int](0).Recv(task)
						return nil
					})
				}
				wg.Wait(task)
				return "never", nil
			})
			task.Yield()
			h.Cancel()
			if v, err := h.Wait(task); v != "" || err != context.Canceled || children.Load() != 3 {
				return fmt.Errorf("Wait = %q, %v, %d children ended; want context.Canceled, 3", v, err, children.Load())
			}

			// A waiter cancelled while it waits gives up; the task goes on.
			slow := sched.Spawn(task, func(task *sched.Task) (int, error) { task.Sleep(time.Millisecond); return 7, nil })
			waiter := sched.Spawn(task, func(task *sched.Task) (int, error) { return slow.Wait(task) })
			task.Yield()
			waiter.Cancel()
			if _, err := waiter.Wait(task); err != context.Canceled {
				return fmt.Errorf("the cancelled waiter's Wait = %v", err)
			}
			if v, err := slow.Wait(task); v != 7 || err != nil {
				return fmt.Errorf("the slow task = %d, %v", v, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// With SetLimit(n), at most n tasks of the group's Go run at once; Go parks
// its caller until one ends, and TryGo refuses.
func TestGroupSetLimit(t *testing.T) {
	t.Run("virtual", func(t *testing.T) {
		took, err := virtual(func(task *sched.Task) error {
			g := sched.NewGroup(task)
			g.SetLimit(2)
			var mu sched.Mutex
			running, most := 0, 0
			for range 10 {
				g.Go(task, func(task *sched.Task) error {
					mu.Lock(task)
					running++
					most = max(most, running)
					mu.Unlock()
					task.Sleep(time.Microsecond)
					mu.Lock(task)
					running--
					mu.Unlock()
					return nil
				})
			}
			if err := g.Wait(task); err != nil {
				return err
			}
			if most != 2 {
				return fmt.Errorf("%d tasks ran at once, want 2", most)
			}
			g2 := sched.NewGroup(task)
			g2.SetLimit(1)
			release := sched.NewChan[int](0)
			if !g2.TryGo(task, func(task *sched.Task) error { release.Recv(task); return nil }) {
				return errors.New("TryGo under a free limit refused")
			}
			if g2.TryGo(task, func(*sched.Task) error { return nil }) {
				return errors.New("TryGo went past the limit")
			}
			release.Close()
			return g2.Wait(task)
		})
		// Ten sleeps of a microsecond, two at a time.
		if err != nil || took != 5*time.Microsecond {
			t.Fatalf("Run = %v after %v, want 5µs", err, took)
		}
	})
}

// A Semaphore lets in waiters in the order they came, as their weight fits:
// a large one holds up the small ones behind it. Release of more than was
// taken panics.
func TestSemaphore(t *testing.T) {
	_, err := virtual(func(task *sched.Task) error {
		s := sched.NewSemaphore(3)
		var order []string
		take := func(name string, n int64, hold time.Duration) {
			task.GoNamed(name, func(task *sched.Task) error {
				if err := s.Acquire(task, n); err != nil {
					return err
				}
				order = append(order, name)
				task.Sleep(hold)
				s.Release(n)
				return nil
			})
		}
		if !s.TryAcquire(2) {
			return errors.New("TryAcquire of a free weight failed")
		}
		take("big", 3, time.Second)   // waits for all 3
		take("small", 1, time.Second) // fits now, but waits behind big
		task.Sleep(time.Second)
		if len(order) != 0 {
			return fmt.Errorf("%v got in ahead of the release", order)
		}
		s.Release(2)
		task.Sleep(time.Hour)
		if fmt.Sprint(order) != "[big small]" {
			return fmt.Errorf("order %v, want [big small]", order)
		}
		if msg := panicOf(func() { s.Release(1) }); !strings.HasPrefix(msg, "sched: Semaphore.Release of more") {
			return fmt.Errorf("Release of too much: %q", msg)
		}
		if msg := panicOf(func() { s.Acquire(task, 4) }); !strings.HasPrefix(msg, "sched: Semaphore.Acquire of 4") {
			return fmt.Errorf("Acquire of more than the size: %q", msg)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A waiter that gives up (its context ended) no longer holds up those behind
// it.
func TestSemaphoreCancelledWaiter(t *testing.T) {
	_, err := virtual(func(task *sched.Task) error {
		s := sched.NewSemaphore(2)
		s.Acquire(task, 1)
		big := sched.Spawn(task, func(task *sched.Task) (int, error) { return 0, s.Acquire(task, 2) })
		small := sched.Spawn(task, func(task *sched.Task) (int, error) { return 0, s.Acquire(task, 1) })
		task.Sleep(time.Second)
		big.Cancel()
		if _, err := big.Wait(task); err != context.Canceled {
			return fmt.Errorf("the cancelled Acquire returned %v", err)
		}
		if _, err := small.Wait(task); err != nil {
			return fmt.Errorf("the small Acquire returned %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
