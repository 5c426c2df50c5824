package sched

import (
	"cmp"
	"errors"
	"slices"

	"github.com/weavert/weave/coro"
)

// The end of a run, in the order it happens:
//
//  1. Idle detection. The last worker to park, with state.mu held and every
//     worker idle, asks quiescentLocked whether the run is over. It is not
//     while the global queue holds a task, an external wait is pending
//     (Await, a context) or a task sleeps (then an IdleClock moves its time
//     to the next timer). Otherwise it is: every task ended, or those left
//     are parked with nothing that could wake them, and deadlock describes
//     them. In modeSim, simNext decides the same when nothing is runnable
//     and no timer is left, or when the step limit is reached.
//  2. Stop. endLocked marks the run done and closes state.stop: parked
//     workers return from park, and a worker about to park sees done.
//  3. Workers return. Each worker's loop returns; with LockThreads, each
//     worker first takes the stacks of the deadlocked tasks homed on it and
//     closes its coroutines on its own thread (closeCoroutines), as the
//     runtime requires of coroutines created on a locked thread.
//  4. Await pool drained. run waits for the pool's goroutines, whose tasks
//     were woken before the run could end.
//  5. Parked tasks unwound. finish empties the idle list (so that a wake
//     from an unwinding deferred call picks no worker), takes the stacks of
//     the deadlocked tasks, and closes every coroutine left: a parked task
//     unwinds and its deferred calls run; a free coroutine ends.
//  6. Errors gathered. The errors of the tasks that failed, in the order of
//     their IDs, with the failures of deferred calls of unwound tasks, then
//     the DeadlockError or StepLimitError.

// quiescentLocked decides, with state.mu held and every worker idle, whether
// the run is over (step 1), and if it is, ends it (step 2).
func (s *state) quiescentLocked() bool {
	if s.gsize.Load() > 0 || s.external.Load() > 0 {
		return false
	}
	if s.timers.canWake() {
		// Nothing else can happen until a timer fires: a virtual clock
		// moves straight to the next one, which the watcher waits for.
		if c, ok := s.clock.(IdleClock); ok {
			c.Idle()
		}
		return false
	}
	var dead *DeadlockError
	if s.live() > 0 {
		dead = s.deadlock()
	}
	s.endLocked(dead, nil)
	return true
}

// live counts the tasks that have not ended. Called with every worker idle.
func (s *state) live() int {
	n := 0
	for _, w := range s.ws {
		n += w.spawned - w.finished
	}
	return n
}

// endLocked ends the run (step 2), with what stopped it if anything but the
// end of every task. Called with state.mu held.
func (s *state) endLocked(dead *DeadlockError, limit *StepLimitError) {
	s.dead, s.limit = dead, limit
	s.done = true
	close(s.stop)
}

// deadlock describes the parked tasks. Called with every worker idle: no
// task runs, so their fields are still.
func (s *state) deadlock() *DeadlockError {
	var d DeadlockError
	s.coMu.Lock()
	for c := range s.cos {
		if t := c.t; t != nil && t.state == stateParked {
			d.Tasks = append(d.Tasks, ParkedTask{ID: t.id, Name: t.name, Created: t.createdAt(), WaitsOn: t.waitReason().Detail(), co: c})
		}
	}
	s.coMu.Unlock()
	slices.SortFunc(d.Tasks, func(a, b ParkedTask) int { return cmp.Compare(a.ID, b.ID) })
	return &d
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

// finish unwinds the tasks left and gathers the errors (steps 5 and 6),
// after every worker has returned.
func (s *state) finish() error {
	// The workers are gone: wakes from the deferred calls of the tasks
	// closed below must not pick one.
	s.mu.Lock()
	s.idle = nil
	s.nidle.Store(0)
	s.mu.Unlock()
	if s.dead != nil && !s.locked {
		s.dead.fillStacks(nil)
	}
	var errs []taskError
	for c := range s.cos {
		c.closing = true
		t := c.t
		if !c.e.Close() {
			continue
		}
		// A deferred call of the unwound task may itself panic: that is
		// the task's failure, reported with the deadlock.
		if panicked, v, stack := c.e.Panic(); panicked && t != nil {
			errs = append(errs, taskError{t.id, &TaskError{ID: t.id, Name: t.name, Err: &coro.PanicError{Value: v, Stack: stack}}})
		}
		c.e.End()
	}
	for _, w := range s.ws {
		errs = append(errs, w.errs...)
	}
	slices.SortFunc(errs, func(a, b taskError) int { return cmp.Compare(a.id, b.id) })
	all := make([]error, 0, len(errs)+1)
	for _, e := range errs {
		all = append(all, e.err)
	}
	if s.dead != nil {
		all = append(all, s.dead)
	}
	if s.limit != nil {
		all = append(all, s.limit)
	}
	return errors.Join(all...)
}

// fillStacks asks each parked task for its stack: those homed on w, or all
// if w is nil. With LockThreads, each worker asks its own, on its thread.
func (e *DeadlockError) fillStacks(w *worker) {
	for i := range e.Tasks {
		if c := e.Tasks[i].co; c != nil && (w == nil || c.home == w) {
			e.Tasks[i].Stack = c.stackOf()
		}
	}
}
