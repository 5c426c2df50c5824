package sched_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
)

// A sleeping task whose context ends wakes at once with ctx.Err(),
// unchanged; its hour-long timer does not hold up the end of Run.
func TestSleepCancelled(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		errStop := errors.New("stop")
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			g := sched.NewGroup(task)
			asleep := sched.NewChan[struct{}](0)
			var got error
			g.Go(task, func(task *sched.Task) error {
				asleep.Close()
				got = task.Sleep(time.Hour)
				return nil
			})
			g.Go(task, func(task *sched.Task) error {
				asleep.Recv(task)
				task.Yield() // the sleeper has most likely parked by now; either way works
				return errStop
			})
			if err := g.Wait(task); !errors.Is(err, errStop) {
				return err
			}
			if got != context.Canceled {
				return errors.New("Sleep returned " + errString(got) + ", want context.Canceled")
			}
			if err := task.Sleep(time.Millisecond); err != nil {
				return err
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// A Select with OnDone wakes when the context ends, with its error
// unchanged; waiting on a context with a deadline is not a deadlock.
func TestSelectOnDone(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			ctx, cancel := context.WithTimeout(task.Context(), 5*time.Millisecond)
			defer cancel()
			never := sched.NewChan[int](0)
			var got error
			i := sched.Select(task, sched.OnRecv(never, nil), sched.OnDone(ctx, func(err error) { got = err }))
			if i != 1 || got != context.DeadlineExceeded {
				return errors.New("Select did not end by the deadline")
			}
			// Already done: chosen at once.
			if i := sched.Select(task, sched.OnDone(ctx, nil), sched.OnRecv(never, nil)); i != 0 {
				return errors.New("Select on a done context did not choose it")
			}
			// The channel wins; the context's callback is stopped.
			ch := sched.NewChan[int](1)
			ch.Send(task, 1)
			ctx2, cancel2 := context.WithCancel(task.Context())
			defer cancel2()
			if i := sched.Select(task, sched.OnDone(ctx2, nil), sched.OnRecv(ch, nil)); i != 1 {
				return errors.New("Select did not receive")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// A Select that waits on a channel and a context cancelled by another task.
func TestSelectOnDoneCancelledByTask(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			ctx, cancel := context.WithCancel(task.Context())
			never := sched.NewChan[int](0)
			var wg sched.WaitGroup
			for range 10 {
				wg.Go(task, func(task *sched.Task) error {
					var got error
					sched.Select(task, sched.OnRecv(never, nil), sched.OnDone(ctx, func(err error) { got = err }))
					if got != context.Canceled {
						return errors.New("woke without the context's error")
					}
					return nil
				})
			}
			task.Yield()
			cancel()
			wg.Wait(task)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
