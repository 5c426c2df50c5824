package sched_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
)

func TestChanUnbuffered(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		const N = 2000
		sum := 0
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			ch := sched.NewChan[int](0)
			for p := range 4 {
				task.Go(func(task *sched.Task) error {
					for i := range N / 4 {
						ch.Send(task, p*(N/4)+i)
					}
					return nil
				})
			}
			for range N {
				v, ok := ch.Recv(task)
				if !ok {
					return errors.New("closed")
				}
				sum += v
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := N * (N - 1) / 2; sum != want {
			t.Fatalf("sum = %d, want %d", sum, want)
		}
	})
}

// A buffered channel keeps FIFO order for one sender and one receiver, and a
// closed channel drains before it reports closed.
func TestChanBufferedOrderAndClose(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		for _, capacity := range []int{0, 1, 3, 100} {
			var got []int
			err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
				ch := sched.NewChan[int](capacity)
				task.Go(func(task *sched.Task) error {
					for i := range 50 {
						ch.Send(task, i)
					}
					ch.Close()
					return nil
				})
				for {
					v, ok := ch.Recv(task)
					if !ok {
						break
					}
					got = append(got, v)
				}
				if _, ok := ch.Recv(task); ok {
					return errors.New("Recv on a drained closed channel reported ok")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range got {
				if v != i {
					t.Fatalf("cap %d: got %v", capacity, got)
				}
			}
			if len(got) != 50 {
				t.Fatalf("cap %d: got %d values", capacity, len(got))
			}
		}
	})
}

func TestChanCloseWakesReceivers(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		var closedSeen atomic.Int64
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			ch := sched.NewChan[string](0)
			var wg sched.WaitGroup
			for range 10 {
				wg.Go(task, func(task *sched.Task) error {
					if _, ok := ch.Recv(task); !ok {
						closedSeen.Add(1)
					}
					return nil
				})
			}
			for range 10 {
				task.Yield() // let them park; correctness does not depend on it
			}
			ch.Close()
			wg.Wait(task)
			return nil
		})
		if err != nil || closedSeen.Load() != 10 {
			t.Fatalf("Run = %v, %d receivers saw the close", err, closedSeen.Load())
		}
	})
}

func TestChanTry(t *testing.T) {
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		ch := sched.NewChan[int](1)
		if _, _, ready := ch.TryRecv(task); ready {
			return errors.New("TryRecv on empty channel was ready")
		}
		if !ch.TrySend(task, 1) || ch.TrySend(task, 2) {
			return errors.New("TrySend: want true then false")
		}
		if v, ok, ready := ch.TryRecv(task); !ready || !ok || v != 1 {
			return errors.New("TryRecv did not get 1")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSendOnClosedPanics(t *testing.T) {
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		ch := sched.NewChan[int](0)
		ch.Close()
		ch.Send(task, 1)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "sched: send on closed channel") {
		t.Fatalf("Run = %v", err)
	}
}

// The Mutex makes a read-modify-write with a Yield in the middle atomic, on
// any number of threads.
func TestMutex(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		var mu sched.Mutex
		counter := 0
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			var wg sched.WaitGroup
			for range 50 {
				wg.Go(task, func(task *sched.Task) error {
					for range 20 {
						mu.Lock(task)
						c := counter
						task.Yield()
						counter = c + 1
						mu.Unlock()
					}
					return nil
				})
			}
			wg.Wait(task)
			return nil
		})
		if err != nil || counter != 1000 {
			t.Fatalf("Run = %v, counter = %d", err, counter)
		}
	})
}

func TestUnlockOfUnlockedPanics(t *testing.T) {
	defer func() {
		if r := recover(); r != "sched: unlock of unlocked Mutex" {
			t.Fatalf("recovered %v", r)
		}
	}()
	var mu sched.Mutex
	mu.Unlock()
}

func TestWaitGroupNegativePanics(t *testing.T) {
	defer func() {
		if r := recover(); r != "sched: negative WaitGroup counter" {
			t.Fatalf("recovered %v", r)
		}
	}()
	var wg sched.WaitGroup
	wg.Done()
}

// Sleep parks the task, not the worker: on one thread, a sleeping task lets
// the others run, and wakes after at least its duration.
// On the real clock a Sleep lasts at least its duration. (The order of
// wake-ups, which real time cannot pin down on a busy machine, is
// TestVirtualClock's.)
func TestSleep(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		woke := 0
		var mu sched.Mutex
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			var wg sched.WaitGroup
			for _, d := range []time.Duration{3, 1, 2} {
				wg.Go(task, func(task *sched.Task) error {
					start := time.Now()
					if err := task.Sleep(d * time.Millisecond); err != nil {
						return err
					}
					if el := time.Since(start); el < d*time.Millisecond {
						return errors.New("woke early: " + el.String())
					}
					mu.Lock(task)
					woke++
					mu.Unlock()
					return nil
				})
			}
			wg.Wait(task)
			return nil
		})
		if err != nil || woke != 3 {
			t.Fatalf("Run = %v, %d tasks woke, want 3", err, woke)
		}
	})
}

func TestDeadlock(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		var mu sched.Mutex
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			ch := sched.NewChan[int](0)
			task.GoNamed("receiver", func(task *sched.Task) error {
				ch.Recv(task)
				return nil
			})
			mu.Lock(task) // main holds it while it waits
			task.GoNamed("locker", func(task *sched.Task) error {
				mu.Lock(task)
				return nil
			})
			var wg sched.WaitGroup
			wg.Add(1)
			wg.Wait(task)
			return nil
		})
		var de *sched.DeadlockError
		if !errors.As(err, &de) || !errors.Is(err, sched.ErrDeadlock) {
			t.Fatalf("Run = %v, want a *DeadlockError", err)
		}
		if len(de.Tasks) != 3 {
			t.Fatalf("deadlock names %d tasks, want 3:\n%v", len(de.Tasks), err)
		}
		want := []struct{ name, on string }{
			{"main", "sched.WaitGroup"},
			{"receiver", "*sched.Chan[int]"},
			{"locker", "held by task 1 (main)"},
		}
		for i, w := range want {
			got := de.Tasks[i]
			if got.Name != w.name || !strings.Contains(got.WaitsOn, w.on) {
				t.Errorf("task %d: %+v, want name %q waiting on %q", i, got, w.name, w.on)
			}
		}
		// Each task's function and where it is defined: in this file, not
		// in sched.
		for _, p := range de.Tasks {
			if !strings.Contains(p.Created, "TestDeadlock") || !strings.Contains(p.Created, "prim_test.go:") {
				t.Errorf("task %s runs %q, want a function of TestDeadlock in prim_test.go", p.Name, p.Created)
			}
		}
		if !strings.Contains(err.Error(), ", running ") {
			t.Errorf("the report does not say what the tasks run:\n%v", err)
		}
	})
}

// The deferred calls of deadlocked tasks run when Run ends, and leak nothing.
func TestDeadlockUnwindsTasks(t *testing.T) {
	var deferred atomic.Int64
	err := sched.New(sched.Threads(2)).Run(func(task *sched.Task) error {
		ch := sched.NewChan[int](0)
		for range 5 {
			task.Go(func(task *sched.Task) error {
				defer deferred.Add(1)
				ch.Recv(task)
				return nil
			})
		}
		return nil
	})
	if !errors.Is(err, sched.ErrDeadlock) || deferred.Load() != 5 {
		t.Fatalf("Run = %v; %d defers ran", err, deferred.Load())
	}
}

// A deadlock report carries each parked task's stack where it parked.
func TestDeadlockStacks(t *testing.T) {
	for _, opts := range [][]sched.Option{{sched.Threads(2)}, {sched.Threads(2), sched.LockThreads()}} {
		err := sched.New(opts...).Run(func(task *sched.Task) error {
			task.GoNamed("stuck", func(task *sched.Task) error {
				waitForever(task)
				return nil
			})
			return nil
		})
		var de *sched.DeadlockError
		if !errors.As(err, &de) || len(de.Tasks) != 1 {
			t.Fatalf("Run = %v", err)
		}
		if st := string(de.Tasks[0].Stack); !strings.Contains(st, "waitForever") {
			t.Fatalf("stack does not show where the task parked:\n%s", st)
		}
		if !strings.Contains(err.Error(), "waitForever") {
			t.Fatalf("the error does not show the stack:\n%v", err)
		}
	}
}

func waitForever(task *sched.Task) { sched.NewChan[int](0).Recv(task) }
