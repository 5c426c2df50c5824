package coro_test

import (
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weavert/weave/coro"
)

// waitGoroutines collects garbage until the number of goroutines is back to
// want. Cleanups run after a collection on a goroutine of the runtime's, so
// there is no event to wait for: poll, yielding the processor, with a
// deadline that only a leak reaches.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for n := runtime.NumGoroutine(); n > want; n = runtime.NumGoroutine() {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want %d: abandoned coroutines were not closed", n, want)
		}
		runtime.GC()
		runtime.Gosched()
	}
}

func TestAbandonedCoroutinesAreClosed(t *testing.T) {
	const n = 10_000
	before := runtime.NumGoroutine()
	var unwound atomic.Int64
	cs := make([]*coro.Coroutine[int, int], n)
	for i := range cs {
		cs[i] = coro.New(func(in int, yield func(int) int) int {
			defer unwound.Add(1)
			return yield(in)
		})
		cs[i].Resume(i) // suspended in yield
	}
	if got := runtime.NumGoroutine(); got != before+n {
		t.Fatalf("%d goroutines after starting %d coroutines, want %d", got, n, before+n)
	}
	cs = nil // dropped
	waitGoroutines(t, before)
	if got := unwound.Load(); got != n {
		t.Fatalf("%d coroutines ran their defers, want %d", got, n)
	}
}

// An abandoned Pull closes its sequence: the iterator's loop body sees its
// yield return false, and its defers run.
func TestAbandonedPullStopsSequence(t *testing.T) {
	before := runtime.NumGoroutine()
	stopped := make(chan int, 1)
	func() {
		c := coro.Pull(func(yield func(int) bool) {
			i := 0
			defer func() { stopped <- i }()
			for ; yield(i); i++ {
			}
		})
		c.Resume(struct{}{})
		c.Resume(struct{}{})
	}()
	waitGoroutines(t, before)
	if i := <-stopped; i != 1 {
		t.Fatalf("the sequence stopped at %d, want 1", i)
	}
}

// Dropping coroutines that never ran, or ran to the end, leaves nothing
// behind either: they never had a goroutine, or it is gone.
func TestDroppedUnstartedAndFinished(t *testing.T) {
	before := runtime.NumGoroutine()
	keep := []int{}
	for i := range 1000 {
		c := coro.New(func(in int, yield func(int) int) int { return in })
		if i%2 == 0 {
			out, _ := c.Resume(i)
			keep = append(keep, out)
		}
	}
	if n := runtime.NumGoroutine(); n != before {
		t.Fatalf("%d goroutines, want %d", n, before)
	}
	if !slices.IsSorted(keep) || len(keep) != 500 {
		t.Fatalf("results %v", keep[:5])
	}
}
