package simtest_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/sched/simtest"
)

// busy is a program of several hundred tasks that uses channels, a
// mutex, timers, a group and a WaitGroup. It is correct under every
// schedule.
func busy(t *sched.Task) error {
	const workers, producers, perProducer = 200, 4, 50
	jobs := sched.NewChan[int](8)
	results := sched.NewChan[int](0)
	var mu sched.Mutex
	var byClass [4]int
	g := sched.NewGroup(t)
	for range workers {
		g.Go(t, func(t *sched.Task) error {
			for {
				j, ok := jobs.Recv(t)
				if !ok {
					return nil
				}
				if j%5 == 0 {
					if err := t.Sleep(time.Duration(j%7) * time.Millisecond); err != nil {
						return err
					}
				}
				mu.Lock(t)
				byClass[j%4]++
				if j%3 == 0 {
					t.Yield()
				}
				mu.Unlock()
				results.Send(t, j)
			}
		})
	}
	var wg sched.WaitGroup
	for p := range producers {
		wg.Go(t, func(t *sched.Task) error {
			for i := range perProducer {
				jobs.Send(t, p*perProducer+i)
			}
			return nil
		})
	}
	t.GoNamed("closer", func(t *sched.Task) error {
		wg.Wait(t)
		jobs.Close()
		return nil
	})
	sum := 0
	for range producers * perProducer {
		j, _ := results.Recv(t)
		sum += j
	}
	if err := g.Wait(t); err != nil {
		return err
	}
	const n = producers * perProducer
	if sum != n*(n-1)/2 || byClass[0]+byClass[1]+byClass[2]+byClass[3] != n {
		return fmt.Errorf("sum %d, classes %v", sum, byClass)
	}
	return nil
}

// Same seed, same run: the checksum of every run of a seed is the same,
// and different seeds give different runs.
func TestChecksumPerSeed(t *testing.T) {
	seeds, runs := 20, 100
	if raceEnabled || testing.Short() {
		runs = 5
	}
	var sums []uint64
	for seed := range uint64(seeds) {
		for _, strat := range []simtest.Strategy{simtest.Random(), simtest.PCT(3).WithSteps(5000)} {
			var first sched.RunStats
			for run := range runs {
				s := sched.New(sched.Deterministic(strat.Chooser(seed)))
				if err := s.Run(busy); err != nil {
					t.Fatalf("seed %d %v: %v", seed, strat, err)
				}
				st := s.LastRun()
				if run == 0 {
					first = st
					if strat == simtest.Random() {
						sums = append(sums, st.Checksum)
					}
					continue
				}
				if st != first {
					t.Fatalf("seed %d %v, run %d: %+v, the first run %+v", seed, strat, run, st, first)
				}
			}
			if first.Steps < 500 {
				t.Fatalf("seed %d: only %d steps", seed, first.Steps)
			}
		}
	}
	slices.Sort(sums)
	if distinct := len(slices.Compact(sums)); distinct < seeds-1 {
		t.Fatalf("%d seeds gave %d checksums", seeds, distinct)
	}
}

// A program that lets map order decide which tasks it wakes, in which
// order, is reported as nondeterministic, with the first step that differs.
func TestCheckDeterminismMapOrder(t *testing.T) {
	body := func(t *sched.Task) error {
		chans := map[int]*sched.Chan[int]{}
		for i := range 8 {
			ch := sched.NewChan[int](0)
			chans[i] = ch
			t.Go(func(t *sched.Task) error { ch.Recv(t); return nil })
		}
		if err := t.Sleep(time.Millisecond); err != nil { // every receiver parks
			return err
		}
		for _, ch := range chans {
			ch.Close()
		}
		return nil
	}
	f, _ := simtest.Explore(body, simtest.CheckDeterminism(), simtest.Seeds(20))
	var nd *simtest.NondeterminismError
	if f == nil || !errors.As(f, &nd) || f.Kind() != "nondeterminism" {
		t.Fatalf("failure %v, want nondeterminism", f)
	}
	if nd.Step == 0 || f.Step != nd.Step || slices.Equal(nd.First.Runnable, nd.Second.Runnable) && nd.First.Ran == nd.Second.Ran {
		t.Fatalf("%+v", nd)
	}
	if msg := nd.Error(); !strings.Contains(msg, fmt.Sprintf("step %d differs", nd.Step)) {
		t.Fatal(msg)
	}
	// Without the check, each run alone succeeds.
	if f, _ := simtest.Explore(body, simtest.Seeds(20)); f != nil {
		t.Fatal(f)
	}
}

func TestCheckDeterminismClean(t *testing.T) {
	seeds := 10
	if raceEnabled {
		seeds = 2
	}
	for _, s := range []simtest.Strategy{simtest.Random(), simtest.PCT(3)} {
		if f, _ := simtest.Explore(busy, s, simtest.CheckDeterminism(), simtest.Seeds(seeds)); f != nil {
			t.Fatal(f)
		}
	}
}

// Two runs of a seed that make the same choices but end differently are
// nondeterministic too: here a count kept outside the run decides whether
// the body fails, and what its error says.
func TestCheckDeterminismOutcome(t *testing.T) {
	tests := []struct {
		name  string
		body  func(calls int64) error
		first string // how the first run of seed 1 ends
	}{
		{"passes then fails", func(calls int64) error {
			if calls%2 == 0 {
				return errors.New("every second call fails")
			}
			return nil
		}, "passed"},
		{"two messages", func(calls int64) error {
			return fmt.Errorf("call %d fails", calls)
		}, "error: sched: task 1 (main): call 1 fails"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			body := func(t *sched.Task) error {
				t.Go(func(t *sched.Task) error { return nil })
				t.Yield()
				return tt.body(calls.Add(1))
			}
			f, _ := simtest.Explore(body, simtest.CheckDeterminism(), simtest.Seeds(10))
			var nd *simtest.NondeterminismError
			if f == nil || !errors.As(f, &nd) || f.Kind() != "nondeterminism" || f.Seed != 1 {
				t.Fatalf("failure %v, want nondeterminism at seed 1", f)
			}
			if nd.Step != 0 || nd.FirstEnd != tt.first || nd.FirstEnd == nd.SecondEnd {
				t.Fatalf("%+v", nd)
			}
			if msg := nd.Error(); !strings.Contains(msg, "ended differently") || !strings.Contains(msg, nd.SecondEnd) {
				t.Fatal(msg)
			}
		})
	}
}

// A deterministic run that fails ends the same way every time, though its
// error names addresses and goroutines that change from run to run: every
// buggy program of the catalogue keeps its own kind under CheckDeterminism.
func TestCheckDeterminismSameFailure(t *testing.T) {
	tests := []struct {
		kind string
		body func(*sched.Task) error
	}{
		{"lock cycle", bank(transfer)},
		{"panic", func(t *sched.Task) error {
			t.Go(func(*sched.Task) error { panic(fmt.Sprintf("boom %p", new(int))) })
			return nil
		}},
		{"deadlock", func(t *sched.Task) error {
			ch := sched.NewChan[int](0)
			t.Go(func(t *sched.Task) error { ch.Recv(t); return nil })
			ch.Recv(t)
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			f, _ := simtest.Explore(tt.body, simtest.CheckDeterminism(), simtest.Seeds(100))
			if f == nil || f.Kind() != tt.kind || f.Replayed != "" {
				t.Fatalf("failure %v, want a %s", f, tt.kind)
			}
		})
	}
}
