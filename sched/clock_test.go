package sched_test

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
)

// virtualClock is the smallest IdleClock: time moves only when the
// scheduler says it is idle, straight to the earliest timer.
type virtualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*vtimer
}

type vtimer struct {
	when time.Time
	c    chan time.Time
	dead bool
}

func (v *virtualClock) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

func (v *virtualClock) NewTimer(d time.Duration) sched.ClockTimer {
	v.mu.Lock()
	defer v.mu.Unlock()
	t := &vtimer{when: v.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- v.now
		t.dead = true
		return t
	}
	v.timers = append(v.timers, t)
	return t
}

func (t *vtimer) C() <-chan time.Time { return t.c }
func (t *vtimer) Stop() bool {
	was := !t.dead
	t.dead = true
	return was
}

func (v *virtualClock) Idle() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.timers = slices.DeleteFunc(v.timers, func(t *vtimer) bool { return t.dead })
	if len(v.timers) == 0 {
		return
	}
	slices.SortFunc(v.timers, func(a, b *vtimer) int { return a.when.Compare(b.when) })
	t := v.timers[0]
	v.timers = v.timers[1:]
	v.now = t.when
	t.dead = true
	t.c <- t.when
}

// With a virtual clock, sleeping for hours takes no time, and tasks wake in
// the order of their deadlines at exactly their deadlines.
func TestVirtualClock(t *testing.T) {
	for _, n := range []int{1, 2} {
		clock := &virtualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		start := clock.Now()
		var woke []time.Duration
		var mu sched.Mutex
		err := sched.New(sched.Threads(n), sched.WithClock(clock)).Run(func(task *sched.Task) error {
			var wg sched.WaitGroup
			for _, h := range []int{3, 1, 2} {
				wg.Go(task, func(task *sched.Task) error {
					task.Sleep(time.Duration(h) * time.Hour)
					mu.Lock(task)
					woke = append(woke, task.Now().Sub(start))
					mu.Unlock()
					return nil
				})
			}
			wg.Wait(task)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour}; !slices.Equal(woke, want) {
			t.Fatalf("threads %d: woke at %v, want %v", n, woke, want)
		}
	}
}

// A task that computes without yielding does not hold up the timers of its
// worker: another worker, idle, fires them and runs the sleeper, while the
// busy task still computes. The busy task waits for the sleeper to wake by
// spinning on a flag; a 1 ms Sleep that does not end while it spins (the
// timer stuck behind the busy worker) fails the test after half a minute.
func TestTimersDoNotWaitForABusyWorker(t *testing.T) {
	var woke atomic.Bool
	err := sched.New(sched.Threads(2)).Run(func(task *sched.Task) error {
		// Buffered, so that the sleeper never waits in Send: main's Recv
		// would then wake it into the next slot of main's worker, which
		// main keeps busy below and no thief takes it from (see the
		// package doc's worker loop).
		started := sched.NewChan[int](1)
		task.Go(func(task *sched.Task) error {
			started.Send(task, 1) // if main waits, it is woken into this worker's next slot
			task.Sleep(time.Millisecond)
			woke.Store(true)
			return nil
		})
		started.Recv(task)
		// Here, mostly, on the sleeper's worker, in its next slot since the
		// Send woke main: keep that worker busy until the sleeper has
		// woken, which only the other worker can then make happen.
		for start := time.Now(); !woke.Load(); {
			if time.Since(start) > 30*time.Second {
				return errors.New("the sleeper did not wake while its worker was busy")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
