package sched_test

import (
	"context"
	"errors"
	"testing"

	"github.com/weavert/weave/sched"
)

func TestGroupFirstErrorCancels(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		errFirst := errors.New("first")
		var cancelled int
		var mu sched.Mutex
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			g := sched.NewGroup(task)
			for range 10 {
				g.Go(task, func(task *sched.Task) error {
					for task.Context().Err() == nil {
						task.Yield()
					}
					if errors.Is(context.Cause(task.Context()), errFirst) {
						mu.Lock(task)
						cancelled++
						mu.Unlock()
					}
					return task.Context().Err()
				})
			}
			g.Go(task, func(task *sched.Task) error {
				task.Yield()
				return errFirst
			})
			err := g.Wait(task)
			var te *sched.TaskError
			if !errors.Is(err, errFirst) || !errors.As(err, &te) || te.ID != 12 {
				return errors.Join(errors.New("Wait did not return the first error, as task 12's"), err)
			}
			if task.Context().Err() != nil {
				return errors.New("the group cancelled its parent")
			}
			return nil
		})
		if err != nil || cancelled != 10 {
			t.Fatalf("Run = %v; %d tasks saw the cancellation", err, cancelled)
		}
	})
}

func TestGroupPanicCancelsAndReachesRun(t *testing.T) {
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		g := sched.NewGroup(task)
		g.Go(task, func(task *sched.Task) error {
			for task.Context().Err() == nil {
				task.Yield()
			}
			return nil
		})
		g.Go(task, func(*sched.Task) error { panic("oops") })
		if err := g.Wait(task); !errors.Is(err, sched.ErrGroupTaskAborted) {
			return err
		}
		return nil
	})
	var te *sched.TaskError
	if !errors.As(err, &te) || te.ID != 3 {
		t.Fatalf("Run = %v, want task 3's panic", err)
	}
}
