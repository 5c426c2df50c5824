package sched_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/weavert/weave/coro"
	"github.com/weavert/weave/sched"
)

var threadCounts = []int{1, 2, 4}

func forThreads(t *testing.T, f func(t *testing.T, n int)) {
	for _, n := range threadCounts {
		t.Run(fmt.Sprintf("threads=%d", n), func(t *testing.T) { f(t, n) })
	}
}

func TestRunMainOnly(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		ran := false
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			ran = true
			if task.ID() != 1 || task.Name() != "main" {
				t.Errorf("main task: id %d name %q", task.ID(), task.Name())
			}
			if task.Context() == nil {
				t.Error("nil context")
			}
			return nil
		})
		if err != nil || !ran {
			t.Fatalf("Run = %v, ran = %v", err, ran)
		}
	})
}

// Run returns only once every task started, transitively, has ended.
func TestRunWaitsForAllTasks(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		var count atomic.Int64
		var spawn func(depth int) func(*sched.Task) error
		spawn = func(depth int) func(*sched.Task) error {
			return func(task *sched.Task) error {
				count.Add(1)
				if depth == 0 {
					return nil
				}
				for range 4 {
					task.Go(spawn(depth - 1))
					task.Yield()
				}
				return nil
			}
		}
		if err := sched.New(sched.Threads(n)).Run(spawn(6)); err != nil {
			t.Fatal(err)
		}
		// 1 + 4 + 16 + ... + 4^6
		if got, want := count.Load(), int64(5461); got != want {
			t.Fatalf("ran %d tasks, want %d", got, want)
		}
	})
}

// With Threads(1), tasks share a plain map with no lock: the race detector
// would see any two tasks running at once.
func TestEventLoopNeedsNoLocks(t *testing.T) {
	m := map[int]int{}
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		for i := range 1000 {
			task.Go(func(task *sched.Task) error {
				r := rand.New(rand.NewPCG(uint64(i), 1))
				for j := range 20 {
					m[r.IntN(100)] += j
					if r.IntN(3) == 0 {
						task.Yield()
					}
					m[i%50]++
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each task adds 0+1+...+19 to random keys and 1 twenty times: a lost
	// update would show in the total.
	total := 0
	for _, v := range m {
		total += v
	}
	if want := 1000 * (190 + 20); total != want {
		t.Fatalf("total %d, want %d: updates were lost", total, want)
	}
}

// Errors come back joined, in the order the tasks failed, each as a
// *TaskError; panics keep their value and stack, and the other tasks go on.
func TestErrorsAndPanics(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		errBoom := errors.New("boom")
		var others atomic.Int64
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			task.GoNamed("panicker", func(*sched.Task) error { panic(errBoom) })
			task.GoNamed("failer", func(*sched.Task) error { return fmt.Errorf("failed: %w", errBoom) })
			for range 10 {
				task.Go(func(task *sched.Task) error {
					task.Yield()
					others.Add(1)
					return nil
				})
			}
			return errors.New("main failed")
		})
		if others.Load() != 10 {
			t.Fatalf("%d other tasks ran, want 10", others.Load())
		}
		var joined interface{ Unwrap() []error }
		if !errors.As(err, &joined) || len(joined.Unwrap()) != 3 {
			t.Fatalf("Run = %v, want 3 joined errors", err)
		}
		errs := joined.Unwrap()
		var ids []uint64
		for _, e := range errs {
			var te *sched.TaskError
			if !errors.As(e, &te) {
				t.Fatalf("%v is not a *TaskError", e)
			}
			ids = append(ids, te.ID)
		}
		// On one thread, main ends before the tasks it started run, and
		// they run in the order it started them.
		if n == 1 && fmt.Sprint(ids) != "[1 2 3]" {
			t.Fatalf("errors of tasks %v, in that order; want 1, 2, 3", ids)
		}
		if slices.Sort(ids); fmt.Sprint(ids) != "[1 2 3]" {
			t.Fatalf("errors of tasks %v, want 1, 2 and 3", ids)
		}
		var pe *coro.PanicError
		if !errors.As(err, &pe) || pe.Value != errBoom || !strings.Contains(string(pe.Stack), "sched_test") {
			t.Fatalf("panic error = %#v", pe)
		}
		if !errors.Is(err, errBoom) {
			t.Fatal("errors.Is does not see through to the panic value")
		}
	})
}

// A task that keeps yielding does not starve the others.
func TestYieldIsFair(t *testing.T) {
	var stop atomic.Bool
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		task.Go(func(task *sched.Task) error {
			for !stop.Load() {
				task.Yield()
			}
			return nil
		})
		task.Go(func(task *sched.Task) error {
			stop.Store(true)
			return nil
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMisuse(t *testing.T) {
	var saved *sched.Task
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		task.Go(func(task *sched.Task) error { saved = task; return nil })
		task.Yield()
		defer func() {
			r := recover()
			if s, _ := r.(string); !strings.HasPrefix(s, "sched: Yield") {
				t.Errorf("Yield on an ended task: recovered %v", r)
			}
		}()
		saved.Yield()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRunManyTimes(t *testing.T) {
	s := sched.New(sched.Threads(2))
	for range 20 {
		var n atomic.Int64
		if err := s.Run(func(task *sched.Task) error {
			for range 300 {
				task.Go(func(*sched.Task) error { n.Add(1); return nil })
			}
			return nil
		}); err != nil || n.Load() != 300 {
			t.Fatalf("Run = %v, %d tasks ran", err, n.Load())
		}
	}
	_ = runtime.NumGoroutine
}

// A task that calls runtime.Goexit ends with ErrGoexit; its worker and the
// other tasks go on.
func TestGoexit(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		var after atomic.Int64
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			for range 3 {
				task.GoNamed("quitter", func(task *sched.Task) error {
					task.Yield()
					runtime.Goexit()
					return nil
				})
			}
			for range 20 {
				task.Go(func(task *sched.Task) error {
					task.Yield()
					after.Add(1)
					return nil
				})
			}
			return nil
		})
		if !errors.Is(err, sched.ErrGoexit) || after.Load() != 20 {
			t.Fatalf("Run = %v; %d tasks ran after", err, after.Load())
		}
		if got := strings.Count(err.Error(), "quitter"); got != 3 {
			t.Fatalf("%d quitters reported, want 3:\n%v", got, err)
		}
	})
}

// A task that calls runtime.Goexit while another task's goroutine resumed
// it (on one thread, a task that parks runs the worker loop itself) ends
// alone: the other task goes on, and its deferred calls run once, at its
// own end.
func TestGoexitEndsOnlyItsTask(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		deferred := 0
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			defer func() { deferred++ }()
			ch := sched.NewChan[int](0)
			for range 3 {
				task.GoNamed("quitter", func(task *sched.Task) error {
					ch.Recv(task)
					runtime.Goexit()
					return nil
				})
				ch.Send(task, 1) // parks until the quitter receives
				task.Yield()
			}
			if deferred != 0 {
				return errors.New("main's deferred call ran before its end")
			}
			return nil
		})
		if !errors.Is(err, sched.ErrGoexit) || deferred != 1 {
			t.Fatalf("Run = %v; main's deferred call ran %d times, want once", err, deferred)
		}
		if got := strings.Count(err.Error(), "quitter"); got != 3 {
			t.Fatalf("%d quitters reported, want 3:\n%v", got, err)
		}
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			if te, ok := errors.AsType[*sched.TaskError](e); ok && te.ID == 1 {
				t.Fatalf("main failed: %v", e)
			}
		}
	})
}

// Tasks that never park run one after another on one pooled coroutine: the
// goroutine count stays flat however many are spawned.
func TestSpawnDoesNotCostGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	most := 0
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		for range 10_000 {
			task.Go(func(*sched.Task) error {
				most = max(most, runtime.NumGoroutine())
				return nil
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The worker, and a coroutine for main and one for the rest.
	if most-before > 3 {
		t.Fatalf("%d goroutines while 10,000 tasks ran, %d before", most, before)
	}
}

// Two tasks that keep waking each other through the next slot cannot starve
// a third task waiting in the queue: the next slot is used at most 3 times
// in a row.
func TestNextSlotCannotStarveTheQueue(t *testing.T) {
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		stop := false
		ping, pong := sched.NewChan[int](0), sched.NewChan[int](0)
		task.Go(func(task *sched.Task) error {
			for !stop {
				ping.Send(task, 1)
				pong.Recv(task)
			}
			ping.Close()
			return nil
		})
		task.Go(func(task *sched.Task) error {
			for {
				if _, ok := ping.Recv(task); !ok {
					return nil
				}
				pong.Send(task, 1)
			}
		})
		// Main goes to the back of the queue behind the two, which then
		// wake each other for as long as the next slot lets them.
		task.Yield()
		stop = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A task that never has to wait still lets others run: the primitives yield
// for it once its budget is spent. Without that, the loop below would keep
// the only thread forever.
func TestBudgetPreventsStarvation(t *testing.T) {
	for _, op := range []string{"lock", "send", "recv", "wait"} {
		t.Run(op, func(t *testing.T) {
			err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
				stop := false
				task.Go(func(task *sched.Task) error {
					var mu sched.Mutex
					var wg sched.WaitGroup
					ch := sched.NewChan[int](1)
					for !stop {
						switch op {
						case "lock":
							mu.Lock(task)
							mu.Unlock()
						case "send":
							ch.TrySend(task, 1)
							ch.TryRecv(task)
						case "recv":
							ch.Send(task, 1)
							ch.Recv(task)
						case "wait":
							wg.Wait(task)
						}
					}
					return nil
				})
				task.Go(func(*sched.Task) error { stop = true; return nil })
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRunWhileRunningPanics(t *testing.T) {
	s := sched.New(sched.Threads(1))
	err := s.Run(func(task *sched.Task) error {
		return s.Run(func(*sched.Task) error { return nil })
	})
	var pe *coro.PanicError
	if !errors.As(err, &pe) || !strings.HasPrefix(fmt.Sprint(pe.Value), "sched: Run called while") {
		t.Fatalf("Run = %v", err)
	}
	// Nested Run of another scheduler is fine: it blocks the thread.
	err = s.Run(func(task *sched.Task) error {
		return sched.New(sched.Threads(2)).Run(func(*sched.Task) error { return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A deferred call that panics while a deadlocked task is unwound is that
// task's failure, reported beside the deadlock, not dropped.
func TestPanicWhileUnwindingIsReported(t *testing.T) {
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		task.GoNamed("stuck", func(task *sched.Task) error {
			defer func() { panic("in a deferred call") }()
			var wg sched.WaitGroup
			wg.Add(1)
			wg.Wait(task) // nothing will ever count down
			return nil
		})
		return nil
	})
	if !errors.Is(err, sched.ErrDeadlock) {
		t.Fatalf("Run = %v, want a deadlock", err)
	}
	var te *sched.TaskError
	if !errors.As(err, &te) || te.Name != "stuck" {
		t.Fatalf("Run = %v, want the stuck task's failure too", err)
	}
	var pe *coro.PanicError
	if !errors.As(te, &pe) || pe.Value != "in a deferred call" {
		t.Fatalf("the task failed with %v, want its deferred call's panic", te.Err)
	}
}
