package sched

import "time"

// park puts w to sleep until work arrives, the earliest timer is due (if w
// watches the timers) or the run ends (stop). It may return a task it found
// on the way. It follows the idle protocol (idle.go): w takes the global
// queue's work or joins the idle list under state.mu, and, if it was the last
// searcher, looks at every queue again once it is on the list.
//
// One idle worker at most, the watcher, waits for the earliest timer; the
// others wait without a deadline, so that a timer wakes one worker, not all
// of them. Its deadline is armed before it can find the run quiescent: an
// IdleClock moves time to it then.
func (w *worker) park() (t *Task, stop bool) {
	s := w.s
	var timeout <-chan time.Time
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
	if next := s.timers.next.Load(); next != never && s.watcher == nil {
		// After joining the idle list, not before: see addTimer.
		s.watcher = w
		s.watchUntil.Store(next)
		timeout = w.armIdleTimer(time.Duration(next - s.now()))
		defer w.stopIdleTimer()
	}
	if s.nidle.Load() == s.n {
		over, unwind := s.quiescentLocked()
		if over {
			s.mu.Unlock()
			return nil, true
		}
		if unwind != nil {
			// w goes on, to run the tasks it unwinds.
			w.leaveIdleLocked()
			s.mu.Unlock()
			s.unwindAll(unwind)
			return nil, false
		}
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

// armIdleTimer returns a channel that receives once d has passed, for w's
// wait as the watcher. On the real clock w keeps one time.Timer for it, so
// that an idle wait allocates nothing; another clock makes a timer each time.
func (w *worker) armIdleTimer(d time.Duration) <-chan time.Time {
	if _, ok := w.s.clock.(realClock); !ok {
		w.clockTimer = w.s.clock.NewTimer(d)
		return w.clockTimer.C()
	}
	if w.idleTimer == nil {
		w.idleTimer = time.NewTimer(d)
	} else {
		w.idleTimer.Reset(d)
	}
	return w.idleTimer.C
}

func (w *worker) stopIdleTimer() {
	if w.clockTimer != nil {
		w.clockTimer.Stop()
		w.clockTimer = nil
		return
	}
	w.idleTimer.Stop()
}
