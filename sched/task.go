package sched

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weavert/weave/coro"
	"github.com/weavert/weave/internal/engine"
)

// Task is a function running as a coroutine of a Scheduler. Each task gets
// its *Task as its argument; the methods that block (Yield, Sleep, and the
// primitives that take a *Task) must be called from that task's own function
// while it runs, never from another task or goroutine.
type Task struct {
	s    *state
	f    func(*Task) error
	ctx  context.Context
	name string
	id   uint64

	w     *worker    // the worker running it, while it runs
	co    *coroutine // nil until it first runs; then until it ends
	link  *Task      // in the global queue or a primitive's wait list
	state taskState
	// Operations left before a primitive yields for t, even though it
	// could go on: a task that never has to wait (a mutex nobody else
	// wants, a channel that is never empty) still lets others run.
	budget int32

	// While parked: what on, and the lock to release once it is suspended.
	waitOn waitable
	unlock sync.Locker
	wakeAt int64 // while sleeping: the clock reading to wake at

	waitMutex *Mutex // the Mutex it waits for, guarded by graphMu

	// Sleep's wake claim: gen<<1 | 1 while a sleep can be ended, by its
	// timer or its context, whichever swaps it first.
	sleepGen   uint64
	sleepClaim atomic.Uint64
	sleepErr   error
	waiter     any // the last channel waiter this task used, for reuse

	grp     *Group // the innermost group it runs under, or nil
	tracked bool   // in grp.live: started by a task of grp, not by grp.Go

	resumes uint64 // times it started or resumed running
	runNs   int64  // time it ran, with MeasureRunTime

	// origin is the function the program gave (f may be a wrapper of
	// WaitGroup.Go or Group.Go around it): where it is defined is what
	// reports show of where the task came from.
	origin func(*Task) error
}

// CreatedAt names the function t runs and where it is defined, as reports
// show it: "pkg.TestX.func1 (/path/x_test.go:42)".
func (t *Task) CreatedAt() string { return t.createdAt() }

// TaskStats are the counters of one task.
type TaskStats struct {
	Resumes uint64        // times the task started or resumed running
	Running time.Duration // time it spent running; 0 unless MeasureRunTime
}

// Stats returns t's counters. They change while t runs: read them from t
// itself, from a Tracer's method called about t, or after Run returned.
func (t *Task) Stats() TaskStats {
	return TaskStats{Resumes: t.resumes, Running: time.Duration(t.runNs)}
}

// createdAt names the program's function of t and where it is defined, for
// reports: "pkg.TestX.func1 (/path/x_test.go:42)". Reading it costs
// nothing at spawn; the call stack of Go would (runtime.Callers quadrupled
// the cost of a spawn).
func (t *Task) createdAt() string {
	pc := reflect.ValueOf(t.origin).Pointer()
	fn := runtime.FuncForPC(pc)
	if fn == nil {
		return ""
	}
	file, line := fn.FileLine(pc)
	return fmt.Sprintf("%s (%s:%d)", fn.Name(), file, line)
}

type taskState uint8

const (
	stateRunnable taskState = iota
	stateRunning
	stateYielded
	stateParked
	stateSleeping
	stateDone
)

// waitable is what a task can be parked on; it describes itself in reports.
type waitable interface {
	describe() string
}

// ID returns t's identifier, unique within its run. The main task is 1.
func (t *Task) ID() uint64 { return t.id }

// Name returns the name t was started with ("main" for the main task, "" if
// started by Go).
func (t *Task) Name() string { return t.name }

// Context returns t's context: the one it was started with.
func (t *Task) Context() context.Context { return t.ctx }

// Now returns the current time of t's scheduler clock.
func (t *Task) Now() time.Time { return t.s.clock.Now() }

// Go starts f as a new task of t's run and returns at once; f runs later, on
// any worker. What t did before Go happens before f starts. Go must be
// called by t while it runs.
func (t *Task) Go(f func(t *Task) error) {
	t.GoNamed("", f)
}

// GoNamed is Go with a name, which reports and errors show beside the ID.
func (t *Task) GoNamed(name string, f func(t *Task) error) {
	t.spawn(name, f, f)
}

// spawn starts f as a task named name; origin is the program's function
// that f runs, for reports.
func (t *Task) spawn(name string, f, origin func(t *Task) error) {
	if f == nil || origin == nil {
		panic("sched: Go with a nil function")
	}
	w := t.running("Go")
	nt := w.newTask(t, t.ctx, name, f, origin)
	if g := t.grp; g != nil {
		nt.grp, nt.tracked = g, true
		g.track(nt)
	}
	w.push(nt)
	w.s.wakep()
}

// running returns t's worker, or panics if t is not the running task.
func (t *Task) running(op string) *worker {
	if t.state != stateRunning {
		panic(fmt.Sprintf("sched: %s on task %d, which is not running (a *Task used outside its own function?)", op, t.id))
	}
	return t.w
}

// Yield lets the other runnable tasks of t's worker run, and returns when t
// is resumed, possibly on another worker. If nothing else could run on the
// worker, it returns at once, without a switch. A task that never yields or
// parks keeps its worker to itself.
func (t *Task) Yield() {
	w := t.running("Yield")
	if w.alone() {
		t.budget = budgetPerRun
		return
	}
	t.state = stateYielded
	t.suspend()
}

// Sleep parks t for at least d, by t's scheduler clock, or until t's context
// is done; then it returns the context's error, unchanged. The worker runs
// other tasks meanwhile. Sleep(d <= 0) yields and returns the context's
// error.
func (t *Task) Sleep(d time.Duration) error {
	if d <= 0 {
		t.Yield()
		return t.ctx.Err()
	}
	t.running("Sleep")
	if err := t.ctx.Err(); err != nil {
		return err
	}
	t.wakeAt = t.s.now() + int64(d)
	t.sleepGen++
	t.sleepClaim.Store(t.sleepGen<<1 | 1)
	t.state = stateSleeping
	t.waitOn = sleepWait{}
	t.suspend()
	err := t.sleepErr
	t.sleepErr = nil
	return err
}

type sleepWait struct{}

func (sleepWait) describe() string { return "sleep" }

// park suspends t, which holds unlock and has registered itself as a waiter
// on what. The worker releases unlock once t is suspended, so that a waker
// (who needs the lock to find t) never resumes a coroutine still running.
func (t *Task) park(what waitable, unlock sync.Locker) {
	t.state = stateParked
	t.waitOn = what
	t.unlock = unlock
	t.suspend()
}

// wake makes u runnable; t, the running task, is the waker.
func (t *Task) wake(u *Task) { u.s.ready(u, t) }

func (t *Task) suspend() {
	c := t.co
	for {
		if !c.e.Yield() {
			c.e.Unwind()
		}
		if !c.wantStack {
			return
		}
		// A deadlock report resumed us only to ask where we are.
		c.wantStack = false
		c.stack = trimParkStack(stack())
	}
}

// budgetPerRun is what a task may spend between two resumes: Tokio's figure.
const budgetPerRun = 128

// spend counts one operation of a primitive against t's budget, and yields
// when the budget is gone. The budget is renewed each time t is resumed.
func (t *Task) spend() {
	t.budget--
	if t.budget <= 0 {
		t.Yield()
	}
}

// coroutine is an engine coroutine that runs tasks: a pooled one runs fresh
// tasks one after another; a task that parks keeps its coroutine until it
// ends.
type coroutine struct {
	e       engine.Coro
	s       *state
	home    *worker // the worker it was created on: with LockThreads, the only one that may resume it
	t       *Task   // the task it runs, nil while free
	closing bool    // the run's end is closing it: let the unwinding through
	retired bool    // leave the loop and end
	labeled bool    // its goroutine carries a task's pprof labels

	// A deadlock report sets wantStack and resumes the parked task, which
	// puts its stack in stack and suspends again.
	wantStack bool
	stack     []byte
}

// stackOf returns the stack of c's parked task, by resuming it once. Only
// for reports, once nothing runs any more.
func (c *coroutine) stackOf() []byte {
	c.wantStack = true
	c.e.Begin()
	c.e.Switch()
	st := c.stack
	c.stack = nil
	return st
}

func newCoroutine(w *worker) *coroutine {
	s := w.s
	c := &coroutine{s: s, home: w}
	c.e.Init(c)
	s.coMu.Lock()
	s.cos[c] = struct{}{}
	s.coMu.Unlock()
	return c
}

// Run is the coroutine's body (engine.Body): it runs tasks until the
// coroutine is retired. When a task ends, the coroutine takes the next task
// of its worker itself if that task is fresh, so a run of tasks that never
// park costs no switch at all; otherwise it hands the task to the worker,
// which must resume that task's own coroutine.
//
// Rejected: switching back to the worker after every task, as a plain
// worker loop would. It costs two coroutine switches per task, more than
// all the rest of a short task's life.
func (c *coroutine) Run() {
	for !c.retired {
		t := c.t
		for {
			err := c.runTask(t)
			w := t.w // read after: t may have moved to another worker
			w.end(t, err)
			next := w.pick()
			if next == nil || next.co != nil {
				w.handoff = next
				break
			}
			next.co, next.w, next.state, next.budget = c, w, stateRunning, budgetPerRun
			next.resumes++
			c.t, t = next, next
			if w.s.tracer != nil {
				w.s.tracer.Resume(t, w.id)
			}
		}
		c.t = nil
		if !c.e.Yield() {
			c.e.Unwind()
		}
	}
}

// runTask runs t's function and returns its error, or a *coro.PanicError if
// it panicked.
func (c *coroutine) runTask(t *Task) (err error) {
	if t.name != "" || c.labeled {
		c.label(t)
	}
	returned := false
	defer func() {
		if returned {
			return
		}
		r := recover()
		if r == nil {
			// runtime.Goexit: the coroutine ends, and iter.Pull will end
			// the worker's goroutine too, which the worker survives (see
			// worker.main). The task ends here.
			c.t = nil
			t.w.end(t, ErrGoexit)
			c.s.coMu.Lock()
			delete(c.s.cos, c)
			c.s.coMu.Unlock()
			return
		}
		if c.closing {
			panic(r) // the engine's unwinding: not the task's panic
		}
		err = &coro.PanicError{Value: r, Stack: stack()}
	}()
	err = t.f(t)
	returned = true
	return err
}

// label gives the coroutine's goroutine the pprof label task=<name> of
// the named task t, so that CPU profiles split by task, or takes away the
// previous task's label. Unnamed tasks on an unlabeled coroutine, the common
// case, cost one branch.
func (c *coroutine) label(t *Task) {
	if t.name == "" {
		pprof.SetGoroutineLabels(context.Background())
		c.labeled = false
		return
	}
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("task", t.name)))
	c.labeled = true
}

// retire ends a free coroutine: one resume runs its loop to the end.
func (c *coroutine) retire() {
	c.retired = true
	c.e.Begin()
	if !c.e.Switch() {
		c.e.End() // its loop returned: nothing to record
	}
	c.s.coMu.Lock()
	delete(c.s.cos, c)
	c.s.coMu.Unlock()
}
