package inspect_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/weavert/weave/inspect"
	"github.com/weavert/weave/sched"
)

// workload runs pairs of tasks that pass a value back and forth over
// unbuffered channels, on two threads, and returns the task switches made.
func workload(tracer sched.Tracer) {
	opts := []sched.Option{sched.Threads(2)}
	if tracer != nil {
		opts = append(opts, sched.WithTracer(tracer))
	}
	s := sched.New(opts...)
	err := s.Run(func(t *sched.Task) error {
		var wg sched.WaitGroup
		for range 4 {
			ping, pong := sched.NewChan[int](0), sched.NewChan[int](0)
			wg.Go(t, func(t *sched.Task) error {
				for {
					v, ok := ping.Recv(t)
					if !ok {
						return nil
					}
					pong.Send(t, v)
				}
			})
			wg.Go(t, func(t *sched.Task) error {
				for i := range 500 {
					ping.Send(t, i)
					pong.Recv(t)
				}
				ping.Close()
				return nil
			})
		}
		wg.Wait(t)
		return nil
	})
	if err != nil {
		panic(err)
	}
}

type variant struct {
	name   string
	tracer func() (sched.Tracer, func())
}

// noop is a tracer that does nothing: what the scheduler's own hooks cost.
type noop struct{}

func (noop) Spawn(t, parent *sched.Task)          {}
func (noop) Resume(t *sched.Task, i int)          {}
func (noop) Park(*sched.Task, sched.WaitReason)   {}
func (noop) Rewait(*sched.Task, sched.WaitReason) {}
func (noop) Wake(t, by *sched.Task)               {}
func (noop) Done(t *sched.Task, err error)        {}

var variants = []variant{
	{"none", func() (sched.Tracer, func()) { return nil, func() {} }},
	{"noop", func() (sched.Tracer, func()) { return noop{}, func() {} }},
	{"recorder", func() (sched.Tracer, func()) {
		r := inspect.NewRecorder(inspect.Config{Name: "bench"})
		return r, r.Close
	}},
	{"timeline", func() (sched.Tracer, func()) {
		r := inspect.NewRecorder(inspect.Config{Name: "bench", Timeline: true})
		return r, r.Close
	}},
}

// BenchmarkOverhead runs the same workload without a tracer, with a
// Recorder, and with a Recorder that records the timeline, interleaved in
// one run, and reports the median time of each and their ratios.
func BenchmarkOverhead(b *testing.B) {
	times := make([][]time.Duration, len(variants))
	for b.Loop() {
		for i, v := range variants {
			tr, done := v.tracer()
			start := time.Now()
			workload(tr)
			times[i] = append(times[i], time.Since(start))
			done()
		}
	}
	med := make([]float64, len(variants))
	for i, ts := range times {
		slices.Sort(ts)
		med[i] = float64(ts[len(ts)/2].Nanoseconds())
		b.ReportMetric(med[i], "ns-"+variants[i].name)
	}
	b.ReportMetric(med[1]/med[0], "x-noop")
	b.ReportMetric(med[2]/med[0], "x-recorder")
	b.ReportMetric(med[3]/med[0], "x-timeline")
}

// BenchmarkWorkload is the same three, one sub-benchmark each.
func BenchmarkWorkload(b *testing.B) {
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tr, done := v.tracer()
				workload(tr)
				done()
			}
		})
	}
}

// BenchmarkSnapshot takes the snapshot of a scheduler with 10,000 parked
// tasks.
func BenchmarkSnapshot(b *testing.B) {
	rec := inspect.NewRecorder(inspect.Config{Name: "many", Threads: 2})
	defer rec.Close()
	s := sched.New(sched.Threads(2), sched.WithTracer(rec))
	err := s.Run(func(t *sched.Task) error {
		ch := sched.NewChan[int](0)
		for range 10_000 {
			t.Go(func(t *sched.Task) error { ch.Recv(t); return nil })
		}
		for range 100 {
			t.Yield()
		}
		b.ResetTimer()
		for b.Loop() {
			if n := len(inspect.Snapshot(context.Background(), inspect.Options{}).Process.Schedulers); n == 0 {
				panic("no scheduler")
			}
		}
		b.StopTimer()
		ch.Close()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
