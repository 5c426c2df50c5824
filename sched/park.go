package sched

import (
	"time"

	"github.com/weavert/weave/internal/poll"
	"github.com/weavert/weave/internal/runq"
	"golang.org/x/sys/unix"
)

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
//
// Once the run has a poller (fd.go), one idle worker at most blocks in it
// instead of on its wake channel: in epoll_wait, until a descriptor is
// ready, its token comes (notify interrupts the wait) or, if it is the
// watcher too, the earliest timer is due.
func (w *worker) park() (t *Task, stop bool) {
	s := w.s
	var timeout <-chan time.Time
	pollFor := time.Duration(-1) // forever
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
	p := s.poller.Load()
	if p != nil && !w.takePoll() {
		p = nil
	}
	if next := s.timers.next.Load(); next != never && s.watcher == nil {
		// After joining the idle list, not before: see addTimer.
		s.watcher = w
		s.watchUntil.Store(next)
		if p != nil {
			pollFor = max(0, time.Duration(next-s.now())) // the clock is real (NewFD)
		} else {
			timeout = w.armIdleTimer(time.Duration(next - s.now()))
			defer w.stopIdleTimer()
		}
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
			if p != nil {
				w.releasePoll()
			}
			s.unwindAll(unwind)
			return nil, false
		}
	}
	s.mu.Unlock()

	if last && (s.gsize.Load() > 0 || s.anyQueued()) {
		if p != nil {
			w.releasePoll()
		}
		if w.transitionFromParked() {
			w.transitionToSearching()
		}
		return nil, false
	}

	if p != nil {
		return nil, w.pollIdle(p, pollFor)
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

// One worker at most polls at a time, blocking or not: state.pollHeld says
// one does. epoll would let several threads wait at once, but then a wake
// meant for one could reach another, and the first would sleep on with its
// token in its channel. A worker that parks while another polls parks on its
// channel and says so (pollMissed); the poller, done, wakes a worker that
// will take the poll if tasks still wait on descriptors.

// takePoll makes w the poller, unless another worker is. Called by w, parked,
// with state.mu held: w.polling is set before a waker can take w off the idle
// list, so that notify sees it.
func (w *worker) takePoll() bool {
	s := w.s
	if !s.pollHeld.CompareAndSwap(false, true) {
		s.pollMissed.Store(true)
		return false
	}
	w.polling.Store(true)
	return true
}

// releasePoll ends w's poll; if a worker parked meanwhile without polling, it
// wakes one to poll in its place.
func (w *worker) releasePoll() {
	s := w.s
	w.polling.Store(false)
	s.pollHeld.Store(false)
	if s.pollMissed.Load() && s.pollMissed.Swap(false) && s.ioWaiting.Load() > 0 {
		s.wakep()
	}
}

// pollIdle blocks parked w in the poller for d (forever if negative), then
// takes w off the idle list and wakes the tasks whose descriptors are ready.
// It reports whether the run is over.
func (w *worker) pollIdle(p *poll.Poller, d time.Duration) (stop bool) {
	s := w.s
	var err error
	w.evs, _, err = p.Wait(w.evs[:0], w.pollBuf(), d)
	if err != nil {
		panic("sched: polling: " + err.Error()) // the poller's own descriptors are broken
	}
	select {
	case <-s.stop:
		w.releasePoll()
		return true
	case <-w.wake:
		w.searching = true
	default:
		w.transitionFromParked()
	}
	w.releasePoll()
	s.ioEvents(w, w.evs)
	clear(w.evs)
	return false
}

// pollNow polls without blocking, on w, which has tasks to run, unless
// another worker polls: a ready descriptor's tasks must not wait until every
// worker is idle. It takes no more events than half the room left in w's
// local queue: the rest wait in the kernel's ready list, in their order,
// for the next poll. Taking a full batch each time overflowed the queue of
// a busy server into the global queue, where the overflow waited behind
// each new batch: a third more 99th-percentile latency in weave bench's
// net/echo than the standard library's server, at the same median.
func (w *worker) pollNow() {
	s := w.s
	p := s.poller.Load()
	room := (runq.Size - w.localLen()) / 2
	if p == nil || room <= 0 || !s.pollHeld.CompareAndSwap(false, true) {
		return
	}
	var err error
	w.evs, _, err = p.Wait(w.evs[:0], w.pollBuf()[:min(room, pollEvents)], 0)
	if err != nil {
		panic("sched: polling: " + err.Error())
	}
	w.releasePoll()
	s.ioEvents(w, w.evs)
	clear(w.evs)
}

// pollBuf returns w's buffer for the kernel's events.
func (w *worker) pollBuf() []unix.EpollEvent {
	if w.raw == nil {
		w.raw = make([]unix.EpollEvent, pollEvents)
	}
	return w.raw
}

// pollEvents is how many events one poll takes at most, as in Go's netpoller.
const pollEvents = 128

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
