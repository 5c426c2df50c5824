package sched_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weavert/weave/sched"
)

// An event loop: on one thread, tasks take turns and share state without
// locks.
func Example() {
	s := sched.New(sched.Threads(1))
	err := s.Run(func(t *sched.Task) error {
		ch := sched.NewChan[string](0)
		t.GoNamed("producer", func(t *sched.Task) error {
			for _, w := range []string{"one", "two", "three"} {
				ch.Send(t, w)
			}
			ch.Close()
			return nil
		})
		for {
			w, ok := ch.Recv(t)
			if !ok {
				return nil
			}
			fmt.Println(w)
		}
	})
	fmt.Println("err:", err)
	// Output:
	// one
	// two
	// three
	// err: <nil>
}

// Run reports a deadlock instead of hanging, naming each parked task.
func ExampleDeadlockError() {
	err := sched.New(sched.Threads(1)).Run(func(t *sched.Task) error {
		ch := sched.NewChan[int](0)
		t.GoNamed("waiter", func(t *sched.Task) error {
			ch.Recv(t)
			return nil
		})
		var wg sched.WaitGroup
		wg.Add(1)
		wg.Wait(t) // nobody calls Done
		return nil
	})
	var d *sched.DeadlockError
	if errors.As(err, &d) {
		for _, p := range d.Tasks {
			fmt.Println(p.ID, p.Name)
		}
	}
	// Output:
	// 1 main
	// 2 waiter
}

// Errors of all tasks come back together, in task order; a panic becomes an
// error too.
func ExampleScheduler_Run() {
	err := sched.New(sched.Threads(2)).Run(func(t *sched.Task) error {
		t.GoNamed("a", func(*sched.Task) error { return errors.New("a failed") })
		t.GoNamed("b", func(*sched.Task) error { return errors.New("b failed") })
		return nil
	})
	fmt.Println(err)
	// Output:
	// sched: task 2 (a): a failed
	// sched: task 3 (b): b failed
}

func ExampleMutex() {
	var mu sched.Mutex
	balance := 0
	err := sched.New(sched.Threads(2)).Run(func(t *sched.Task) error {
		var wg sched.WaitGroup
		for range 100 {
			wg.Go(t, func(t *sched.Task) error {
				mu.Lock(t)
				defer mu.Unlock()
				b := balance
				t.Yield() // other tasks run, but none enters here
				balance = b + 1
				return nil
			})
		}
		wg.Wait(t)
		return nil
	})
	fmt.Println(balance, err)
	// Output: 100 <nil>
}

// A Group cancels the other tasks when one fails, and Wait returns that
// first error.
func ExampleGroup() {
	err := sched.New(sched.Threads(2)).Run(func(t *sched.Task) error {
		g := sched.NewGroup(t)
		g.Go(t, func(t *sched.Task) error {
			// Waits until the group is cancelled.
			sched.Select(t, sched.OnDone(t.Context(), nil))
			return t.Context().Err()
		})
		g.Go(t, func(t *sched.Task) error {
			return errors.New("disk full")
		})
		fmt.Println("group:", g.Wait(t))
		return nil
	})
	fmt.Println("run:", err)
	// Output:
	// group: sched: task 3: disk full
	// run: <nil>
}

// Await runs blocking work off the scheduler's threads: the task parks, and
// the other tasks of its thread go on.
func ExampleAwait() {
	results := make(chan int) // a Go channel: receiving would block the thread
	go func() { results <- 42 }()
	err := sched.New(sched.Threads(1)).Run(func(t *sched.Task) error {
		n, err := sched.Await(t, func(ctx context.Context) (int, error) {
			select {
			case n := <-results:
				return n, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		})
		fmt.Println(n, err)
		return nil
	})
	fmt.Println(err)
	// Output:
	// 42 <nil>
	// <nil>
}

// Select waits on several channels at once; TrySelect is its form with a
// default branch.
func ExampleSelect() {
	err := sched.New(sched.Threads(1)).Run(func(t *sched.Task) error {
		words, numbers := sched.NewChan[string](1), sched.NewChan[int](1)
		if sched.TrySelect(t, sched.OnRecv(words, nil)) == -1 {
			fmt.Println("nothing yet")
		}
		t.Go(func(t *sched.Task) error { numbers.Send(t, 7); return nil })
		sched.Select(t,
			sched.OnRecv(words, func(w string, _ bool) { fmt.Println("word", w) }),
			sched.OnRecv(numbers, func(n int, _ bool) { fmt.Println("number", n) }),
		)
		return nil
	})
	fmt.Println(err)
	// Output:
	// nothing yet
	// number 7
	// <nil>
}

// Sleep parks the task, not the thread; it returns early, with the
// context's error, if the task's context ends.
func ExampleTask_Sleep() {
	err := sched.New(sched.Threads(1)).Run(func(t *sched.Task) error {
		t.Go(func(t *sched.Task) error {
			fmt.Println("runs while main sleeps")
			return nil
		})
		return t.Sleep(time.Millisecond)
	})
	fmt.Println(err)
	// Output:
	// runs while main sleeps
	// <nil>
}
