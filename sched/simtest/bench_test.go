package simtest_test

import (
	"testing"
	"time"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/sched/simtest"
)

// benchSteps runs body in deterministic runs, and reports the scheduling
// steps per second.
func benchSteps(b *testing.B, strat simtest.Strategy, body func(*sched.Task) error, opts ...sched.Option) {
	b.ReportAllocs()
	var steps uint64
	seed := uint64(0)
	for b.Loop() {
		seed++
		s := sched.New(append(opts, sched.Deterministic(strat.Chooser(seed)))...)
		if err := s.Run(body); err != nil {
			b.Fatal(err)
		}
		steps += s.LastRun().Steps
	}
	b.ReportMetric(float64(steps)/b.Elapsed().Seconds(), "steps/s")
	b.ReportMetric(float64(steps)/float64(b.N), "steps/run")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(steps), "ns/step")
}

// Two tasks ping-pong over an unbuffered Chan.
func pingPong(t *sched.Task) error {
	ping, pong := sched.NewChan[int](0), sched.NewChan[int](0)
	const rounds = 10_000
	t.Go(func(t *sched.Task) error {
		for range rounds {
			v, _ := ping.Recv(t)
			pong.Send(t, v)
		}
		return nil
	})
	for i := range rounds {
		ping.Send(t, i)
		pong.Recv(t)
	}
	return nil
}

// A hundred tasks yield a hundred times each.
func yielders(t *sched.Task) error {
	var wg sched.WaitGroup
	for range 100 {
		wg.Go(t, func(t *sched.Task) error {
			for range 100 {
				t.Yield()
			}
			return nil
		})
	}
	wg.Wait(t)
	return nil
}

func BenchmarkSteps(b *testing.B) {
	b.Run("pingpong/random", func(b *testing.B) { benchSteps(b, simtest.Random(), pingPong) })
	b.Run("pingpong/random/parks", func(b *testing.B) { benchSteps(b, simtest.Random(), pingPong, sched.ParkPointsOnly()) })
	b.Run("pingpong/random/watchdog", func(b *testing.B) { benchSteps(b, simtest.Random(), pingPong, sched.Watchdog(time.Minute)) })
	b.Run("pingpong/pct3", func(b *testing.B) { benchSteps(b, simtest.PCT(3).WithSteps(40_000), pingPong) })
	b.Run("yield100/random", func(b *testing.B) { benchSteps(b, simtest.Random(), yielders) })
	b.Run("yield100/pct3", func(b *testing.B) { benchSteps(b, simtest.PCT(3).WithSteps(10_000), yielders) })
}

// BenchmarkExploreSmall is the cost of one run of a small program under
// Explore: what a seed of the bug catalogue costs.
func BenchmarkExploreSmall(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if f, _ := simtest.Explore(counter(2, true), simtest.Seeds(1)); f != nil {
			b.Fatal(f)
		}
	}
}
