package sched

// With LockThreads, a started task runs only on the worker it started on
// (its coroutine's home): the runtime ends the program if a coroutine created
// on a locked thread is resumed on another. A started task woken elsewhere,
// or found in another worker's queue, is forwarded to its home's inbox.

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
	w.unparkLocked()
	s.mu.Unlock()
	w.notify()
}

// takeInbox returns the oldest task forwarded to w, or nil.
func (w *worker) takeInbox() *Task {
	w.inboxMu.Lock()
	t := w.inbox.pop()
	if t != nil {
		w.inboxLen.Add(-1)
	}
	w.inboxMu.Unlock()
	return t
}
