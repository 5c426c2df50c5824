package bugs_test

import (
	"testing"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/sched/simtest"
	"github.com/weavert/weave/sched/simtest/bugs"
)

// Every buggy version is found within its budget, by its strategy, with
// the failure its entry names; and the failure replays.
func TestBuggyFound(t *testing.T) {
	for _, b := range bugs.All {
		t.Run(b.Name, func(t *testing.T) {
			if b.Budget < 1 || b.Budget > 1000 {
				t.Fatalf("budget %d, want 1 to 1,000", b.Budget)
			}
			f, stats := simtest.Explore(b.Buggy, b.Options(b.Budget)...)
			if f == nil {
				t.Fatalf("not found in %d runs of %v", stats.Runs, b.Strategy)
			}
			if f.Kind() != b.Failure || f.Replayed != "" {
				t.Fatalf("found a %s, want a %s:\n%v", f.Kind(), b.Failure, f)
			}
			// The report leads with the real failure: whatever the
			// unwinding of the other tasks led to comes after it.
			first := f.Err
			if j, ok := f.Err.(interface{ Unwrap() []error }); ok {
				first = j.Unwrap()[0]
			}
			if k := (&simtest.Failure{Err: first}).Kind(); k != b.Failure {
				t.Fatalf("the report leads with a %s, want the %s:\n%v", k, b.Failure, f)
			}
			opts := append(b.Options(1), f.Strategy, simtest.FirstSeed(f.Seed))
			g, _ := simtest.Explore(b.Buggy, opts...)
			if g == nil || g.Step != f.Step || g.Checksum != f.Checksum || g.Kind() != f.Kind() {
				t.Fatalf("the replay of\n%v\ngave\n%v", f, g)
			}
			// Run twice, it fails the same way twice, though its error
			// names addresses and goroutines that differ.
			if g, _ := simtest.Explore(b.Buggy, append(opts, simtest.CheckDeterminism())...); g == nil || g.Kind() != f.Kind() {
				t.Fatalf("under CheckDeterminism, the failing seed of\n%v\ngave\n%v", f, g)
			}
		})
	}
}

// A buggy version fails only under some schedules: some seed passes.
func TestBuggyNotAlways(t *testing.T) {
	for _, b := range bugs.All {
		t.Run(b.Name, func(t *testing.T) {
			for seed := range uint64(1000) {
				opts := append(b.Options(1), simtest.FirstSeed(seed))
				if f, _ := simtest.Explore(b.Buggy, opts...); f == nil {
					return
				}
			}
			t.Fatal("every one of 1,000 seeds fails: the bug does not depend on the schedule")
		})
	}
}

// Every fixed version passes 10,000 seeds of its strategy, and 1,000 of
// each other strategy (a tenth of that under the race detector).
func TestFixedClean(t *testing.T) {
	seeds := 10_000
	if raceEnabled {
		seeds = 1_000
	}
	for _, b := range bugs.All {
		t.Run(b.Name, func(t *testing.T) {
			simtest.Run(t, b.Fixed, b.Options(seeds)...)
			for _, s := range strategies {
				if s != b.Strategy {
					simtest.Run(t, b.Fixed, append(b.Options(seeds/10), s)...)
				}
			}
		})
	}
}

// strategies are the columns of the table in docs/simtest.md.
var strategies = []simtest.Strategy{simtest.Random(), simtest.PCT(1), simtest.PCT(2), simtest.PCT(3)}

// lock-order-no-yield needs a switch where no task waits, right before a
// Lock: choosing only where tasks park never finds it.
func TestPreemptionPointsNeeded(t *testing.T) {
	b := bugs.ByName("lock-order-no-yield")
	for _, s := range strategies {
		if f, stats := simtest.Explore(b.Buggy, s, simtest.Seeds(2_000), simtest.ParkPointsOnly()); f != nil {
			t.Fatalf("%v found it after %d runs with park points only:\n%v", s, stats.Runs, f)
		}
	}
}

// timeout-mid-work needs time to pass while a task computes: a run whose
// clock moves only when no task can run never finds it.
func TestTimePassingNeeded(t *testing.T) {
	b := bugs.ByName("timeout-mid-work")
	for seed := range uint64(2_000) {
		ch := onlyTasks{simtest.Random().Chooser(seed)}
		if err := sched.New(sched.Deterministic(ch)).Run(b.Buggy); err != nil {
			t.Fatalf("seed %d failed with a clock that moves only when all wait:\n%v", seed, err)
		}
	}
}

// onlyTasks hides the clock choices of a strategy's chooser.
type onlyTasks struct{ ch sched.Chooser }

func (o onlyTasks) Choose(runnable []*sched.Task) int { return o.ch.Choose(runnable) }
