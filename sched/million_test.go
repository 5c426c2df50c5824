package sched_test

import (
	"os"
	"testing"

	"github.com/weavert/weave/sched"
)

// One million tasks parked at once (about 4 GB). It runs only when
// WEAVE_MILLION=1, and not under the race detector, which allows 8,128
// goroutines at most.
func TestMillionParkedTasks(t *testing.T) {
	if os.Getenv("WEAVE_MILLION") != "1" || raceEnabled {
		t.Skip("set WEAVE_MILLION=1, without -race, to park a million tasks")
	}
	const n = 1_000_000
	woken := 0
	err := sched.New(sched.Threads(2)).Run(func(task *sched.Task) error {
		gate := sched.NewChan[int](0)
		var parked, done sched.WaitGroup
		parked.Add(n)
		for range n {
			done.Go(task, func(task *sched.Task) error {
				parked.Done()
				gate.Recv(task)
				return nil
			})
		}
		parked.Wait(task)
		gate.Close()
		done.Wait(task)
		woken = n
		return nil
	})
	if err != nil || woken != n {
		t.Fatal(err)
	}
}
