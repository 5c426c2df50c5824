package sched_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
)

// A Notify with nobody waiting is kept for the next Wait, once; one with
// tasks parked wakes them all.
func TestNotify(t *testing.T) {
	for _, opt := range []sched.Option{sched.Threads(1), sched.Threads(4), sched.Deterministic(newSeeded(3))} {
		err := sched.New(opt).Run(func(task *sched.Task) error {
			n := sched.NewNotify("test")
			n.Notify()
			n.Notify() // one permit, not two
			if err := n.Wait(task); err != nil {
				return err
			}
			// A producer and a consumer: the consumer sees every value,
			// whether it was parked or not when each came.
			var mu sched.Mutex
			queue, got := 0, 0
			done := false
			task.Go(func(task *sched.Task) error {
				for i := range 1000 {
					mu.Lock(task)
					queue++
					done = i == 999
					mu.Unlock()
					n.Notify()
				}
				return nil
			})
			for {
				mu.Lock(task)
				got += queue
				queue = 0
				over := done
				mu.Unlock()
				if over {
					break
				}
				if err := n.Wait(task); err != nil {
					return err
				}
			}
			if got != 1000 {
				return fmt.Errorf("the consumer saw %d of 1000", got)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Several tasks parked on one Notify all wake. On one thread they park
	// in turn before the main task goes on.
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		n := sched.NewNotify("")
		woken := 0
		var g sched.WaitGroup
		for range 3 {
			g.Go(task, func(task *sched.Task) error {
				err := n.Wait(task)
				woken++
				return err
			})
		}
		task.Yield()
		n.Notify()
		g.Wait(task)
		if woken != 3 {
			return fmt.Errorf("%d of 3 parked tasks woke", woken)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A Wait ends with its context; a Wait nothing can end is a deadlock that
// names the Notify.
func TestNotifyCancelDeadlock(t *testing.T) {
	err := sched.New().Run(func(task *sched.Task) error {
		g := sched.NewGroup(task)
		n := sched.NewNotify("never")
		var werr error
		g.Go(task, func(task *sched.Task) error {
			werr = n.Wait(task)
			return nil
		})
		g.Go(task, func(task *sched.Task) error { return errors.New("stop") })
		g.Wait(task)
		if !errors.Is(werr, context.Canceled) {
			return fmt.Errorf("a cancelled Wait: %v", werr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = sched.New().Run(func(task *sched.Task) error {
		return sched.NewNotify("the data").Wait(task)
	})
	if !errors.Is(err, sched.ErrDeadlock) || !strings.Contains(err.Error(), "Notify.Wait") || !strings.Contains(err.Error(), "(the data)") {
		t.Fatalf("a Wait for good: %v", err)
	}
}

// AfterFunc calls its function at its time on the scheduler's clock; Stop
// and Reset move it.
func TestAfterFunc(t *testing.T) {
	err := sched.New(sched.Deterministic(newSeeded(1))).Run(func(task *sched.Task) error {
		start := task.Now()
		n := sched.NewNotify("")
		var at []time.Duration
		ft := sched.AfterFunc(task, 10*time.Millisecond, func() {
			at = append(at, task.Now().Sub(start))
			n.Notify()
		})
		n.Wait(task)
		if ft.Reset(5 * time.Millisecond) {
			return errors.New("Reset of a timer that fired says it was pending")
		}
		n.Wait(task)
		stopped := sched.AfterFunc(task, time.Millisecond, func() { at = append(at, -1) })
		if !stopped.Stop() || stopped.Stop() {
			return errors.New("Stop of a pending timer, then of a stopped one")
		}
		task.Sleep(time.Second)
		if fmt.Sprint(at) != "[10ms 15ms]" {
			return fmt.Errorf("the functions ran at %v", at)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
