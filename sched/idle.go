package sched

// The idle protocol: how workers with nothing to run search for work, park,
// and are woken, without losing work and without a lock on the fast path.
//
// A worker with nothing to run is in one of two states. Searching: it looks
// at the other workers' queues and the global queue, and is counted in
// state.nsearching. Parked: it is on state.idle (counted in state.nidle,
// both under state.mu) and waits on its wake channel. At most half the busy
// workers search at once: more would only contend for the same queues.
//
// The invariant, kept by the functions of this file and nowhere else:
//
//	Work that is published is seen by a searching worker, or a parked
//	worker is woken to search for it.
//
// It holds because of three orders, the same as in Go's runtime and Tokio:
//
//  1. A waker publishes its work (a queue push) before it reads nsearching
//     and nidle (wakep).
//  2. A searching worker that finds work stops searching; if it was the last
//     searcher, it wakes a parked worker, because the work it found may not
//     be all there is (transitionFromSearching).
//  3. A worker joins the idle list before it stops searching, and the last
//     searcher to stop looks at every queue once more after that
//     (transitionToParked, then park): a waker that saw it searching left
//     the work to it, and it sees that work.
//
// A worker woken by wakep receives a token on its wake channel, which makes
// it a searcher: wakep counted it in nsearching on its behalf.

// wakep wakes a parked worker to search for work, unless a worker already
// searches: that one will find the work, or wake another when it does.
// Call it after publishing work.
func (s *state) wakep() {
	if s.nidle.Load() == 0 || s.nsearching.Load() != 0 || !s.nsearching.CompareAndSwap(0, 1) {
		return
	}
	s.mu.Lock()
	if len(s.idle) == 0 {
		s.mu.Unlock()
		s.nsearching.Add(-1)
		return
	}
	w := s.idle[len(s.idle)-1]
	w.leaveIdleLocked()
	s.mu.Unlock()
	w.notify() // hands our nsearching count to w
}

// transitionToSearching reports whether w may search other workers' queues:
// it may if it already does, or if fewer than half the busy workers do.
func (w *worker) transitionToSearching() bool {
	if w.searching {
		return true
	}
	s := w.s
	if 2*s.nsearching.Load() >= s.n-s.nidle.Load() {
		return false
	}
	w.searching = true
	s.nsearching.Add(1)
	return true
}

// transitionFromSearching ends w's search, now that it has work. If w was the
// last searcher, it wakes a parked worker: the work w found may not be all
// there is. It does nothing if w was not searching.
func (w *worker) transitionFromSearching() {
	if !w.searching {
		return
	}
	w.searching = false
	if w.s.nsearching.Add(-1) == 0 {
		w.s.wakep()
	}
}

// transitionToParkedLocked puts w on the idle list and ends its search, in
// that order (3). It reports whether w was the last searcher: then the caller
// must look at every queue once more, after releasing state.mu, and search
// again if it finds work. Called with state.mu held.
func (w *worker) transitionToParkedLocked() (lastSearcher bool) {
	s := w.s
	w.parked = true
	s.idle = append(s.idle, w)
	s.nidle.Add(1)
	if !w.searching {
		return false
	}
	w.searching = false
	return s.nsearching.Add(-1) == 0
}

// transitionFromParked takes w, parked, off the idle list itself (its timer
// fired, or it found work after parking). If a waker took it off first, it
// waits for that waker's token, which makes w a searcher. It reports whether
// w took itself off.
func (w *worker) transitionFromParked() (removed bool) {
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
		w.searching = true
	case <-s.stop:
	}
	return false
}

// unparkLocked takes parked w off the idle list to run the task just
// forwarded to its inbox, and counts it as a searcher; the caller sends w its
// token once state.mu is released. Called with state.mu held.
func (w *worker) unparkLocked() {
	w.leaveIdleLocked()
	w.s.nsearching.Add(1)
}

// wakeWatcher wakes the idle worker that waits for the earliest timer, or,
// if none does, an idle worker that will take the watch: a timer earlier
// than the watcher waits for was added.
func (s *state) wakeWatcher() {
	s.mu.Lock()
	w := s.watcher
	if w == nil {
		s.mu.Unlock()
		s.wakep()
		return
	}
	w.unparkLocked()
	s.mu.Unlock()
	w.notify()
}

// notify sends w, just taken off the idle list, its token; if w is blocked
// in the poller rather than on its wake channel, it interrupts the poll.
// w.polling is set under state.mu before w blocks, and the caller took w off
// the list under state.mu, so it sees the flag if w polls.
func (w *worker) notify() {
	w.wake <- struct{}{}
	if w.polling.Load() {
		w.s.poller.Load().Wake()
	}
}

// leaveIdleLocked takes parked w off the idle list: the one place that does.
// Called with state.mu held.
func (w *worker) leaveIdleLocked() {
	s := w.s
	w.parked = false
	if s.watcher == w {
		s.watcher = nil
		s.watchUntil.Store(never)
	}
	for i := len(s.idle) - 1; i >= 0; i-- { // wakep takes the last
		if s.idle[i] == w {
			s.idle = append(s.idle[:i], s.idle[i+1:]...)
			break
		}
	}
	s.nidle.Add(-1)
}
