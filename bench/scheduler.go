package bench

import (
	"runtime"

	"github.com/weavert/weave/sched"
)

// Rows of the scheduler: tasks of a sched.Scheduler with one thread, where a
// task that stops resumes the next one itself: a task switch is one
// coroutine switch.

func init() {
	register(probe{name: "sched/yield", layer: "scheduler", unit: "ns", count: 300_000, quick: 20_000,
		setup: timed(2, schedYield)})
	register(probe{name: "sched/chan", layer: "scheduler", unit: "ns", count: 300_000, quick: 20_000,
		setup: timed(2, schedChan)})
	register(probe{name: "sched/spawn", layer: "scheduler", unit: "ns", count: 200_000, quick: 10_000,
		setup: timed(1, schedSpawn)})
	register(probe{name: "sched/memory", layer: "scheduler", unit: "B", count: 100_000, quick: 10_000,
		setup: schedMemory})
}

// schedYield runs two tasks on one thread that yield to each other: n round
// trips, each two task switches.
func schedYield(n int) error {
	return sched.New(sched.Threads(1)).Run(func(t *sched.Task) error {
		t.Go(func(t *sched.Task) error {
			for range n {
				t.Yield()
			}
			return nil
		})
		for range n {
			t.Yield()
		}
		return nil
	})
}

// schedChan ping-pongs between two tasks on one thread over unbuffered
// channels.
func schedChan(n int) error {
	return sched.New(sched.Threads(1)).Run(func(t *sched.Task) error {
		ping, pong := sched.NewChan[int](0), sched.NewChan[int](0)
		t.Go(func(t *sched.Task) error {
			for {
				v, ok := ping.Recv(t)
				if !ok {
					return nil
				}
				pong.Send(t, v)
			}
		})
		for i := range n {
			ping.Send(t, i)
			pong.Recv(t)
		}
		ping.Close()
		return nil
	})
}

// schedSpawn starts n empty tasks and runs them to the end: a task is a
// closure until it runs, on a pooled coroutine.
func schedSpawn(n int) error {
	return sched.New(sched.Threads(1)).Run(func(t *sched.Task) error {
		for range n {
			t.Go(func(*sched.Task) error { return nil })
		}
		return nil
	})
}

// schedMemory measures n tasks parked on a channel, from inside the run.
func schedMemory(n int) (func() (float64, error), func() string, error) {
	try := func() (float64, error) {
		var per float64
		err := sched.New(sched.Threads(1)).Run(func(t *sched.Task) error {
			before := settled()
			stop := sched.NewChan[struct{}](0)
			parked := sched.NewChan[struct{}](0)
			for range n {
				t.Go(func(t *sched.Task) error {
					parked.Send(t, struct{}{})
					stop.Recv(t)
					return nil
				})
			}
			for range n {
				parked.Recv(t) // every task has run up to its park
			}
			after := settled()
			grown := int64(after.StackInuse+after.HeapAlloc) - int64(before.StackInuse+before.HeapAlloc)
			per = float64(grown) / float64(n)
			stop.Close()
			runtime.KeepAlive(stop)
			return nil
		})
		return per, err
	}
	return try, func() string { return "Go's stack and heap per parked task, its coroutine included" }, nil
}
