package sched

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weavert/weave/internal/engine"
	"github.com/weavert/weave/internal/simhost"
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
	next  *Task      // in the global queue or a primitive's wait list (fifo)
	state taskState

	// While parked: what for, and how the wait ended if something other
	// than its waker ended it (wait.go).
	waitKind WaitKind
	intr     intr
	// armed: its current wait is armed in claim, which its waker reads
	// under the primitive's lock.
	armed       bool
	cancellable bool // its context can end: its waits are armed for it
	unwinding   bool // it gave up a wait and unwinds: its waits are no longer cancelled
	direct      bool // started by its scope's Group's Go, or its Handle's own task

	// Operations left before a primitive yields for t, even though it
	// could go on: a task that never has to wait (a mutex nobody else
	// wants, a channel that is never empty) still lets others run.
	budget int32

	// While parked: what it waits on, and the lock that guards it, which
	// the worker releases once t is suspended.
	waitOn waitable
	waitMu sync.Locker
	// The claim word (wait.go) of its waits, and their generation.
	claim atomic.Uint64
	gen   uint64

	scope *scope // the Group's or Handle's it belongs to, or nil (scope.go)

	// x holds what only some tasks need: made at the first need, never
	// replaced, and read by other tasks (wakers, the wait-for graph)
	// through an atomic load.
	x atomic.Pointer[taskExtra]

	resumes uint64 // times it started or resumed running
	runNs   int64  // time it ran, with MeasureRunTime
}

// taskExtra is what a task needs only if it sleeps, waits on a channel or a
// lock, selects, is named in a report, or runs a wrapped function: kept out
// of Task, so that a task that never does costs as little as a closure.
type taskExtra struct {
	// origin is the function the program gave, if f wraps it (WaitGroup.Go,
	// Spawn): where it is defined is what reports show.
	origin any

	sleepTimer timer        // its Sleep's timer
	parkMu     sync.Mutex   // held while it parks on what has no lock of its own (Sleep, a nil Chan)
	waiter     any          // the last channel waiter it used, for reuse
	sel        *selectState // its Selects' scratch

	// The lock it waits for, to read if waitRead, and the last search of
	// the wait-for graph that reached it; guarded by state.graph.
	waitLock graphLock
	waitRead bool
	mark     uint64

	cause  intr    // why it unwinds
	report *[]byte // where to put its stack when it unwinds, for the report that named it
	lastOp string  // in a deterministic run, its last operation, for reports

	// The simulated host it belongs to, and the host's incarnation it
	// started in (host.go).
	host  *simhost.Host
	epoch uint64
}

// extra returns t's taskExtra, making it if t has none yet.
func (t *Task) extra() *taskExtra {
	if x := t.x.Load(); x != nil {
		return x
	}
	x := &taskExtra{}
	if t.x.CompareAndSwap(nil, x) {
		return x
	}
	return t.x.Load()
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
	var origin any = t.f
	if x := t.x.Load(); x != nil && x.origin != nil {
		origin = x.origin
	}
	pc := reflect.ValueOf(origin).Pointer()
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
	stateDone
)

// ID returns t's identifier, unique within its run. The main task is 1.
func (t *Task) ID() uint64 { return t.id }

// Name returns the name t was started with ("main" for the main task, "" if
// started by Go).
func (t *Task) Name() string { return t.name }

// Context returns t's context: the one it was started with.
func (t *Task) Context() context.Context { return t.ctx }

// Now returns the current time of t's scheduler clock; for a task of a
// simulated host, with the skew of the host's clock.
func (t *Task) Now() time.Time {
	now := t.s.clock.Now()
	if x := t.x.Load(); x != nil && x.host != nil {
		now = now.Add(x.host.Offset)
	}
	return now
}

// Go starts f as a new task of t's run and returns at once; f runs later, on
// any worker. What t did before Go happens before f starts. Go must be
// called by t while it runs.
func (t *Task) Go(f func(t *Task) error) {
	t.GoNamed("", f)
}

// GoNamed is Go with a name, which reports and errors show beside the ID.
func (t *Task) GoNamed(name string, f func(t *Task) error) {
	t.spawn(name, f, nil)
}

// spawn starts f as a task named name; origin is the program's function
// that f runs, for reports.
func (t *Task) spawn(name string, f func(t *Task) error, origin any) {
	if f == nil {
		panic("sched: Go with a nil function")
	}
	w := t.running("Go")
	nt := w.newTask(t, t.ctx, name, f, origin)
	if sc := t.scope; sc != nil {
		sc.join(nt, false)
	}
	w.start(t, nt)
}

// running returns t's worker, or panics if t is not the running task.
func (t *Task) running(op string) *worker {
	if t.state != stateRunning {
		t.notRunning(op)
	}
	return t.w
}

// enter begins op, an operation of a primitive, for t: it checks that t is
// the running task, gives a deterministic run a decision point, and counts
// the operation against t's budget, yielding first once the budget is spent.
func (t *Task) enter(op string) {
	if t.state != stateRunning {
		t.notRunning(op)
	}
	if t.s.mode == modeSim {
		t.extra().lastOp = op
		t.s.sim.point(t)
	}
	t.budget--
	if t.budget <= 0 {
		t.yield()
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
	t.running("Yield")
	if t.s.mode == modeSim {
		t.extra().lastOp = "Yield"
	}
	t.yield()
}

// yield is Yield for t, running: a yield of its own, or one that spending
// its budget forces.
func (t *Task) yield() {
	if t.w.alone() {
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
	if err := t.ctx.Err(); err != nil && !t.unwinding {
		return err
	}
	s := t.s
	x := t.extra()
	x.sleepTimer.owner = t
	x.parkMu.Lock()
	// The timer, armed now, may fire on another worker before t is
	// suspended: its fire takes parkMu, which the worker releases then.
	x.sleepTimer.seq = t.armFor(WaitSleep, (*sleeping)(t), &x.parkMu)
	s.addTimer(&x.sleepTimer, s.now()+int64(d))
	switch t.park(WaitSleep, (*sleeping)(t), &x.parkMu) {
	case intrCancel:
		return t.ctx.Err()
	case intrUnwind:
		t.unwind()
	}
	return nil
}

// sleeping is a task in Sleep, as what it waits on.
type sleeping Task

func (*sleeping) appendWait(b []byte, _ func(any) string, _ bool) []byte { return b }

func (z *sleeping) dequeueLocked(*Task) taskList {
	z.s.timers.remove(&z.x.Load().sleepTimer)
	return taskList{}
}

// wake makes u runnable; t, the running task, is the waker.
func (t *Task) wake(u *Task) { u.s.ready(u, t) }

// suspend switches t's coroutine out, to its worker. The coroutine must be
// the one running: a goroutine that parked or yielded through t while t ran
// has switched it out already, and t, still running, finds out here.
func (t *Task) suspend() {
	c := t.co
	if c.e.Status() != engine.Running {
		t.usedElsewhere()
	}
	if !c.e.Yield() {
		// The run's end is closing t (finish): nothing will resume it. A
		// wait it was entering is given up, and it unwinds from here.
		if t.state == stateParked {
			t.giveUpLocked(t.waitOn, t.waitMu)
		}
		if x := t.x.Load(); x != nil && x.report != nil {
			*x.report = trimParkStack(stack())
			x.report = nil
		}
		c.e.Unwind()
	}
}

//go:noinline
func (t *Task) usedElsewhere() {
	panic(fmt.Sprintf("sched: task %d was switched out while it ran: its *Task was used by another goroutine", t.id))
}

// budgetPerRun is what a task may spend between two resumes: Tokio's figure.
const budgetPerRun = 128
