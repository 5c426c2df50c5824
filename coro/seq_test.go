package coro_test

import (
	"errors"
	"iter"
	"maps"
	"slices"
	"testing"

	"github.com/weavert/weave/coro"
)

func TestPull(t *testing.T) {
	c := coro.Pull(slices.Values([]string{"a", "b"}))
	var got []string
	for {
		v, ok := c.Resume(struct{}{})
		if !ok {
			break
		}
		got = append(got, v)
	}
	if !slices.Equal(got, []string{"a", "b"}) || c.Status() != coro.Dead {
		t.Fatalf("got %q, status %v", got, c.Status())
	}
	if _, ok := c.Resume(struct{}{}); ok {
		t.Fatal("an exhausted Pull must stay dead")
	}
}

func TestPullStopReportsPanic(t *testing.T) {
	c := coro.Pull(func(yield func(int) bool) {
		defer func() { panic(errBoom) }()
		yield(1)
	})
	c.Resume(struct{}{})
	if err := c.Close(); !errors.Is(err, errBoom) {
		t.Fatalf("Close = %v, want the panic of the stopping sequence", err)
	}
}

// Closing a Pull is iter.Pull's stop: an iterator that swallows panics in its
// loop body, or cleans up after its loop, behaves the same under both.
func TestPullCloseIsStop(t *testing.T) {
	var log []string
	seq := func(yield func(int) bool) {
		defer func() { recover() }()
		for i := 0; yield(i); i++ {
		}
		log = append(log, "after loop")
	}
	c := coro.Pull(seq)
	c.Resume(struct{}{})
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	next, stop := iter.Pull(seq)
	next()
	stop()
	if want := []string{"after loop", "after loop"}; !slices.Equal(log, want) {
		t.Fatalf("log = %q, want %q", log, want)
	}
}

func TestAll(t *testing.T) {
	gen := coro.New(func(_ struct{}, yield func(int) struct{}) int {
		yield(1)
		yield(2)
		return 3 // the returned value ends the sequence
	})
	if got := slices.Collect(gen.All(struct{}{})); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("All = %v", got)
	}
	if got := slices.Collect(coro.Pull(slices.Values([]int{4, 5})).All(struct{}{})); !slices.Equal(got, []int{4, 5}) {
		t.Fatalf("All over Pull = %v", got)
	}
}

func TestAllBreakLeavesSuspended(t *testing.T) {
	c := coro.New(counter)
	for v := range c.All(10) {
		if v != 11 {
			t.Fatalf("got %d", v)
		}
		break
	}
	if c.Status() != coro.Suspended {
		t.Fatalf("status after break = %v", c.Status())
	}
	if out, _ := c.Resume(1); out != 2 {
		t.Fatalf("resumed after break: %d", out)
	}
	c.Close()
}

func TestFeed(t *testing.T) {
	// A running total: values go in, sums come out.
	sum := coro.New(func(in int, yield func(int) int) int {
		total := 0
		for in >= 0 {
			total += in
			in = yield(total)
		}
		return total
	})
	got := maps.Collect(sum.Feed(slices.Values([]int{1, 2, 3, -1, 100})))
	want := map[int]int{1: 1, 2: 3, 3: 6, -1: 6}
	if !maps.Equal(got, want) {
		t.Fatalf("Feed = %v, want %v", got, want)
	}
	if sum.Status() != coro.Dead {
		t.Fatalf("status = %v", sum.Status())
	}
}
