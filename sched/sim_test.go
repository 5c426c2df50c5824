package sched_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
)

// seeded chooses uniformly at random with a seeded generator.
type seeded struct{ r *rand.Rand }

func newSeeded(seed uint64) *seeded { return &seeded{rand.New(rand.NewPCG(seed, 0))} }

func (c *seeded) Choose(runnable []*sched.Task) int { return c.r.IntN(len(runnable)) }

// busy is a program with some of everything: tasks, channels, a mutex, a
// select, timers, a group and a cancelled context. It returns a log of what
// happened, in order.
func busy(log *[]uint64) func(t *sched.Task) error {
	return func(t *sched.Task) error {
		ch := sched.NewChan[uint64](2)
		done := sched.NewChan[struct{}](0)
		var mu sched.Mutex
		g := sched.NewGroup(t)
		for i := range 20 {
			g.Go(t, func(t *sched.Task) error {
				if i%3 == 0 {
					if err := t.Sleep(time.Duration(i) * time.Millisecond); err != nil {
						return err
					}
				}
				mu.Lock(t)
				*log = append(*log, t.ID())
				mu.Unlock()
				ch.Send(t, t.ID())
				return nil
			})
		}
		t.Go(func(t *sched.Task) error {
			for got := 0; got < 20; {
				sched.Select(t,
					sched.OnRecv(ch, func(v uint64, _ bool) { *log = append(*log, 1000+v); got++ }),
					sched.OnRecv(done, func(struct{}, bool) { *log = append(*log, 999) }),
				)
			}
			return nil
		})
		t.Go(func(t *sched.Task) error {
			for range 5 {
				done.Send(t, struct{}{})
			}
			return nil
		})
		ctx, cancel := context.WithCancel(t.Context())
		t.Go(func(t *sched.Task) error {
			sched.Select(t, sched.OnDone(ctx, func(error) { *log = append(*log, 777) }))
			return nil
		})
		err := g.Wait(t)
		cancel()
		return err
	}
}

func TestDeterministicSameSeedSameRun(t *testing.T) {
	type result struct {
		log   []uint64
		stats sched.RunStats
	}
	run := func(seed uint64) result {
		var log []uint64
		s := sched.New(sched.Deterministic(newSeeded(seed)))
		if err := s.Run(busy(&log)); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		return result{log, s.LastRun()}
	}
	sums := map[uint64]bool{}
	for seed := range uint64(10) {
		first := run(seed)
		if first.stats.Steps == 0 || first.stats.Virtual != 18*time.Millisecond {
			t.Fatalf("seed %d: stats %+v, want steps and 18ms of virtual time", seed, first.stats)
		}
		for range 5 {
			again := run(seed)
			if again.stats != first.stats || !equal(again.log, first.log) {
				t.Fatalf("seed %d ran differently: %+v %v, then %+v %v", seed, first.stats, first.log, again.stats, again.log)
			}
		}
		sums[first.stats.Checksum] = true
	}
	if len(sums) < 8 {
		t.Errorf("10 seeds gave only %d checksums: the chooser is not driving the run", len(sums))
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDeterministicVirtualTime(t *testing.T) {
	s := sched.New(sched.Deterministic(newSeeded(1)))
	var woke []time.Time
	start := time.Now()
	err := s.Run(func(t *sched.Task) error {
		if !t.Now().Equal(sched.SimEpoch()) {
			return errors.New("virtual clock does not start at SimEpoch")
		}
		for i := range 3 {
			t.Go(func(t *sched.Task) error {
				t.Sleep(time.Duration(3-i) * time.Hour)
				woke = append(woke, t.Now())
				return nil
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if real := time.Since(start); real > time.Minute {
		t.Fatalf("three hours of virtual sleep took %v", real)
	}
	for i, w := range woke {
		if want := sched.SimEpoch().Add(time.Duration(i+1) * time.Hour); !w.Equal(want) {
			t.Errorf("wake %d at %v, want %v", i, w, want)
		}
	}
	if st := s.LastRun(); st.Virtual != 3*time.Hour {
		t.Errorf("virtual time %v, want 3h", st.Virtual)
	}
}

func TestDeterministicAwaitRefused(t *testing.T) {
	called := false
	err := sched.New(sched.Deterministic(newSeeded(1))).Run(func(t *sched.Task) error {
		_, err := sched.Await(t, func(context.Context) (int, error) { called = true; return 1, nil })
		return err
	})
	if !errors.Is(err, sched.ErrDeterministic) || called {
		t.Fatalf("Await in deterministic mode: %v (called %v)", err, called)
	}
}

func TestDeterministicStepLimit(t *testing.T) {
	s := sched.New(sched.Deterministic(newSeeded(1)), sched.MaxSteps(500))
	unwound := false
	err := s.Run(func(t *sched.Task) error {
		flag := false
		var mu sched.Mutex
		t.GoNamed("spinner", func(t *sched.Task) error {
			defer func() { unwound = true }()
			for !flag { // nobody sets it: a livelock
				if mu.TryLock(t) {
					mu.Unlock()
				}
			}
			return nil
		})
		t.GoNamed("stuck", func(t *sched.Task) error {
			sched.NewChan[int](0).Recv(t)
			return nil
		})
		return nil
	})
	var sl *sched.StepLimitError
	if !errors.As(err, &sl) || !errors.Is(err, sched.ErrStepLimit) || sl.Steps != 500 {
		t.Fatalf("Run = %v, want a step limit at 500", err)
	}
	// The report names every task left, what a runnable one did last, what
	// a parked one waits on, and where each was.
	if len(sl.Tasks) != 2 || sl.Tasks[0].Name != "spinner" || sl.Tasks[1].Name != "stuck" ||
		!strings.Contains(sl.Tasks[0].WaitsOn, "runnable, last did Mutex.TryLock") ||
		!strings.HasPrefix(sl.Tasks[1].WaitsOn, "chan receive on") ||
		!strings.Contains(string(sl.Tasks[0].Stack), "sim_test.go") || !strings.Contains(string(sl.Tasks[1].Stack), "sim_test.go") {
		t.Fatalf("the report does not say what the tasks left were doing:\n%v", err)
	}
	if !unwound {
		t.Error("the spinning task was not unwound")
	}
	if got := s.LastRun().Steps; got != 500 {
		t.Errorf("LastRun().Steps = %d, want 500", got)
	}
}

// A context that nobody cancels, waited on by a task while all others are
// parked, is a deadlock in deterministic mode; cancelling it wakes the
// waiter with the context's error.
func TestDeterministicContexts(t *testing.T) {
	err := sched.New(sched.Deterministic(newSeeded(1))).Run(func(t *sched.Task) error {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		sched.Select(t, sched.OnDone(ctx, nil))
		return nil
	})
	if !errors.Is(err, sched.ErrDeadlock) {
		t.Fatalf("waiting on a context nobody cancels: %v, want a deadlock", err)
	}

	for seed := range uint64(20) {
		err = sched.New(sched.Deterministic(newSeeded(seed))).Run(func(t *sched.Task) error {
			ctx, cancel := context.WithCancelCause(t.Context())
			cause := errors.New("stop")
			var got [2]error
			var wg sched.WaitGroup
			wg.Go(t, func(t *sched.Task) error {
				got[0] = t.Sleep(time.Hour)
				return nil
			})
			wg.Go(t, func(t *sched.Task) error {
				sched.Select(t, sched.OnDone(ctx, func(err error) { got[1] = context.Cause(ctx) }))
				return nil
			})
			_ = ctx
			t.Yield()
			cancel(cause)
			wg.Wait(t)
			if got[1] != cause {
				return errors.New("Select did not wake with the cause")
			}
			if t.Now().After(sched.SimEpoch().Add(time.Hour)) {
				return errors.New("virtual time ran past the sleep")
			}
			return nil
		})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}
