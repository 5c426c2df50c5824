package sched

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
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

	// While parked: what for, on what, and the lock to release once it is
	// suspended.
	waitKind   WaitKind
	waitOn     waitable
	unlock     sync.Locker
	wakeAt     int64       // while sleeping: the clock reading to wake at
	sleepTimer timer       // its Sleep's timer
	sleepStop  func() bool // stops the context callback of its Sleep, if any

	waitMutex *Mutex // the Mutex it waits for, guarded by state.graph

	// claim decides who ends a wait that several may end (a Sleep's timer
	// and its context, the cases of a Select): gen<<1 | 1 while the wait
	// of generation gen is open, gen<<1 once one of them has claimed it.
	gen      uint64
	claim    atomic.Uint64
	sleepErr error
	waiter   any          // the last channel waiter this task used, for reuse
	sel      *selectState // its Selects' scratch, from its first Select on

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
		t.notRunning(op)
	}
	return t.w
}

// enter begins op, an operation of a primitive, for t: it checks that t is
// the running task, and counts the operation against t's budget, yielding
// first once the budget is spent.
func (t *Task) enter(op string) {
	if t.state != stateRunning {
		t.notRunning(op)
	}
	t.budget--
	if t.budget <= 0 {
		t.Yield()
	}
}

//go:noinline
func (t *Task) notRunning(op string) {
	what := "which is not running (a *Task used outside its own function?)"
	if t.state == stateDone {
		what = "which has ended"
	}
	panic(fmt.Sprintf("sched: %s on task %d, %s", op, t.id, what))
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
	t.sleepTimer.owner = t
	t.arm()
	t.state = stateSleeping
	t.setWait(WaitSleep, nil)
	t.suspend()
	err := t.sleepErr
	t.sleepErr = nil
	return err
}

// arm opens a wait of t that several may end, and returns its generation:
// the first to claimWake it makes t runnable, and the others leave it alone.
func (t *Task) arm() uint64 {
	t.gen++
	t.claim.Store(t.gen<<1 | 1)
	return t.gen
}

// claimWake reports whether the caller is the first to end t's wait of
// generation gen: only the first may make t runnable.
func (t *Task) claimWake(gen uint64) bool {
	return t.claim.CompareAndSwap(gen<<1|1, gen<<1)
}

// waiting reports whether t's wait of generation gen is still open.
func (t *Task) waiting(gen uint64) bool { return t.claim.Load() == gen<<1|1 }

// park suspends t, which holds unlock and has registered itself as a waiter
// on what, for kind. The worker releases unlock once t is suspended, so that
// a waker (who needs the lock to find t) never resumes a coroutine still
// running.
func (t *Task) park(kind WaitKind, what waitable, unlock sync.Locker) {
	t.state = stateParked
	t.setWait(kind, what)
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
