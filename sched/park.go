package sched

import "time"

// park puts w to sleep until work arrives, its next timer is due or the run
// ends (stop). It may return a task it found on the way. It follows the idle
// protocol (idle.go): w takes the global queue's work or joins the idle list
// under state.mu, and, if it was the last searcher, looks at every queue
// again once it is on the list.
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
	if t := s.globalTakeLocked(w); t != nil {
		s.mu.Unlock()
		return t, false
	}
	if w.inboxLen.Load() > 0 {
		s.mu.Unlock()
		return nil, false
	}
	last := w.transitionToParkedLocked()
	if s.nidle.Load() == s.n && s.quiescentLocked() {
		s.mu.Unlock()
		return nil, true
	}
	s.mu.Unlock()

	if last && (s.gsize.Load() > 0 || s.anyQueued()) {
		if w.transitionFromParked() {
			w.transitionToSearching()
		}
		return nil, false
	}

	select {
	case <-w.wake:
		w.searching = true
		return nil, false
	case <-s.stop:
		return nil, true
	case <-timeout:
		w.transitionFromParked()
		return nil, false
	}
}
