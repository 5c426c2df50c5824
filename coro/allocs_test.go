package coro_test

import (
	"testing"

	"github.com/weavert/weave/coro"
)

// A resume and yield round trip allocates nothing once the coroutine runs,
// as the package doc promises.
func TestResumeYieldAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	c := coro.New(func(in int, yield func(int) int) int {
		for {
			in = yield(in + 1)
		}
	})
	defer c.Close()
	c.Resume(0)
	if n := testing.AllocsPerRun(1000, func() { c.Resume(1) }); n != 0 {
		t.Errorf("%.2f allocations per resume and yield, want 0", n)
	}
}
