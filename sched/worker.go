package sched

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weavert/weave/internal/runq"
)

// Constants of the worker loop, the figures Go's runtime and Tokio share.
const (
	globalEvery   = 61 // check the global queue every this many ticks, for fairness
	maxNextStreak = 3  // run from the next slot at most this many times in a row
	stealRounds   = 4  // passes over the other workers before parking
	poolMax       = 64 // free coroutines a worker keeps
)

// worker is one thread of a run. Only its own goroutine, or the coroutine it
// is resuming, touches its fields, except q (stolen from), the inbox
// (forwarded to), and parked and wake, which belong to state.mu.
type worker struct {
	s  *state
	id int

	q          runq.Queue[Task]
	ring       runq.Ring[Task] // the queue instead of q when solo
	solo       bool            // the only worker: no thieves, so no atomics on its queue
	runnext    *Task           // owner only: thieves do not take it, so it needs no atomics
	nextStreak int
	tick       uint32
	handoff    *Task // a task the last coroutine picked but could not run itself
	spinning   bool
	rng        uint32

	pool   []*coroutine
	timers timerHeap

	// With LockThreads: started tasks of this worker woken or found
	// elsewhere, forwarded here to run.
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

// origin is the program's function that f runs (f may wrap it), set before
// the tracer hears of the task, so that its Spawn may read CreatedAt.
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

// push appends t to w's local queue; when the queue is full, half of it and
// t go to the global queue, so that one busy worker's backlog is shared.
func (w *worker) push(t *Task) {
	if m := w.s.sim; m != nil {
		m.runnable = append(m.runnable, t)
		return
	}
	if w.solo {
		w.ring.Push(t)
		return
	}
	for !w.q.Push(t) {
		n := w.q.PopHalf(w.batch[:])
		if n == 0 {
			continue // thieves emptied it meanwhile
		}
		w.batch[n] = t
		s := w.s
		s.mu.Lock()
		for i := range n + 1 {
			s.global.push(w.batch[i])
			w.batch[i] = nil
		}
		s.gsize.Add(int32(n + 1))
		s.mu.Unlock()
		return
	}
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

// closeCoroutines closes, at the end of a run with LockThreads, the
// coroutines created on w's thread, from that thread as the runtime requires.
func (w *worker) closeCoroutines() {
	s := w.s
	if s.dead != nil {
		s.dead.fillStacks(w)
	}
	var mine []*coroutine
	s.coMu.Lock()
	for c := range s.cos {
		if c.home == w {
			mine = append(mine, c)
			delete(s.cos, c)
		}
	}
	s.coMu.Unlock()
	for _, c := range mine {
		c.closing = true
		if c.e.Close() {
			c.e.End()
		}
	}
}

// pushLocal appends t to w's local queue, which has room for it.
func (w *worker) pushLocal(t *Task) {
	if m := w.s.sim; m != nil {
		m.runnable = append(m.runnable, t)
		return
	}
	if w.solo {
		w.ring.Push(t)
	} else {
		w.q.Push(t)
	}
}

// popLocal removes the oldest task of w's local queue.
func (w *worker) popLocal() *Task {
	if w.solo {
		return w.ring.Pop()
	}
	return w.q.Pop()
}

// loop takes a task, resumes it, and handles what it did, until the run
// ends.
func (w *worker) loop() {
	for {
		t := w.handoff
		w.handoff = nil
		if t == nil {
			if t = w.findRunnable(); t == nil {
				return
			}
		}
		w.execute(t)
	}
}

// pick returns the next task of w without blocking or stealing, or nil. It is
// also called by a pooled coroutine whose task ended, to run the next task
// without switching back to the worker.
func (w *worker) pick() *Task {
	w.tick++
	if w.pruneTimers() {
		w.runTimers()
	}
	s := w.s
	if s.sim != nil {
		return s.sim.choose()
	}
	if w.inboxLen.Load() > 0 {
		if t := w.takeInbox(); t != nil {
			return t
		}
	}
	if w.tick%globalEvery == 0 && s.gsize.Load() > 0 {
		s.mu.Lock()
		t := s.globalGetLocked(w)
		s.mu.Unlock()
		if t != nil {
			return t
		}
	}
	if w.nextStreak < maxNextStreak {
		if t := w.runnext; t != nil {
			w.runnext = nil
			w.nextStreak++
			return t
		}
	}
	w.nextStreak = 0
	if t := w.popLocal(); t != nil {
		return t
	}
	if t := w.runnext; t != nil {
		w.runnext = nil
		return t
	}
	if s.gsize.Load() > 0 {
		s.mu.Lock()
		t := s.globalGetLocked(w)
		s.mu.Unlock()
		return t
	}
	return nil
}

// findRunnable returns the next task for w, stealing or parking the worker
// as needed. It returns nil when the run is over.
func (w *worker) findRunnable() *Task {
	s := w.s
	if s.sim != nil {
		return w.simNext()
	}
	for {
		if t := w.pick(); t != nil {
			w.resetSpinning()
			return t
		}
		// Steal, unless half the busy workers are already looking: then
		// they will find the work, and more searchers would only contend.
		if w.spinning || 2*s.nspinning.Load() < s.n-s.nidle.Load() {
			if !w.spinning {
				w.spinning = true
				s.nspinning.Add(1)
			}
			if t := w.steal(); t != nil {
				w.resetSpinning()
				return t
			}
		}
		t, stop := w.park()
		if stop {
			return nil
		}
		if t != nil {
			w.resetSpinning()
			return t
		}
	}
}

// resetSpinning ends w's search. If it was the last searcher and workers are
// idle, it wakes one: the work w found may not be the only work.
func (w *worker) resetSpinning() {
	if !w.spinning {
		return
	}
	w.spinning = false
	if w.s.nspinning.Add(-1) == 0 {
		w.s.wakep()
	}
}

func (w *worker) steal() *Task {
	s := w.s
	n := uint32(len(s.ws))
	if n == 1 {
		return nil
	}
	for range stealRounds {
		w.rng ^= w.rng << 13
		w.rng ^= w.rng >> 17
		w.rng ^= w.rng << 5
		off := w.rng % n
		for i := range n {
			v := s.ws[(off+i)%n]
			if v == w {
				continue
			}
			if t := v.q.Steal(&w.q); t != nil {
				return t
			}
		}
		if s.gsize.Load() > 0 {
			s.mu.Lock()
			t := s.globalGetLocked(w)
			s.mu.Unlock()
			if t != nil {
				return t
			}
		}
	}
	return nil
}

// park puts w to sleep until work arrives, its next timer is due or the run
// ends (stop). It may return a task it found on the way.
//
// The order matters, as in Go's runtime: w joins the idle list before it
// stops spinning, and looks at every queue again after it stopped. A waker
// publishes work before it looks at the counts; so either the waker sees no
// searcher and wakes an idle worker, or w sees the work.
func (w *worker) park() (t *Task, stop bool) {
	s := w.s
	// The timer for w's earliest sleeper exists before w joins the idle
	// list: if w is the last to go idle, a virtual clock must find it.
	var timeout <-chan time.Time
	if w.pruneTimers() {
		d := time.Duration(w.timers.next() - s.now())
		tm := s.clock.NewTimer(d)
		defer tm.Stop()
		timeout = tm.C()
	}
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return nil, true
	}
	if t := s.globalGetLocked(w); t != nil {
		s.mu.Unlock()
		return t, false
	}
	if w.inboxLen.Load() > 0 {
		s.mu.Unlock()
		return nil, false
	}
	w.parked = true
	s.idle = append(s.idle, w)
	if s.nidle.Add(1) == s.n && s.quiescent() {
		s.mu.Unlock()
		return nil, true
	}
	s.mu.Unlock()

	if w.spinning {
		w.spinning = false
		s.nspinning.Add(-1)
		if s.gsize.Load() > 0 || w.anyQueued() {
			if w.unpark() {
				w.spinning = true
				s.nspinning.Add(1)
			}
			return nil, false
		}
	}

	select {
	case <-w.wake:
		w.spinning = true
		return nil, false
	case <-s.stop:
		return nil, true
	case <-timeout:
		w.unpark()
		return nil, false
	}
}

// unpark takes w off the idle list. If a waker took it off first, it waits
// for that waker's token, which makes w a searcher, and reports false.
func (w *worker) unpark() (removed bool) {
	s := w.s
	s.mu.Lock()
	if w.parked {
		w.leaveIdleLocked()
		s.mu.Unlock()
		return true
	}
	s.mu.Unlock()
	select {
	case <-w.wake:
		w.spinning = true
	case <-s.stop:
	}
	return false
}

// alone reports whether w has nothing to run but its current task: then a
// Yield may return at once, since the worker would pick the same task again.
//
// In deterministic mode every Yield is a step: a task that yields in a loop
// while waiting for virtual time to pass is a livelock that MaxSteps stops.
func (w *worker) alone() bool {
	if w.s.sim != nil {
		return false
	}
	return w.ring.Len() == 0 && w.q.Len() == 0 && w.runnext == nil &&
		w.s.gsize.Load() == 0 && w.inboxLen.Load() == 0 && !w.pruneTimers()
}

func (w *worker) anyQueued() bool {
	for _, v := range w.s.ws {
		// Not the next slots: thieves cannot take them, and their owners
		// are running and will.
		if v.q.Len() > 0 || v.ring.Len() > 0 {
			return true
		}
	}
	return false
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

// forward hands t, a started task, to w, its home under LockThreads, and
// wakes w if it is parked. w checks its inbox under state.mu before it
// parks, so either it sees t there or it is parked and woken here.
func (w *worker) forward(t *Task) {
	w.inboxMu.Lock()
	w.inbox.push(t)
	w.inboxLen.Add(1)
	w.inboxMu.Unlock()
	s := w.s
	s.mu.Lock()
	if !w.parked {
		s.mu.Unlock()
		return
	}
	w.leaveIdleLocked()
	s.nspinning.Add(1) // the token makes w a searcher, as wakep's does
	s.mu.Unlock()
	w.wake <- struct{}{}
}

// leaveIdleLocked takes parked w off the idle list. Called with state.mu
// held.
func (w *worker) leaveIdleLocked() {
	s := w.s
	w.parked = false
	for i, v := range s.idle {
		if v == w {
			s.idle = append(s.idle[:i], s.idle[i+1:]...)
			break
		}
	}
	s.nidle.Add(-1)
}

func (w *worker) takeInbox() *Task {
	w.inboxMu.Lock()
	t := w.inbox.pop()
	if t != nil {
		w.inboxLen.Add(-1)
	}
	w.inboxMu.Unlock()
	return t
}

func (w *worker) getCoroutine() *coroutine {
	if n := len(w.pool); n > 0 {
		c := w.pool[n-1]
		w.pool = w.pool[:n-1]
		return c
	}
	return newCoroutine(w)
}

func (w *worker) putCoroutine(c *coroutine) {
	if len(w.pool) < poolMax {
		w.pool = append(w.pool, c)
		return
	}
	c.retire()
}

// finished records the end of t, which ran on w.
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
	reason := "yield"
	if t.state != stateYielded {
		reason = t.waitOn.describe()
	}
	w.s.tracer.Park(t, reason)
}

// sleep registers t's timer, after t parked in Sleep, and, if its context
// can end, a callback that ends the sleep early. Whichever of the two claims
// the wake first makes t runnable; the other finds it claimed.
func (w *worker) sleep(t *Task) {
	s := w.s
	s.sleeping.Add(1)
	e := timer{when: t.wakeAt, t: t, gen: t.sleepGen}
	if t.ctx.Done() != nil {
		armed := e.gen<<1 | 1
		e.stop = s.afterFunc(t.ctx, func() {
			if t.sleepClaim.CompareAndSwap(armed, armed-1) {
				t.sleepErr = t.ctx.Err()
				s.readyFromOutside(t, &s.sleeping)
			}
		})
	}
	w.timers.push(e)
}

// pruneTimers drops the entries at the top of w's timer heap whose sleep a
// context has already ended, and reports whether a live timer remains.
// Without it a cancelled Sleep would keep its entry until it fell due, and
// with it the worker's clock readings, timers armed for nothing, and Yields
// that switch although nothing else can run.
func (w *worker) pruneTimers() bool {
	for w.timers.len() > 0 {
		e := &w.timers.h[0]
		if e.t.sleepClaim.Load() == e.gen<<1|1 {
			return true
		}
		w.timers.pop()
	}
	return false
}

// runTimers makes the tasks whose sleep is over runnable on w.
func (w *worker) runTimers() {
	now := w.s.now()
	woke := false
	for w.timers.len() > 0 && w.timers.next() <= now {
		e := w.timers.pop()
		t := e.t
		armed := e.gen<<1 | 1
		if !t.sleepClaim.CompareAndSwap(armed, armed-1) {
			continue // its context ended the sleep
		}
		if e.stop != nil {
			e.stop()
		}
		w.s.sleeping.Add(-1)
		t.state = stateRunnable
		if w.s.tracer != nil {
			w.s.tracer.Wake(t, nil)
		}
		w.push(t)
		woke = true
	}
	if woke {
		w.s.wakep()
	}
}
