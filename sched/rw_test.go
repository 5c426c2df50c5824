package sched_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/weavert/weave/sched"
)

// Readers share the lock, a writer excludes everyone, and a waiting writer
// keeps new readers out: a recursive read lock then deadlocks.
func TestRWMutex(t *testing.T) {
	for seed := range uint64(50) {
		var rw sched.RWMutex
		readers, writers, maxReaders := 0, 0, 0
		err := sched.New(sched.Deterministic(newSeeded(seed))).Run(func(t *sched.Task) error {
			var wg sched.WaitGroup
			for i := range 6 {
				wg.Go(t, func(t *sched.Task) error {
					if i%3 == 0 {
						rw.Lock(t)
						writers++
						if writers > 1 || readers > 0 {
							return errors.New("writer not alone")
						}
						t.Yield()
						writers--
						rw.Unlock()
						return nil
					}
					rw.RLock(t)
					readers++
					maxReaders = max(maxReaders, readers)
					if writers > 0 {
						return errors.New("reader beside a writer")
					}
					t.Yield()
					readers--
					rw.RUnlock(t)
					return nil
				})
			}
			wg.Wait(t)
			return nil
		})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}

	err := sched.New(sched.Threads(1)).Run(func(t *sched.Task) error {
		var rw sched.RWMutex
		rw.RLock(t)
		t.Go(func(t *sched.Task) error { rw.Lock(t); rw.Unlock(); return nil })
		t.Yield() // the writer now waits
		if rw.TryRLock(t) {
			return errors.New("TryRLock succeeded past a waiting writer")
		}
		rw.RLock(t) // recursive: waits for the writer, which waits for us
		return nil
	})
	if !errors.Is(err, sched.ErrDeadlock) {
		t.Fatalf("recursive read lock with a waiting writer: %v, want a deadlock", err)
	}
}

func TestCond(t *testing.T) {
	err := sched.New(sched.Threads(1)).Run(func(t *sched.Task) error {
		var mu sched.Mutex
		c := sched.NewCond(&mu)
		ready, woke := false, 0
		var wg sched.WaitGroup
		for range 3 {
			wg.Go(t, func(t *sched.Task) error {
				mu.Lock(t)
				for !ready {
					c.Wait(t)
				}
				woke++
				mu.Unlock()
				return nil
			})
		}
		t.Yield()
		mu.Lock(t)
		ready = true
		c.Signal()
		mu.Unlock()
		for woke == 0 {
			t.Yield()
		}
		for range 10 {
			t.Yield()
		}
		if woke != 1 {
			return errors.New("Signal did not wake exactly one task")
		}
		c.Broadcast()
		wg.Wait(t)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A condition nobody signals: the waiter deadlocks.
	err = sched.New(sched.Threads(1)).Run(func(t *sched.Task) error {
		var mu sched.Mutex
		c := sched.NewCond(&mu)
		mu.Lock(t)
		c.Wait(t)
		return nil
	})
	if !errors.Is(err, sched.ErrDeadlock) {
		t.Fatalf("unsignalled Cond: %v, want a deadlock", err)
	}
}

// A task that a group's task started and left parked for good is reported by
// Wait, and unwound: its deferred calls run, and Run reports it no more.
func TestGroupLeak(t *testing.T) {
	var leak *sched.LeakError
	unwound := false
	err := sched.New(sched.Threads(1)).Run(func(t *sched.Task) error {
		ch := sched.NewChan[int](0)
		g := sched.NewGroup(t)
		g.Go(t, func(t *sched.Task) error {
			t.GoNamed("sender", func(t *sched.Task) error {
				defer func() { unwound = true }()
				ch.Send(t, 1)
				return nil
			})
			return nil // an early return: nobody receives
		})
		err := g.Wait(t)
		if !errors.As(err, &leak) || !errors.Is(err, sched.ErrLeak) {
			return fmt.Errorf("Wait = %v, want a leak", err)
		}
		if !unwound {
			return errors.New("Wait returned before the leaked task was unwound")
		}
		if ch.TrySend(t, 1) {
			return errors.New("the leaked sender is still in the channel's queue")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	l := leak.Tasks
	if len(l) != 1 || l[0].Name != "sender" || !strings.Contains(l[0].WaitsOn, "chan send") || !strings.Contains(string(l[0].Stack), "rw_test.go") {
		t.Fatalf("leak %+v, want the sender, with what it waits on and its stack", l)
	}
}
