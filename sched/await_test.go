package sched_test

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/weavert/weave/coro"
	"github.com/weavert/weave/sched"
)

// Await parks the task, not the thread: on one thread, another task runs
// while the awaited function blocks, and releases it.
func TestAwaitDoesNotBlockTheThread(t *testing.T) {
	release := make(chan int)
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		task.Go(func(task *sched.Task) error {
			release <- 42 // blocks this thread until the Await's goroutine receives
			return nil
		})
		v, err := sched.Await(task, func(context.Context) (int, error) {
			return <-release, nil
		})
		if err != nil || v != 42 {
			return errors.New("Await did not return the value")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Many awaits on a pool of two goroutines all complete; none counts as a
// deadlock while it runs.
func TestAwaitLimit(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		gate := make(chan struct{})
		sum := 0
		var mu sched.Mutex
		err := sched.New(sched.Threads(n), sched.AwaitLimit(2)).Run(func(task *sched.Task) error {
			var wg sched.WaitGroup
			for i := range 20 {
				wg.Go(task, func(task *sched.Task) error {
					v, err := sched.Await(task, func(context.Context) (int, error) {
						<-gate
						return i, nil
					})
					mu.Lock(task)
					sum += v
					mu.Unlock()
					return err
				})
			}
			close(gate)
			wg.Wait(task)
			return nil
		})
		if err != nil || sum != 190 {
			t.Fatalf("Run = %v, sum = %d", err, sum)
		}
	})
}

func TestAwaitPanicAndGoexit(t *testing.T) {
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		_, err := sched.Await(task, func(context.Context) (int, error) {
			runtime.Goexit()
			return 0, nil
		})
		if !errors.Is(err, sched.ErrGoexit) {
			return errors.New("Goexit in Await: want ErrGoexit")
		}
		sched.Await(task, func(context.Context) (int, error) { panic("deep") })
		return nil
	})
	var pe *coro.PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("Run = %v, want the Await's panic", err)
	}
	if p, ok := pe.Value.(*coro.PanicError); !ok || p.Value != "deep" {
		t.Fatalf("panic value = %v", pe.Value)
	}
}

// Cancelling the group reaches the awaited function through its context.
func TestAwaitCancellation(t *testing.T) {
	errStop := errors.New("stop")
	err := sched.New(sched.Threads(2)).Run(func(task *sched.Task) error {
		g := sched.NewGroup(task)
		started := sched.NewChan[struct{}](1)
		g.Go(task, func(task *sched.Task) error {
			_, err := sched.Await(task, func(ctx context.Context) (int, error) {
				<-ctx.Done()
				return 0, context.Cause(ctx)
			})
			return err
		})
		g.Go(task, func(task *sched.Task) error {
			started.Send(task, struct{}{})
			return errStop
		})
		started.Recv(task)
		if err := g.Wait(task); !errors.Is(err, errStop) {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A call that finds every goroutine of the pool busy says so: its task parks
// waiting for one (WaitAwaitQueued, on the pool), and, once its function
// runs, waits for it (WaitAwait) without a new park.
func TestAwaitQueued(t *testing.T) {
	r := &reasons{by: map[string]sched.WaitReason{}}
	gate, started, ran := make(chan struct{}), make(chan struct{}), make(chan struct{})
	closed := func(c chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	err := sched.New(sched.Threads(1), sched.AwaitLimit(1), sched.WithTracer(r)).Run(func(task *sched.Task) error {
		task.GoNamed("running", func(task *sched.Task) error {
			_, err := sched.Await(task, func(context.Context) (int, error) {
				close(started)
				<-gate
				return 0, nil
			})
			return err
		})
		for !closed(started) {
			task.Yield()
		}
		task.GoNamed("queued", func(task *sched.Task) error {
			_, err := sched.Await(task, func(context.Context) (int, error) {
				close(ran)
				return 0, nil
			})
			return err
		})
		task.Yield() // it runs up to its wait

		want := "Await queued on the Await pool (AwaitLimit 1, all busy)"
		if why := r.of("queued"); why.Kind != sched.WaitAwaitQueued || why.String() != want || why.Detail() != want {
			t.Errorf("the queued call waits for %v: %q, want %v: %q", why.Kind, why.Detail(), sched.WaitAwaitQueued, want)
		}
		if why := r.of("running"); why.Kind != sched.WaitAwait || why.String() != "Await" {
			t.Errorf("the running call waits for %v: %q, want Await", why.Kind, why.Detail())
		}
		close(gate)
		for !closed(ran) {
			task.Yield()
		}
		if why := r.of("queued"); why.Kind != sched.WaitAwait || why.String() != "Await" {
			t.Errorf("once its function ran, the queued call waits for %v: %q, want Await", why.Kind, why.Detail())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
