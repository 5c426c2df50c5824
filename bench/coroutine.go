package bench

import (
	"iter"
	"runtime"
	"sync"

	"github.com/weavert/weave/coro"
)

// Rows of the coroutine and goroutine layers.

func init() {
	register(probe{name: "coro/switch", layer: "coroutine", unit: "ns", count: 1_000_000, quick: 50_000,
		setup: timed(2, coroSwitch)})
	register(probe{name: "iterpull/switch", layer: "coroutine", unit: "ns", count: 1_000_000, quick: 50_000,
		setup: timed(2, iterPullSwitch)})
	register(probe{name: "goroutine/switch", layer: "goroutine", unit: "ns", count: 300_000, quick: 20_000,
		setup: timed(2, goroutineSwitch)})
	register(probe{name: "coro/create", layer: "coroutine", unit: "ns", count: 200_000, quick: 10_000,
		setup: timed(1, coroCreate)})
	register(probe{name: "goroutine/create", layer: "goroutine", unit: "ns", count: 200_000, quick: 10_000,
		setup: timed(1, goroutineCreate)})
	register(probe{name: "coro/memory", layer: "coroutine", unit: "B", count: 100_000, quick: 10_000,
		setup: memory(coroParked, "Go's stack and heap per suspended coroutine")})
	register(probe{name: "goroutine/memory", layer: "goroutine", unit: "B", count: 100_000, quick: 10_000,
		setup: memory(goroutineParked, "Go's stack and heap per blocked goroutine")})
}

// coroSwitch resumes a coroutine that yields straight back: n round trips.
func coroSwitch(n int) error {
	c := coro.New(func(in int, yield func(int) int) int {
		for {
			in = yield(in + 1)
		}
	})
	defer c.Close()
	for i := range n {
		c.Resume(i)
	}
	return nil
}

// iterPullSwitch is the same with iter.Pull, the floor of Go coroutines.
func iterPullSwitch(n int) error {
	next, stop := iter.Pull(func(yield func(int) bool) {
		for i := 0; yield(i); i++ {
		}
	})
	defer stop()
	for range n {
		next()
	}
	return nil
}

// goroutineSwitch ping-pongs between two goroutines over unbuffered channels.
func goroutineSwitch(n int) error {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	for i := range n {
		ping <- i
		<-pong
	}
	close(ping)
	<-pong
	return nil
}

// coroCreate creates a coroutine, runs its empty body, and reclaims it.
func coroCreate(n int) error {
	for i := range n {
		c := coro.New(func(in int, yield func(int) int) int { return in })
		c.Resume(i)
	}
	return nil
}

// goroutineCreate starts a goroutine with an empty body and waits for it.
func goroutineCreate(n int) error {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {})
	}
	wg.Wait()
	return nil
}

// coroParked makes n coroutines suspended in yield; release closes them.
func coroParked(n int) (release func()) {
	cs := make([]*coro.Coroutine[int, int], n)
	for i := range cs {
		cs[i] = coro.New(func(in int, yield func(int) int) int { return yield(in) })
		cs[i].Resume(i)
	}
	return func() {
		for _, c := range cs {
			c.Close()
		}
	}
}

// goroutineParked makes n goroutines blocked on a channel.
func goroutineParked(n int) (release func()) {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range n {
		wg.Go(func() { <-stop })
	}
	return func() {
		close(stop)
		wg.Wait()
	}
}

// memory makes a setup that measures the memory of n live parked units: the
// growth of Go's stack and heap in use, over a settled heap.
func memory(park func(n int) (release func()), note string) func(n int) (func() (float64, error), func() string, error) {
	return func(n int) (func() (float64, error), func() string, error) {
		try := func() (float64, error) {
			before := settled()
			release := park(n)
			after := settled()
			release()
			grown := int64(after.StackInuse+after.HeapAlloc) - int64(before.StackInuse+before.HeapAlloc)
			return float64(grown) / float64(n), nil
		}
		return try, func() string { return note }, nil
	}
}

// settled collects garbage until the heap stops shrinking and returns the
// memory statistics.
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
