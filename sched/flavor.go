package sched

import "github.com/weavert/weave/internal/runq"

// mode is how a run keeps its runnable tasks and chooses the next one. It is
// chosen once per run, by newState, and every difference it makes to the
// queues, to which task runs next and to how a worker looks for work is in
// this file: the rest of the scheduler does not ask which mode it runs in.
//
//   - modeMulti: several workers. Each has a local queue that others may
//     steal half of (runq.Queue), a next slot, and a share of the global
//     queue; a worker with nothing to run steals, then parks (idle.go).
//   - modeSolo: one worker (Threads(1)). Its local queue is a plain ring with
//     no atomics (runq.Ring): nobody steals from it, and nobody else waits
//     for work, so there is no searching either.
//   - modeSim: deterministic (sim.go). One list of runnable tasks, and the
//     run's Chooser picks the next one from it at every step.
//
// Rejected: an interface with one implementation per mode. An enum and a
// switch per operation is what Tokio's scheduler handle does too, and it
// keeps the push and pop of the hot path inlinable.
type mode uint8

const (
	modeMulti mode = iota
	modeSolo
	modeSim
)

// Constants of the worker loop, the figures Go's runtime and Tokio share.
const (
	globalEvery   = 61 // check the global queue every this many ticks, for fairness
	maxNextStreak = 3  // run from the next slot at most this many times in a row
	stealRounds   = 4  // passes over the other workers before parking
)

// push makes runnable t the last task of w's local queue. In modeMulti a full
// queue moves half of itself, and t, to the global queue, so that one busy
// worker's backlog is shared.
func (w *worker) push(t *Task) {
	if w.s.mode != modeMulti {
		w.pushLocal(t) // unbounded
		return
	}
	for !w.q.Push(t) {
		n := w.q.PopHalf(w.batch[:])
		if n == 0 {
			continue // thieves emptied it meanwhile
		}
		w.batch[n] = t
		w.s.globalPush(w.batch[:n+1]...)
		clear(w.batch[:n+1])
		return
	}
}

// pushLocal appends t to w's local queue, which has room for it: the global
// queue's lock may be held, and an overflow would take it again.
func (w *worker) pushLocal(t *Task) {
	switch w.s.mode {
	case modeSolo:
		w.ring.Push(t)
	case modeSim:
		if !t.frozen() {
			w.s.sim.runnable = append(w.s.sim.runnable, t)
		}
	default:
		w.q.Push(t)
	}
}

// popLocal removes the oldest task of w's local queue, or returns nil.
func (w *worker) popLocal() *Task {
	if w.s.mode == modeSolo {
		return w.ring.Pop()
	}
	return w.q.Pop()
}

// localLen is the length of w's local queue; from another worker, a hint.
func (w *worker) localLen() int {
	if w.s.mode == modeSolo {
		return w.ring.Len()
	}
	return w.q.Len()
}

// markReady marks t, woken by by (nil: by no task), runnable, before it is
// queued.
func (s *state) markReady(t *Task, by *Task) {
	t.state = stateRunnable
	t.setWait(WaitYield, nil)
	if s.tracer != nil {
		s.tracer.Wake(t, by)
	}
}

// ready makes t runnable; by is the running task that wakes it, or nil. If
// by belongs to t's run, t goes to the next slot of by's worker and will run
// as soon as by parks or yields; otherwise (a wake from outside any task, or
// from another run) it goes to the global queue. Under LockThreads a started
// task goes to its home thread's inbox instead, unless by runs there.
func (s *state) ready(t *Task, by *Task) {
	// markReady, written out: it is too big to inline, and this is every
	// wake's path.
	t.state = stateRunnable
	t.setWait(WaitYield, nil)
	if s.tracer != nil {
		s.tracer.Wake(t, by)
	}
	switch {
	case s.mode == modeSim:
		if !t.frozen() { // else the wake is lost with its host
			s.sim.runnable = append(s.sim.runnable, t)
		}
		return
	case s.locked && t.co != nil && (by == nil || by.s != s || t.co.home != by.w):
		// A started task must run on its own thread: straight to its
		// home, rather than to a queue another worker would forward from.
		t.co.home.forward(t)
		return
	case by != nil && by.s == s:
		w := by.w
		old := w.runnext
		w.runnext = t
		if old != nil {
			w.push(old)
		}
	default:
		s.globalPush(t)
	}
	s.wakep()
}

// next returns w's next task without blocking or stealing, or nil. It is also
// called by a pooled coroutine whose task ended, to run the next task without
// switching back to the worker.
func (w *worker) next() *Task {
	w.tick++
	s := w.s
	if s.timers.next.Load() != never {
		s.runTimers(w)
	}
	if s.mode == modeSim {
		return s.sim.choose(w)
	}
	if w.inboxLen.Load() > 0 {
		if t := w.takeInbox(); t != nil {
			return t
		}
	}
	if w.tick%globalEvery == 0 {
		if s.ioWaiting.Load() > 0 {
			w.tickGo()
			w.pollNow(w.runnext == nil && w.localLen() == 0 && s.gsize.Load() == 0)
		}
		if s.gsize.Load() > 0 {
			if t := s.globalTake(w); t != nil {
				return t
			}
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
		return s.globalTake(w)
	}
	return nil
}

// find returns the next task for w, stealing (modeMulti) or parking the
// worker as needed. It returns nil when the run is over.
func (w *worker) find() *Task {
	if w.s.mode == modeSim {
		return w.simNext()
	}
	polled := false
	for {
		if t := w.next(); t != nil {
			w.transitionFromSearching()
			return t
		}
		if !polled && w.s.ioWaiting.Load() > 0 {
			polled = true
			w.tickGo()
			if w.pollNow(true) {
				continue
			}
		}
		if w.s.mode == modeMulti && w.transitionToSearching() {
			if t := w.steal(); t != nil {
				w.transitionFromSearching()
				return t
			}
		}
		t, stop := w.park()
		if stop {
			return nil
		}
		if t != nil {
			w.transitionFromSearching()
			return t
		}
	}
}

// alone reports whether w has nothing to run but its current task: then a
// Yield may return at once, since the worker would pick the same task again.
//
// In modeSim every Yield is a step: a task that yields in a loop while
// waiting for virtual time to pass is a livelock that MaxSteps stops.
func (w *worker) alone() bool {
	if w.s.mode == modeSim {
		return false
	}
	s := w.s
	if s.ioWaiting.Load() > 0 {
		// A yield is a tick of the worker's loop too: tasks whose
		// descriptors are ready may be what the yielding task waits for.
		if w.tick++; w.tick%globalEvery == 0 {
			w.pollNow(false)
		}
	}
	return w.localLen() == 0 && w.runnext == nil && s.gsize.Load() == 0 && w.inboxLen.Load() == 0 &&
		(s.timers.next.Load() == never || s.timers.next.Load() > s.now())
}

// anyQueued reports whether a local queue holds tasks, for a worker about to
// sleep. Not the next slots: thieves cannot take them, and their owners are
// running and will.
func (s *state) anyQueued() bool {
	for _, v := range s.ws {
		if v.localLen() > 0 {
			return true
		}
	}
	return false
}

// globalPush appends ts to the global queue.
func (s *state) globalPush(ts ...*Task) {
	s.mu.Lock()
	for _, t := range ts {
		s.global.push(t)
	}
	s.gsize.Add(int32(len(ts)))
	s.mu.Unlock()
}

// globalTake takes a fair share of the global queue for w: see
// globalTakeLocked.
func (s *state) globalTake(w *worker) *Task {
	s.mu.Lock()
	t := s.globalTakeLocked(w)
	s.mu.Unlock()
	return t
}

// globalTakeLocked takes up to a fair share of the global queue into w's local
// queue and returns one task of it, or nil. Called with s.mu held.
func (s *state) globalTakeLocked(w *worker) *Task {
	n := s.gsize.Load()
	if n == 0 {
		return nil
	}
	if k := n/s.n + 1; n > k {
		n = k
	}
	if n > runq.Size/2 {
		n = runq.Size / 2
	}
	if free := int32(runq.Size - w.q.Len()); n > free+1 && s.mode == modeMulti {
		n = free + 1 // the local queue may hold work already (the every-61-ticks check)
	}
	s.gsize.Add(-n)
	t := s.global.pop()
	for range n - 1 {
		w.pushLocal(s.global.pop())
	}
	return t
}
