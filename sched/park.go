package sched

import (
	"runtime"
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
// Once the run has a poller (fd.go), the last worker to park blocks in it
// instead of on its wake channel: in epoll_wait, until a descriptor is
// ready, its token comes (notify interrupts the wait) or, if it is the
// watcher too, the earliest timer is due. A worker that parks while another
// runs does not: the running one polls as it goes (pollNow) and when it runs
// out of work, so that a task made ready by a descriptor runs on the thread
// that goes idle, as Go's scheduler does, instead of waking a thread blocked
// in epoll_wait at every hop of a ping-pong. Rejected: the first idle
// worker in the poller whatever the others do. Two tasks that answer each
// other over a socket then ran on the two threads in turn, each woken from
// epoll_wait by the other: 1.5x the time per round trip of two goroutines.
// So that a task that computes for long without a scheduling decision holds
// up the descriptors no longer than Go's sysmon lets it, a worker parked
// while tasks wait on descriptors wakes after pollGap to poll.
func (w *worker) park() (t *Task, stop bool) {
	s := w.s
	var timeout <-chan time.Time
	ioCheck := false             // timeout is pollGap's, and w polls when it passes
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
	switch {
	case p == nil:
	case s.nidle.Load() < s.n: // another worker runs
		ioCheck = s.ioWaiting.Load() > 0
		p = nil
	case !w.takePoll(): // another worker polls
		p = nil
	}
	wait := time.Duration(-1)
	if next := s.timers.next.Load(); next != never && s.watcher == nil {
		// After joining the idle list, not before: see addTimer.
		s.watcher = w
		s.watchUntil.Store(next)
		wait = max(0, time.Duration(next-s.now()))
	}
	if ioCheck && (wait < 0 || wait > pollGap) {
		wait = pollGap
	} else {
		ioCheck = false
	}
	if p != nil {
		pollFor = wait // the clock is real (NewFD)
	} else if wait >= 0 {
		timeout = w.armIdleTimer(wait)
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
		if ioCheck {
			w.pollNow(false)
		}
		return nil, false
	}
}

// pollGap is how long a parked worker lets the descriptors go unpolled
// while tasks wait on them and another worker runs: as long as Go's sysmon
// lets its netpoller go.
const pollGap = 10 * time.Millisecond

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
	if d != 0 {
		w.tickGo()
	}
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
	s.ioEvents(w, w.evs, true)
	clear(w.evs)
	return false
}

// tickGo lets w's goroutine pass through Go's scheduler if it has not for
// tickGap. Tasks switch without one, so the scheduling tick of the worker's
// P stands still while it runs them. Go's sysmon takes a P whose tick has
// not moved for 10 ms as hogged: it preempts it, and if it sits in a system
// call, even one that has just begun, hands it to another thread, a futex
// wake and a thread switch each time; every such hand-off also keeps sysmon
// waking every 20 µs for a while. A ping-pong between two tasks over a
// socket on one thread made a futex call every 5 round trips and a context
// switch every 20 (strace, perf stat). A Gosched moves the tick; once in
// 5 ms it costs nothing that counts. The worker calls it at the scheduling
// decisions where it may poll (next) and before it blocks in the poller.
func (w *worker) tickGo() {
	if now := w.s.now(); now-w.yielded > int64(tickGap) {
		w.yielded = now
		runtime.Gosched()
	}
}

const tickGap = 5 * time.Millisecond

// pollNow polls without blocking, on w, which has tasks to run, unless
// another worker polls: a ready descriptor's tasks must not wait until every
// worker is idle. It takes no more events than half the room left in w's
// local queue: the rest wait in the kernel's ready list, in their order,
// for the next poll. Taking a full batch each time overflowed the queue of
// a busy server into the global queue, where the overflow waited behind
// each new batch: a third more 99th-percentile latency in weave bench's
// net/echo than the standard library's server, at the same median.
//
// With idle, w has nothing else to run (find calls it before it steals or
// parks, as Go's findRunnable polls before it steals): the first task woken
// is w's next without waking another worker (ioEvents). It reports whether
// the poll returned events.
func (w *worker) pollNow(idle bool) bool {
	s := w.s
	p := s.poller.Load()
	room := (runq.Size - w.localLen()) / 2
	if p == nil || room <= 0 || !s.pollHeld.CompareAndSwap(false, true) {
		return false
	}
	var err error
	w.evs, _, err = p.Wait(w.evs[:0], w.pollBuf()[:min(room, pollEvents)], 0)
	if err != nil {
		panic("sched: polling: " + err.Error())
	}
	w.releasePoll()
	s.ioEvents(w, w.evs, idle)
	n := len(w.evs)
	clear(w.evs)
	return n > 0
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
