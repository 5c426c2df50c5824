package coro_test

import (
	"iter"
	"runtime"
	"testing"

	"github.com/weavert/weave/coro"
)

// The baselines and weave's coroutines, one operation per benchmark, side by
// side. Ratios between them are the figures that matter: see the package doc.

// chanCoro is the classic coroutine made of a goroutine and two channels.
type chanCoro struct {
	in  chan int
	out chan int
}

func newChanCoro() *chanCoro {
	c := &chanCoro{in: make(chan int), out: make(chan int)}
	go func() {
		defer close(c.out)
		for v := range c.in {
			c.out <- v + 1
		}
	}()
	return c
}

func (c *chanCoro) resume(v int) int { c.in <- v; return <-c.out }
func (c *chanCoro) close()           { close(c.in); <-c.out }

// Switch: one resume and one yield, the round trip.

func BenchmarkSwitchIterPull(b *testing.B) {
	next, stop := iter.Pull(func(yield func(int) bool) {
		for i := 0; yield(i); i++ {
		}
	})
	defer stop()
	b.ReportAllocs()
	for b.Loop() {
		next()
	}
}

func BenchmarkSwitchChan(b *testing.B) {
	c := newChanCoro()
	defer c.close()
	b.ReportAllocs()
	for b.Loop() {
		c.resume(1)
	}
}

func BenchmarkSwitchCoro(b *testing.B) {
	c := coro.New(func(in int, yield func(int) int) int {
		for {
			in = yield(in + 1)
		}
	})
	defer c.Close()
	b.ReportAllocs()
	for b.Loop() {
		c.Resume(1)
	}
}

// Create: create, run to the first yield, and reclaim.

func BenchmarkCreateIterPull(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		next, stop := iter.Pull(func(yield func(int) bool) { yield(1) })
		next()
		stop()
	}
}

func BenchmarkCreateChan(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c := newChanCoro()
		c.resume(1)
		c.close()
	}
}

func BenchmarkCreateCoro(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c := coro.New(func(in int, yield func(int) int) int { return yield(in) })
		c.Resume(1)
		c.Close()
	}
}

// Memory: the cost of one suspended coroutine, measured over many.

const memN = 100_000

func BenchmarkMemoryIterPull(b *testing.B) {
	stops := make([]func(), memN)
	benchMemory(b, func(i int) {
		next, stop := iter.Pull(func(yield func(int) bool) { yield(1) })
		next()
		stops[i] = stop
	}, func(i int) { stops[i](); stops[i] = nil })
}

func BenchmarkMemoryCoro(b *testing.B) {
	cs := make([]*coro.Coroutine[int, int], memN)
	benchMemory(b, func(i int) {
		cs[i] = coro.New(func(in int, yield func(int) int) int { return yield(in) })
		cs[i].Resume(1)
	}, func(i int) { cs[i].Close(); cs[i] = nil })
}

// benchMemory makes memN suspended units and reports the stack and heap each
// one costs, read from the runtime's own accounting. free must drop its
// reference, so that the next round starts from nothing. The heap figure
// leaves out the runtime's goroutine descriptor (about 400 bytes): every
// goroutine has one, and the runtime never frees it but reuses it, so after
// the first round it is not new memory.
func benchMemory(b *testing.B, make func(int), free func(int)) {
	var stack, heap float64
	for b.Loop() {
		before := settled()
		for i := range memN {
			make(i)
		}
		after := settled()
		stack = float64(after.StackInuse-before.StackInuse) / memN
		heap = float64(after.HeapAlloc-before.HeapAlloc) / memN
		for i := range memN {
			free(i)
		}
	}
	b.ReportMetric(stack, "stack-B/unit")
	b.ReportMetric(heap, "heap-B/unit")
}

// settled collects garbage until the heap stops shrinking (cleanups free
// their arguments one collection after their object) and returns the stats.
func settled() (m runtime.MemStats) {
	runtime.GC()
	runtime.ReadMemStats(&m)
	for range 10 {
		runtime.Gosched()
		runtime.GC()
		prev := m.HeapAlloc
		runtime.ReadMemStats(&m)
		if m.HeapAlloc >= prev {
			break
		}
	}
	return m
}
