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
//     worker idle, asks quiescentLocked what the end of all activity means.
//     Nothing, while the global queue holds a task, an external wait is
//     pending (Await, a context in a Select, a descriptor) or a timer can wake a task
//     (then an IdleClock moves its time to the watcher's deadline). In
//     modeSim, simNext asks the same when nothing is runnable.
//  2. Leaks. If a Group's or Handle's Wait is parked, the tasks that scope
//     started itself have ended, and those left are parked, they leaked:
//     the innermost such scope gets a LeakError naming them, and they are
//     interrupted (3). The run goes on; its Wait returns once they ended.
//  3. Unwinding. Otherwise, if tasks are parked, they are deadlocked: a
//     DeadlockError names them, and each is interrupted: taken out of the
//     wait queue of what it waits on, so that no primitive keeps it, and
//     made runnable; its wait panics (Task.unwind), which records its stack
//     for the report, and its deferred calls run as the task goes on, on a
//     worker, with every primitive working as usual. A Cond.Wait takes its
//     Mutex back first, as sync.Cond.Wait returns with it.
//  4. Stop. When every task has ended, or at the next end of activity after
//     a deadlock (a deferred call that waits for good), or at the step limit
//     in modeSim, endLocked marks the run done and closes state.stop:
//     parked workers return from park, and a worker about to park sees
//     done.
//  5. Workers return. Each worker's loop returns (on one thread, a task
//     whose goroutine runs the loop, Task.park, first switches to the
//     worker's goroutine, where the loop returns); with LockThreads, each
//     worker closes the coroutines created on its thread, on that thread,
//     as the runtime requires (closeCoroutines).
//  6. Await pool drained. run waits for the pool's goroutines, whose tasks
//     were woken before the run could end.
//  7. Forced unwinding. finish closes every coroutine left: a task still
//     parked is taken out of its wait queue and unwound by its engine, and
//     a wait in its deferred calls unwinds at once; a free coroutine ends.
//     Then it closes the FDs left open, and the poller.
//  8. Errors gathered: the failures of tasks, the DeadlockError and the
//     StepLimitError, in the order they happened, so that the first failure
//     comes first and what unwinding led to comes after it.

// quiescentLocked decides, with state.mu held and every worker idle, what the
// end of all activity means (steps 1 to 4). It reports whether the run is
// over; if not, it may return tasks to interrupt for intrUnwind, which the
// caller does once state.mu is released.
func (s *state) quiescentLocked() (over bool, unwind []*Task) {
	if s.gsize.Load() > 0 || s.external.Load() > 0 || s.ioWaiting.Load() > 0 {
		return false, nil
	}
	if s.timers.canWake() {
		// Nothing else can happen until a timer fires: a virtual clock
		// moves straight to the next one, which the watcher waits for.
		if c, ok := s.clock.(IdleClock); ok {
			c.Idle()
		}
		return false, nil
	}
	unwind = s.stuck()
	if unwind == nil {
		s.endLocked(nil)
		return true, nil
	}
	return false, unwind
}

// stuck decides what to do with the tasks left, parked for good, once
// nothing can happen any more (steps 2 to 4): it returns the tasks to unwind,
// or ends the run and returns nil. Called with every worker idle and
// state.mu held, or in modeSim by its one worker.
func (s *state) stuck() []*Task {
	var parked []*Task
	s.coMu.Lock()
	for c := range s.cos {
		if t := c.t; t != nil && t.state == stateParked && !t.frozen() {
			parked = append(parked, t)
		}
	}
	s.coMu.Unlock()
	if len(parked) == 0 || s.dead != nil {
		return nil // every task ended, or the unwinding of a deadlock is stuck
	}
	slices.SortFunc(parked, func(a, b *Task) int { return cmp.Compare(a.id, b.id) })
	if sc := leakedScope(parked); sc != nil {
		var tasks []*Task
		sc.each(func(t *Task) { tasks = append(tasks, t) })
		slices.SortFunc(tasks, func(a, b *Task) int { return cmp.Compare(a.id, b.id) })
		leak := &LeakError{Tasks: reportOn(tasks)}
		sc.mu.Lock()
		sc.leak = leak
		sc.mu.Unlock()
		return tasks
	}
	dead := &DeadlockError{Tasks: reportOn(parked)}
	s.dead, s.deadSeq = dead, s.seq.Add(1)
	return parked
}

// reportOn describes tasks, parked for good, for a report, and makes each
// put its stack there when it unwinds.
func reportOn(tasks []*Task) []ParkedTask {
	r := make([]ParkedTask, len(tasks))
	for i, t := range tasks {
		r[i] = ParkedTask{ID: t.id, Name: t.name, Created: t.createdAt(), WaitsOn: t.waitReason().Detail()}
		t.extra().report = &r[i].Stack
	}
	return r
}

// leakedScope returns the scope whose Wait, parked, waits for tasks that can
// never end (step 2): the tasks it started itself have ended. If several
// have, the innermost, then the one whose waiter came first: its leaked
// tasks may be what an outer one waits for.
func leakedScope(parked []*Task) *scope {
	var found *scope
	for _, t := range parked {
		sc, ok := t.waitOn.(*scope)
		if !ok {
			continue
		}
		sc.mu.Lock()
		leaked := sc.direct == 0 && sc.live > 0 && sc.leak == nil
		sc.mu.Unlock()
		if leaked && (found == nil || sc.depth > found.depth) {
			found = sc
		}
	}
	return found
}

// unwindAll interrupts each of tasks, parked for good, for intrUnwind (steps
// 2 and 3). Called with no lock held, by the worker that found the run
// stuck, while every other worker is idle.
func (s *state) unwindAll(tasks []*Task) {
	for _, t := range tasks {
		// A wait that the end of the run's context may also end goes to
		// whichever claims it first.
		if t.armed && !t.claimWake(t.gen) {
			continue
		}
		s.interrupt(t, intrUnwind, nil)
	}
}

// endLocked ends the run (step 4), with what stopped it if anything but the
// end of every task or a deadlock. Called with state.mu held.
func (s *state) endLocked(limit *StepLimitError) {
	s.limit = limit
	s.done = true
	close(s.stop)
	if p := s.poller.Load(); p != nil {
		p.Wake() // the worker blocked in it, if one is
	}
}

// closeCoroutines closes, at the end of a run with LockThreads, the
// coroutines created on w's thread, from that thread as the runtime requires
// (step 5).
func (w *worker) closeCoroutines() {
	s := w.s
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
		s.close(c, w)
	}
}

// finish unwinds the tasks left and gathers the errors (steps 7 and 8),
// after every worker has returned.
func (s *state) finish() error {
	// The workers are gone: wakes from the deferred calls of the tasks
	// closed below must not pick one.
	s.mu.Lock()
	s.idle = nil
	s.nidle.Store(0)
	s.mu.Unlock()
	for c := range s.cos {
		s.close(c, s.ws[0])
	}
	for _, f := range s.fds.open() {
		f.Close() // left open by its tasks: no descriptor outlives its run
	}
	if p := s.poller.Load(); p != nil {
		p.Close()
	}
	var errs []taskError
	for _, w := range s.ws {
		errs = append(errs, w.errs...)
		for _, e := range w.handles {
			if e.h.untaken() {
				errs = append(errs, e.taskError)
			}
		}
	}
	if s.dead != nil {
		errs = append(errs, taskError{s.deadSeq, s.dead})
	}
	if s.limit != nil {
		errs = append(errs, taskError{s.seq.Add(1), s.limit})
	}
	slices.SortFunc(errs, func(a, b taskError) int { return cmp.Compare(a.seq, b.seq) })
	all := make([]error, 0, len(errs)+1)
	if s.root != nil && s.mainCancelled {
		all = append(all, s.root.ctx.Err())
	}
	for _, e := range errs {
		all = append(all, e.err)
	}
	if len(all) == 1 {
		return all[0] // unchanged: a context's error, say
	}
	return errors.Join(all...)
}

// close closes c at the end of the run (step 7), on w's thread. A task still
// parked is taken out of its wait queue first; its deferred calls run as if
// on w, and a wait among them unwinds at once (Task.park). A deferred call
// that panics is the task's failure.
func (s *state) close(c *coroutine, w *worker) {
	t := c.t
	if t != nil {
		if t.state == stateParked {
			t.leaveWait()
		}
		t.state, t.w, t.unwinding = stateRunning, w, true
	}
	if d := s.dog(); d != nil {
		d.beat(s.sim, t, c, nil) // its deferred calls run now: they may hang too
	}
	c.closing = true
	if !c.e.Close() {
		return
	}
	if panicked, v, stack := c.e.Panic(); panicked && t != nil && !t.frozen() {
		w.errs = append(w.errs, taskError{s.seq.Add(1), &TaskError{ID: t.id, Name: t.name, Err: &coro.PanicError{Value: v, Stack: stack}}})
	}
	c.e.End()
}
