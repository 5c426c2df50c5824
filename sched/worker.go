package sched

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weavert/weave/internal/poll"
	"github.com/weavert/weave/internal/runq"
	"golang.org/x/sys/unix"
)

// worker is one thread of a run. Only its own goroutine, or the coroutine it
// is resuming, touches its fields, except q (stolen from), the inbox
// (forwarded to), and parked and wake, which belong to state.mu.
type worker struct {
	s  *state
	id int

	q          runq.Queue[Task] // the local queue in modeMulti
	ring       runq.Ring[Task]  // the local queue in modeSolo
	runnext    *Task            // owner only: thieves do not take it, so it needs no atomics
	nextStreak int
	tick       uint32
	handoff    *Task // a task the last coroutine picked but could not run itself
	searching  bool  // counted in state.nsearching (idle.go)
	rng        uint32

	// The coroutine that the worker's own goroutine resumed and waits on,
	// or nil while that goroutine runs: its task may run the loop in its
	// place while it waits (Task.park). acts says whether w's mode lets it;
	// over, that a loop on a task's goroutine found the run over.
	direct *coroutine
	acts   bool
	over   bool

	pool []*coroutine
	due  []dueTimer // scratch for state.runTimers

	idleTimer  *time.Timer // its wait for the earliest timer, on the real clock
	clockTimer ClockTimer  // the same, on another Clock

	// With LockThreads: started tasks of this worker woken or found
	// elsewhere, forwarded here to run (inbox.go).
	inboxMu  sync.Mutex
	inbox    taskList
	inboxLen atomic.Int32

	parked  bool          // in state.idle; guarded by state.mu
	wake    chan struct{} // one token per wakep that chose this worker
	polling atomic.Bool   // blocked in the poller, which a token must interrupt

	evs []poll.Event      // scratch for polls
	raw []unix.EpollEvent // the same, for the kernel
	// yielded is when w's goroutine last went through Go's scheduler
	// before it blocked in the poller (pollIdle).
	yielded int64

	segStart int64 // with MeasureRunTime: when the running task was resumed

	spawned, finished int // tasks created here, tasks that ended here
	errs              []taskError
	handles           []handleError // failures of Handles' tasks, which a Wait may take

	batch [runq.Size/2 + 1]*Task
}

// taskError is a failure for Run to report, numbered in the order failures
// happened (state.seq).
type taskError struct {
	seq uint64
	err error
}

// handleError is the failure of a Handle's task, which Run reports if no
// Wait took it.
type handleError struct {
	taskError
	h handleOwner
}

// handleOwner is what a Handle, of any result type, does at its task's end.
type handleOwner interface {
	ended(t *Task, err error)
	untaken() bool
}

// endHow is how a task's function ended.
type endHow uint8

const (
	endReturned endHow = iota // it returned, with the error given
	endPanicked               // it panicked: the error is a *coro.PanicError
	endGoexit                 // it called runtime.Goexit
	endUnwound                // it gave up a wait and unwound (Task.unwind)
)

// newTask creates a task of w's run that runs f, started by parent (nil for
// the main task). origin is the program's function that f runs if f wraps
// it, or nil; it is set before the tracer hears of the task, so that its
// Spawn may read CreatedAt.
func (w *worker) newTask(parent *Task, ctx context.Context, name string, f func(*Task) error, origin any) *Task {
	// One counter for the run rather than blocks of IDs per worker: IDs in
	// spawn order are worth one uncontended atomic add.
	t := &Task{s: w.s, f: f, ctx: ctx, name: name, id: w.s.ids.Add(1)}
	if origin != nil {
		t.extra().origin = origin
	}
	if parent != nil && ctx == parent.ctx {
		t.cancellable = parent.cancellable
	} else {
		t.cancellable = ctx.Done() != nil
	}
	if parent != nil && w.s.mode == modeSim {
		t.inheritHost(parent)
	}
	w.spawned++
	if w.s.tracer != nil {
		w.s.tracer.Spawn(t, parent)
	}
	return t
}

// start makes nt, a new task that t started, runnable. In a deterministic
// run the start is a decision point: the new task may run first.
func (w *worker) start(t, nt *Task) {
	w.push(nt)
	if w.s.mode == modeSim {
		w.s.sim.point(t)
		return
	}
	w.s.wakep()
}

// main is the worker's goroutine. Under LockThreads, a task that calls
// runtime.Goexit ends its coroutine, and iter.Pull then ends the goroutine
// that resumed it, which may be this one: the worker carries on from a new
// goroutine (elsewhere, coroutine.goexit keeps the Goexit to its task).
func (w *worker) main(wg *sync.WaitGroup) {
	clean := false
	defer func() {
		if !clean {
			go w.main(wg)
			return
		}
		if d := w.s.dog(); d != nil {
			d.end(w.s) // the watcher waits for that, not for wg
			return
		}
		wg.Done()
	}()
	if w.s.locked {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	w.loop()
	if w.s.locked {
		w.closeCoroutines()
	}
	clean = true
}

// loop takes a task, resumes it, and handles what it did, until the run
// ends.
func (w *worker) loop() {
	for !w.over {
		t := w.handoff
		w.handoff = nil
		if t == nil {
			if t = w.find(); t == nil {
				return
			}
		}
		w.execute(t)
	}
}

// execute resumes t and handles what it did when control comes back: it
// yielded, parked, went to sleep, or ended (then its coroutine is free).
//
// On w's own goroutine, t's coroutine becomes w.direct: when t stops, it
// runs the loop itself (Task.park), and control comes back here only when
// its coroutine is free or the run is over. On the goroutine of an acting
// task, t stops by switching back here.
func (w *worker) execute(t *Task) {
	c := t.co
	if w.s.locked && c != nil && c.home != w {
		c.home.forward(t)
		return
	}
	if c == nil {
		c = w.getCoroutine()
		c.t = t
		t.co = c
	}
	w.resumed(t)
	top := w.acts && w.direct == nil
	if top {
		w.direct = c
	}
	c.e.Begin()
	c.e.Switch()
	if top {
		w.direct = nil
		if w.over {
			return // the acting task found the run over, and handled its own stop
		}
	}
	w.back(c)
}

// back handles what happened on c, which w resumed, when control comes back:
// its task yielded or parked, or its tasks ended and it is free.
func (w *worker) back(c *coroutine) {
	t := c.t // the coroutine may have run other fresh tasks since
	if t == nil {
		if c.exited {
			c.dispose()
			return
		}
		w.putCoroutine(c)
		return
	}
	w.suspended(t)
}

// resumed does the bookkeeping of t's resume on w, just before it runs.
func (w *worker) resumed(t *Task) {
	t.w = w
	t.state = stateRunning
	t.budget = budgetPerRun
	t.resumes++
	if w.s.mode == modeSim {
		w.s.sim.resume(t)
	}
	if w.s.tracer != nil {
		w.s.tracer.Resume(t, w.id)
	}
	if w.s.timed {
		w.segStart = mono()
	}
}

// suspended handles what t did when it stopped running on w: a task that
// yielded goes to the back of the queue; a parked one lets its wakers in.
func (w *worker) suspended(t *Task) {
	if w.s.timed {
		t.runNs += mono() - w.segStart
	}
	if w.s.tracer != nil {
		w.tracePark(t)
	}
	switch t.state {
	case stateYielded:
		t.state = stateRunnable
		w.push(t)
		w.s.wakep()
	case stateParked:
		// The parking task still held its primitive's lock, so nobody could
		// wake it before it stopped running. Let them now.
		t.waitMu.Unlock()
	}
}

// loopPanicked ends the program with r, a panic raised in a worker loop that
// a task's goroutine runs (Task.park): a Tracer's, a Chooser's, a Clock's,
// or the scheduler's own. On the worker's own goroutine it would end the
// program; on the acting task's, the task would recover it as its own
// failure, and the run would go on with its loop cut short. A nil r is a
// runtime.Goexit forwarded from a task that the loop resumed, which only
// LockThreads lets through (coroutine.goexit).
func loopPanicked(r any) {
	if r == nil {
		r = "sched: runtime.Goexit in a task under LockThreads"
	}
	msg := fmt.Sprintf("%v\n\nraised in a worker loop, at:\n%s", r, debug.Stack())
	go func() { panic(msg) }()
	select {}
}

// end records the end of t, which ran on w: how it ended, and its error.
//
// A task that its context cancelled did not fail: it unwound from a wait
// that the end of its context ended, or returned its context's error once
// its context had ended. Run does not report it; its Group or Handle gets its
// context's error. The error of a Group's task goes to the Group's Wait, and
// a Handle task's to Wait, or to Run if no Wait took it; a panic always goes
// to Run too.
func (w *worker) end(t *Task, err error, how endHow) {
	s := w.s
	w.finished++
	if s.timed {
		now := mono()
		t.runNs += now - w.segStart
		w.segStart = now // the coroutine may go straight on to the next task
	}
	cancelled := false
	switch how {
	case endReturned:
		cancelled = err != nil && t.cancellable && t.ctx.Err() != nil && errors.Is(err, t.ctx.Err())
	case endUnwound:
		cancelled = t.x.Load().cause == intrCancel
		if cancelled {
			err = t.ctx.Err()
		}
	}
	report := err != nil && !cancelled && !t.frozen() // a crashed host's failures are not the run's
	if sc := t.scope; sc != nil && !t.frozen() {
		// Its owner first, then the scope counts it gone: a Wait that its
		// end releases sees what it left.
		if t.direct {
			switch o := sc.owner.(type) {
			case *Group:
				o.ended(t, err, how)
				report = report && (how == endPanicked || how == endGoexit)
			case handleOwner:
				o.ended(t, err)
				if report {
					w.handles = append(w.handles, handleError{taskError{s.seq.Add(1), &TaskError{ID: t.id, Name: t.name, Err: err}}, o})
				}
				report = false
			}
		}
		sc.leave(t)
	}
	if report {
		w.errs = append(w.errs, taskError{s.seq.Add(1), &TaskError{ID: t.id, Name: t.name, Err: err}})
	}
	if t.id == 1 {
		s.mainCancelled = cancelled
	}
	t.state = stateDone
	if s.tracer != nil {
		s.tracer.Done(t, err)
	}
	t.co = nil
	t.f = nil
}

func (w *worker) tracePark(t *Task) {
	var why WaitReason // WaitYield
	if t.state != stateYielded {
		why = t.waitReason()
		if sel, ok := why.on.(*selectState); ok {
			why.on = waitingCases(slices.Clone(sel.cases))
		}
	}
	w.s.tracer.Park(t, why)
}
