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
	if got := runtime.NumGoroutine(); got < n {
		t.Fatalf("%d goroutines after starting %d coroutines", got, n)
	}
	cs = nil // dropped
	waitGoroutines(t, before)
	if got := unwound.Load(); got != n {
		t.Fatalf("%d coroutines ran their defers, want %d", got, n)
	}
}

// An abandoned Pull stops its sequence as iter.Pull's stop does: the
// iterator sees its yield return false and returns by itself.
func TestAbandonedPullStopsSequence(t *testing.T) {
	stopped := make(chan int, 1)
	func() {
		c := coro.Pull(func(yield func(int) bool) {
			for i := 0; ; i++ {
				if !yield(i) {
					stopped <- i // runs only if yield reports false
					return
				}
			}
		})
		c.Resume(struct{}{})
		c.Resume(struct{}{})
	}()
	if i := collectUntil(t, stopped); i != 1 {
		t.Fatalf("the sequence stopped at %d, want 1", i)
	}
}

// collectUntil collects garbage until ch delivers, and returns what it did.
// Cleanups run after a collection, on a goroutine of the runtime's: there is
// no event to wait on but their effect.
func collectUntil[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case v := <-ch:
			return v
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("an abandoned coroutine was never closed")
		}
		runtime.GC()
		runtime.Gosched()
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
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines, want %d", n, before)
	}
	if !slices.IsSorted(keep) || len(keep) != 500 {
		t.Fatalf("results %v", keep[:5])
	}
}
