package simtest_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/sched/simtest"
)

// counter returns a program whose tasks each read a shared counter, yield,
// and write it back plus one. Unlocked, two tasks can interleave there and
// lose an update; locked, a Mutex held across makes it correct.
func counter(tasks int, locked bool) func(*sched.Task) error {
	return func(t *sched.Task) error {
		var mu sched.Mutex
		n := 0
		var wg sched.WaitGroup
		for range tasks {
			wg.Go(t, func(t *sched.Task) error {
				if locked {
					mu.Lock(t)
					defer mu.Unlock()
				}
				v := n
				t.Yield()
				n = v + 1
				return nil
			})
		}
		wg.Wait(t)
		if n != tasks {
			return fmt.Errorf("lost an update: n = %d", n)
		}
		return nil
	}
}

// racy loses an update under some schedules.
var racy = counter(2, false)

func TestExploreClean(t *testing.T) {
	body := counter(4, true)
	for _, s := range []simtest.Strategy{simtest.Random(), simtest.PCT(1), simtest.PCT(3)} {
		f, stats := simtest.Explore(body, s, simtest.Seeds(200))
		if f != nil {
			t.Fatalf("%v: %v", s, f)
		}
		if stats.Runs != 200 || stats.Steps < 200*5 {
			t.Fatalf("%v: %+v, want 200 runs of several steps", s, stats)
		}
	}
}

// Every strategy finds the lost update, and the failure replays: the same
// seed and strategy fail at the same step with the same checksum.
func TestExploreFindsAndReplays(t *testing.T) {
	for _, s := range []simtest.Strategy{simtest.Random(), simtest.PCT(2), simtest.PCT(3)} {
		t.Run(s.String(), func(t *testing.T) {
			f, stats := simtest.Explore(racy, s, simtest.Seeds(100))
			if f == nil {
				t.Fatalf("no failure in %d runs", stats.Runs)
			}
			if f.Kind() != "error" || !strings.Contains(f.Error(), "lost an update") || stats.Runs != f.Run {
				t.Fatalf("failure %v after %d runs", f, stats.Runs)
			}
			if f.Replayed != "" || f.Step == 0 || f.Step > f.Steps || f.Checksum == 0 {
				t.Fatalf("failure %+v", f)
			}
			if s.String() != "random" && f.Strategy.String() == s.String() {
				t.Fatalf("the failure's strategy %v has no run length", f.Strategy)
			}
			for range 3 {
				g, _ := simtest.Explore(racy, f.Strategy, simtest.FirstSeed(f.Seed), simtest.Seeds(1))
				if g == nil || g.Step != f.Step || g.Checksum != f.Checksum || g.Err.Error() != f.Err.Error() || g.Trace != f.Trace {
					t.Fatalf("replay of %v:\n%v", f, g)
				}
			}
		})
	}
}

// PCT of depth 1 never lets a higher task's yield run a lower one: the
// lost update, which needs two orderings (2 reads, then 1 writes), is out of
// its reach.
func TestPCTDepthOne(t *testing.T) {
	if f, _ := simtest.Explore(racy, simtest.PCT(1), simtest.Seeds(500)); f != nil {
		t.Fatal(f)
	}
}

// Each kind of failure is recognised.
func TestFailureKinds(t *testing.T) {
	tests := []struct {
		kind string
		body func(*sched.Task) error
		opts []simtest.Option
	}{
		{"error", func(*sched.Task) error { return errors.New("boom") }, nil},
		{"panic", func(t *sched.Task) error {
			t.Go(func(*sched.Task) error { panic("boom") })
			return nil
		}, nil},
		{"deadlock", func(t *sched.Task) error {
			sched.NewChan[int](0).Recv(t)
			return nil
		}, nil},
		{"lock cycle", func(t *sched.Task) error {
			var mu sched.Mutex
			mu.Lock(t)
			mu.Lock(t)
			return nil
		}, nil},
		{"leak", func(t *sched.Task) error {
			g := sched.NewGroup(t)
			ch := sched.NewChan[int](0)
			g.Go(t, func(t *sched.Task) error {
				started := sched.NewChan[int](1)
				t.Go(func(t *sched.Task) error {
					started.Send(t, 1)
					ch.Send(t, 1) // parks for good: nobody receives
					return nil
				})
				started.Recv(t)
				return nil
			})
			return g.Wait(t) // the leaked task is unwound: the leak is the only failure
		}, nil},
		{"step limit", func(t *sched.Task) error {
			for {
				t.Yield()
			}
		}, []simtest.Option{simtest.MaxSteps(1000)}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			f, _ := simtest.Explore(tt.body, append(tt.opts, simtest.Seeds(3))...)
			if f == nil || f.Kind() != tt.kind || f.Seed != 1 {
				t.Fatalf("failure %v, want a %s at seed 1", f, tt.kind)
			}
			if f.Replayed != "" {
				t.Fatalf("replay: %s", f.Replayed)
			}
		})
	}
}

// An hour of virtual sleeps takes no real time, and Await is refused.
func TestVirtualTimeAndAwait(t *testing.T) {
	var awaitErr error
	var slept time.Duration
	body := func(t *sched.Task) error {
		start := t.Now()
		var wg sched.WaitGroup
		for i := range 60 {
			wg.Go(t, func(t *sched.Task) error { return t.Sleep(time.Duration(i+1) * time.Minute) })
		}
		wg.Wait(t)
		if d := t.Now().Sub(start); d < time.Hour {
			return fmt.Errorf("the sleeps ended after %v, before the longest's hour", d)
		}
		slept += t.Now().Sub(start)
		_, awaitErr = sched.Await(t, func(context.Context) (int, error) {
			panic("Await ran its function in a deterministic run")
		})
		return nil
	}
	f, stats := simtest.Explore(body, simtest.Seeds(5))
	if f != nil {
		t.Fatal(f)
	}
	// Time may pass while tasks still run, before a sleep begins: each run
	// takes at least the hour of its longest sleep, and virtual time is
	// the sum of them all.
	if slept < 5*time.Hour || stats.Virtual != slept {
		t.Fatalf("slept %v, virtual %v; want at least 1h per run, and the same", slept, stats.Virtual)
	}
	if !errors.Is(awaitErr, sched.ErrDeterministic) {
		t.Fatalf("Await returned %v, want ErrDeterministic", awaitErr)
	}
}

// fakeT records what Run reports.
type fakeT struct {
	testing.TB
	name  string
	fatal string
}

func (f *fakeT) Helper()                           {}
func (f *fakeT) Name() string                      { return f.name }
func (f *fakeT) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }

// setFlag sets a flag of simtest for the rest of the test.
func setFlag(t *testing.T, name, value string) {
	old := flag.Lookup(name).Value.String()
	if err := flag.Set(name, value); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flag.Set(name, old) })
}

// Run's message gives the seed, the step, the strategy, and the command
// that replays the run; with that command's flags, Run replays it.
func TestRunMessageAndReplay(t *testing.T) {
	ft := &fakeT{name: "TestBank/two transfers"}
	simtest.Run(ft, racy, simtest.PCT(2), simtest.Seeds(100))
	f, _ := simtest.Explore(racy, simtest.PCT(2), simtest.Seeds(100))
	want := fmt.Sprintf("replay: go test ./sched/simtest -run '^TestBank$/^two transfers$' -weave.seed=%d -weave.strategy=%s", f.Seed, f.Strategy)
	for _, part := range []string{
		fmt.Sprintf("error at step %d of %d, seed %d", f.Step, f.Steps, f.Seed),
		"strategy " + f.Strategy.String(), want, "lost an update", "-weave.trace=FILE",
	} {
		if !strings.Contains(ft.fatal, part) {
			t.Fatalf("the message lacks %q:\n%s", part, ft.fatal)
		}
	}

	trace := filepath.Join(t.TempDir(), "trace.txt")
	setFlag(t, "weave.seed", fmt.Sprint(f.Seed))
	setFlag(t, "weave.strategy", f.Strategy.String())
	setFlag(t, "weave.trace", trace)
	replay := &fakeT{name: ft.name}
	stats := simtest.Run(replay, racy, simtest.Random(), simtest.Seeds(1000))
	for _, part := range []string{
		fmt.Sprintf("error at step %d of %d, seed %d (run 1), strategy %s", f.Step, f.Steps, f.Seed, f.Strategy),
		fmt.Sprintf("checksum %#016x", f.Checksum), want, "\ntrace: " + trace,
	} {
		if stats.Runs != 1 || !strings.Contains(replay.fatal, part) {
			t.Fatalf("the replay (%d runs) lacks %q:\n%s", stats.Runs, part, replay.fatal)
		}
	}
	text, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	if string(text) != f.Trace || !strings.Contains(f.Trace, "fails: lost an update") {
		t.Fatalf("the trace file has\n%s\nwant\n%s", text, f.Trace)
	}
}

// The trace has one event a line, each with its step and virtual time.
func TestTrace(t *testing.T) {
	f, _ := simtest.Explore(func(t *sched.Task) error {
		ch := sched.NewChan[int](0)
		t.GoNamed("sleeper", func(t *sched.Task) error {
			t.Sleep(time.Second)
			ch.Send(t, 1)
			return nil
		})
		ch.Recv(t)
		return errors.New("done")
	}, simtest.Seeds(1))
	want := []string{
		"step 1 +0s: task 1 (main) runs",
		"spawned by task 1 (main)",
		"+1s: task 2 (sleeper) wakes",
		"+1s: task 1 (main) wakes, woken by task 2 (sleeper)",
		"+1s: task 1 (main) fails: done",
	}
	for _, w := range want {
		if !strings.Contains(f.Trace, w) {
			t.Errorf("the trace lacks %q:\n%s", w, f.Trace)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(f.Trace), "\n") {
		if !strings.HasPrefix(line, "step ") {
			t.Fatalf("line %q", line)
		}
	}
}
