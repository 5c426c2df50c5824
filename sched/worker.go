package sched

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weavert/weave/internal/runq"
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

	pool []*coroutine
	due  []dueTimer // scratch for state.runTimers

	idleTimer  *time.Timer // its wait for the earliest timer, on the real clock
	clockTimer ClockTimer  // the same, on another Clock

	// With LockThreads: started tasks of this worker woken or found
	// elsewhere, forwarded here to run (inbox.go).
	inboxMu  sync.Mutex
	inbox    taskList
	inboxLen atomic.Int32

	parked bool          // in state.idle; guarded by state.mu
	wake   chan struct{} // one token per wakep that chose this worker

	segStart int64 // with MeasureRunTime: when the running task was resumed

	spawned, finished int // tasks created here, tasks that ended here
	errs              []taskError

	batch [runq.Size/2 + 1]*Task
}

type taskError struct {
	id  uint64
	err error
}

// newTask creates a task of w's run that runs f, started by parent (nil for
// the main task). origin is the program's function that f runs (f may wrap
// it), set before the tracer hears of the task, so that its Spawn may read
// CreatedAt.
func (w *worker) newTask(parent *Task, ctx context.Context, name string, f, origin func(*Task) error) *Task {
	// One counter for the run rather than blocks of IDs per worker: IDs in
	// spawn order are worth one uncontended atomic add.
	t := &Task{s: w.s, f: f, origin: origin, ctx: ctx, name: name, id: w.s.ids.Add(1)}
	w.spawned++
	if w.s.tracer != nil {
		w.s.tracer.Spawn(t, parent)
	}
	return t
}

// main is the worker's goroutine. A task that calls runtime.Goexit ends its
// coroutine, and iter.Pull then ends the goroutine that resumed it, which is
// this one: the worker carries on from a new goroutine.
func (w *worker) main(wg *sync.WaitGroup) {
	clean := false
	defer func() {
		if !clean {
			go w.main(wg)
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
	for {
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
func (w *worker) execute(t *Task) {
	c := t.co
	if c != nil && c.home != w && w.s.locked {
		c.home.forward(t)
		return
	}
	if c == nil {
		c = w.getCoroutine()
		c.t = t
		t.co = c
	}
	t.w = w
	t.state = stateRunning
	t.budget = budgetPerRun
	t.resumes++
	if w.s.tracer != nil {
		w.s.tracer.Resume(t, w.id)
	}
	if w.s.timed {
		w.segStart = mono()
	}
	c.e.Begin()
	c.e.Switch()
	t = c.t // the coroutine may have run other fresh tasks since
	if t == nil {
		w.putCoroutine(c)
		return
	}
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
		// wake it before its coroutine was suspended. Let them now.
		if u := t.unlock; u != nil {
			t.unlock = nil
			u.Unlock()
		}
	case stateSleeping:
		w.sleep(t)
	}
}

// end records the end of t, which ran on w and failed with err (nil if it
// returned nil).
func (w *worker) end(t *Task, err error) {
	w.finished++
	if w.s.timed {
		now := mono()
		t.runNs += now - w.segStart
		w.segStart = now // the coroutine may go straight on to the next task
	}
	if err != nil {
		w.errs = append(w.errs, taskError{t.id, &TaskError{ID: t.id, Name: t.name, Err: err}})
	}
	t.state = stateDone
	if t.tracked {
		t.grp.forget(t)
	}
	if w.s.tracer != nil {
		w.s.tracer.Done(t, err)
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
