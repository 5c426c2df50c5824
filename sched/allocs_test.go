package sched_test

import (
	"context"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
)

// The allocation budgets the package doc promises, as context's TestAllocs
// checks its own: each operation, measured inside a running task once its
// first use has set up what it reuses.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	type budget struct {
		name string
		max  float64
		// setup runs in the main task and returns the operation to count.
		setup func(task *sched.Task) (op func(), done func())
	}
	budgets := []budget{
		{"Yield between two tasks", 0, func(task *sched.Task) (func(), func()) {
			stop := false
			task.Go(func(task *sched.Task) error {
				for !stop {
					task.Yield()
				}
				return nil
			})
			return func() { task.Yield() }, func() { stop = true; task.Yield() }
		}},
		{"unbuffered Chan round trip", 0, func(task *sched.Task) (func(), func()) {
			ping, pong := echo(task)
			return func() { ping.Send(task, 1); pong.Recv(task) }, ping.Close
		}},
		{"Mutex Lock and Unlock", 0, func(task *sched.Task) (func(), func()) {
			var mu sched.Mutex
			return func() { mu.Lock(task); mu.Unlock() }, func() {}
		}},
		{"Mutex handed between two tasks", 0, func(task *sched.Task) (func(), func()) {
			var mu sched.Mutex
			stop := false
			mu.Lock(task)
			task.Go(func(task *sched.Task) error {
				for {
					mu.Lock(task)
					s := stop
					mu.Unlock()
					if s {
						return nil
					}
				}
			})
			return func() {
					task.Yield() // the other task waits in Lock
					mu.Unlock()
					mu.Lock(task)
				}, func() {
					stop = true
					mu.Unlock()
				}
		}},
		{"Select that waits, over cases built once", 0, func(task *sched.Task) (func(), func()) {
			ping, pong := echo(task)
			other := sched.NewChan[int](0)
			send := sched.OnSend(ping, 1, nil)
			cases := []sched.Case{sched.OnRecv(pong, nil), sched.OnRecv(other, nil)}
			return func() {
				sched.Select(task, send)
				sched.Select(task, cases...)
			}, ping.Close
		}},
		{"Select with a timeout that fires, over cases built once", 0, func(task *sched.Task) (func(), func()) {
			never := sched.NewChan[int](0)
			cases := []sched.Case{sched.OnRecv(never, nil), sched.OnTimeout(time.Microsecond, nil)}
			return func() { sched.Select(task, cases...) }, func() {}
		}},
		{"Select with a timeout that does not fire, over cases built once", 0, func(task *sched.Task) (func(), func()) {
			ping, pong := echo(task)
			send := sched.OnSend(ping, 1, nil)
			cases := []sched.Case{sched.OnRecv(pong, nil), sched.OnTimeout(time.Hour, nil)}
			return func() {
				sched.Select(task, send)
				sched.Select(task, cases...)
			}, ping.Close
		}},
		{"Timer Reset and Recv", 0, func(task *sched.Task) (func(), func()) {
			tm := sched.NewTimer(task, time.Hour)
			return func() {
				tm.Reset(time.Microsecond)
				tm.C.Recv(task)
			}, func() {}
		}},
		// Its results, which its goroutine writes, the job, its place in
		// the pool's queue, and the pool's goroutine, which exits when the
		// queue is empty.
		{"Await of a function that returns at once", 6, func(task *sched.Task) (func(), func()) {
			f := func(context.Context) (int, error) { return 0, nil }
			return func() { sched.Await(task, f) }, func() {}
		}},
		{"TrySelect", 0, func(task *sched.Task) (func(), func()) {
			a, b := sched.NewChan[int](1), sched.NewChan[int](0)
			cases := []sched.Case{sched.OnRecv(a, nil), sched.OnRecv(b, nil)}
			return func() {
				a.TrySend(task, 1)
				sched.TrySelect(task, cases...)
			}, func() {}
		}},
	}
	for _, b := range budgets {
		t.Run(b.name, func(t *testing.T) {
			for _, n := range []int{1, 2} {
				var got float64
				err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
					op, done := b.setup(task)
					got = testing.AllocsPerRun(1000, op)
					done()
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if got > b.max {
					t.Errorf("Threads(%d): %.2f allocations per operation, want at most %v", n, got, b.max)
				}
			}
		})
	}
}

// echo starts a task that sends back on pong what it receives on ping, until
// ping is closed.
func echo(task *sched.Task) (ping, pong *sched.Chan[int]) {
	ping, pong = sched.NewChan[int](0), sched.NewChan[int](0)
	task.Go(func(task *sched.Task) error {
		for {
			v, ok := ping.Recv(task)
			if !ok {
				return nil
			}
			pong.Send(task, v)
		}
	})
	return ping, pong
}
