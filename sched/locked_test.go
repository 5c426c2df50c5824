package sched_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
)

// Under LockThreads, tasks wake each other across threads through every
// primitive, yield, sleep and get stolen; the runtime would end the program
// if a started task were resumed on another thread. On one thread, the
// goroutines of parked tasks resume the others, and the runtime checks them
// too. The run also ends in a deadlock, whose parked coroutines must be
// closed on their own threads.
func TestLockThreadsCrossWakes(t *testing.T) {
	for _, threads := range []int{1, 2, 4} {
		var rounds atomic.Int64
		err := sched.New(sched.Threads(threads), sched.LockThreads()).Run(func(task *sched.Task) error {
			ping, pong := sched.NewChan[int](0), sched.NewChan[int](1)
			var mu sched.Mutex
			var wg sched.WaitGroup
			for p := range 8 {
				wg.Go(task, func(task *sched.Task) error {
					for i := range 200 {
						if p%2 == 0 {
							ping.Send(task, i)
							pong.Recv(task)
						} else {
							ping.Recv(task)
							pong.Send(task, i)
						}
						mu.Lock(task)
						task.Yield()
						mu.Unlock()
						if i%50 == 0 {
							task.Sleep(time.Microsecond)
						}
						rounds.Add(1)
					}
					return nil
				})
			}
			for range 100 {
				task.Go(func(task *sched.Task) error { task.Yield(); return nil }) // stolen, unstarted or not
			}
			wg.Wait(task)
			task.Go(func(task *sched.Task) error {
				defer task.Yield() // unwinding on its thread, yielding while closed
				ping.Recv(task)    // nobody sends: deadlock
				return nil
			})
			return nil
		})
		if !errors.Is(err, sched.ErrDeadlock) || rounds.Load() != 8*200 {
			t.Fatalf("threads %d: Run = %v; %d rounds", threads, err, rounds.Load())
		}
	}
}
