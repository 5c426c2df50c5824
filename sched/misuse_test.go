package sched_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/weavert/weave/sched"
)

// panicOf runs f and returns what it panicked with, as a string ("" if it
// did not panic).
func panicOf(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

// Each misuse panics at the call, with a message that starts with "sched:"
// and names it, and leaves what it touched as it was.
func TestMisusePanics(t *testing.T) {
	var ended *sched.Task
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		task.Go(func(task *sched.Task) error { ended = task; return nil })
		task.Yield()

		var mu sched.Mutex
		var wg sched.WaitGroup
		g := sched.NewGroup(task)
		checks := []struct {
			name, want string
			f          func()
		}{
			{"Mutex.Lock by an ended task", "sched: Mutex.Lock on task 2, which has ended", func() { mu.Lock(ended) }},
			{"Mutex.TryLock by an ended task", "sched: Mutex.TryLock on task 2, which has ended", func() { mu.TryLock(ended) }},
			{"WaitGroup.Go(nil)", "sched: WaitGroup.Go with a nil function", func() { wg.Go(task, nil) }},
			{"Group.Go(nil)", "sched: Group.Go with a nil function", func() { g.Go(task, nil) }},
			{"Close of a nil Chan", "sched: close of nil channel", func() { (*sched.Chan[int])(nil).Close() }},
			{"Run(nil)", "sched: Run with a nil function", func() { sched.New().Run(nil) }},
		}
		for _, c := range checks {
			if got := panicOf(c.f); got != c.want {
				t.Errorf("%s: panicked with %q, want %q", c.name, got, c.want)
			}
		}
		// Nothing was changed on the way: the Mutex is free, the counter
		// is zero (Wait returns at once), the group has no task.
		if !mu.TryLock(task) {
			t.Error("the Mutex is held after the refused Locks")
		}
		mu.Unlock()
		wg.Wait(task)
		return g.Wait(task)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Cond.Wait by a task that does not hold the Cond's Mutex panics before
// touching anything: the Cond goes on working for the tasks that use it
// right.
func TestCondWaitWithoutItsLock(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			c := sched.NewCond(new(sched.Mutex))
			msg := panicOf(func() { c.Wait(task) })
			if !strings.HasPrefix(msg, "sched: Cond.Wait by task 1, which does not hold") {
				return fmt.Errorf("Cond.Wait without the lock panicked with %q", msg)
			}
			ready := false
			task.Go(func(task *sched.Task) error {
				c.L.Lock(task)
				ready = true
				c.Signal()
				c.L.Unlock()
				return nil
			})
			c.L.Lock(task)
			for !ready {
				c.Wait(task)
			}
			c.L.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// A nil *Chan behaves as Go's nil channel: Try operations never proceed, a
// Select case on it is never chosen, Send and Recv wait forever, and Close
// panics (TestMisusePanics). The zero Chan is an unbuffered channel.
func TestNilAndZeroChan(t *testing.T) {
	var nilc *sched.Chan[int]
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		if nilc.TrySend(task, 1) {
			return errors.New("TrySend on a nil Chan sent")
		}
		if _, _, ready := nilc.TryRecv(task); ready {
			return errors.New("TryRecv on a nil Chan received")
		}
		if nilc.Len() != 0 || nilc.Cap() != 0 {
			return errors.New("a nil Chan has a length or a capacity")
		}
		ready := sched.NewChan[int](1)
		ready.Send(task, 7)
		if i := sched.Select(task, sched.OnRecv(nilc, nil), sched.OnSend(nilc, 1, nil), sched.OnRecv(ready, nil)); i != 2 {
			return fmt.Errorf("Select chose case %d, on a nil Chan", i)
		}
		if i := sched.TrySelect(task, sched.OnRecv(nilc, nil)); i != -1 {
			return fmt.Errorf("TrySelect chose case %d, on a nil Chan", i)
		}

		var zero sched.Chan[string]
		task.Go(func(task *sched.Task) error { zero.Send(task, "hello"); return nil })
		if v, ok := zero.Recv(task); v != "hello" || !ok || zero.Cap() != 0 {
			return fmt.Errorf("the zero Chan: Recv = %q, %v; Cap = %d", v, ok, zero.Cap())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	err = sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		nilc.Recv(task)
		return nil
	})
	if !errors.Is(err, sched.ErrDeadlock) || !strings.Contains(err.Error(), "chan receive on a nil channel") {
		t.Fatalf("Recv on a nil Chan: Run = %v, want a deadlock on a nil channel", err)
	}
}

// The error a group's task returns comes out of Wait, and so of Run, with
// that task's ID and name.
func TestGroupErrorNamesItsTask(t *testing.T) {
	errFull := errors.New("disk full")
	err := sched.New(sched.Threads(2)).Run(func(task *sched.Task) error {
		g := sched.NewGroup(task)
		g.Go(task, func(*sched.Task) error { return nil })
		g.GoNamed(task, "writer", func(*sched.Task) error { return errFull })
		return g.Wait(task)
	})
	if !errors.Is(err, errFull) || !strings.Contains(err.Error(), "task 3 (writer): disk full") {
		t.Fatalf("Run = %v, want the writer's error under its name", err)
	}
}

// A *Task used by a goroutine while its task is parked is caught at the
// call, and changes nothing: the task goes on when its real waker comes.
func TestTaskUsedByAGoroutineWhileParked(t *testing.T) {
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		ch := sched.NewChan[int](0)
		parked := make(chan struct{})
		caught := make(chan string)
		go func() {
			<-parked
			caught <- panicOf(func() { ch.Send(task, 1) })
		}()
		task.Go(func(u *sched.Task) error {
			close(parked) // main is parked in Recv: this task runs after it
			msg := <-caught
			if !strings.HasPrefix(msg, "sched: Chan.Send on task 1, which is not running") {
				return fmt.Errorf("the goroutine's Send panicked with %q", msg)
			}
			ch.Send(u, 2)
			return nil
		})
		if v, _ := ch.Recv(task); v != 2 {
			return fmt.Errorf("received %d, want the real sender's 2", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
