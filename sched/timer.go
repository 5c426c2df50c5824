package sched

import (
	"math"
	"sync"
	"sync/atomic"
)

// timer is a deadline in the run's timer heap: a sleeping task's, a Select's
// OnTimeout, a Timer's or a Ticker's. It is embedded in what owns it, so
// that arming one allocates nothing.
type timer struct {
	when  int64 // the clock reading it falls due at (state.now)
	i     int   // its index in the heap; guarded by timers.mu
	owner timerOwner
	// seq is set by the owner before each add, and handed back to fire, so
	// that a firing that raced with the owner re-arming it tells itself
	// from the firing of the new deadline.
	seq uint64
	// maybe: firing may wake nobody (a Timer's, a Ticker's), so whether it
	// keeps a run alive depends on its owner's wakes.
	maybe bool
}

// timerOwner is what a timer does when it falls due.
type timerOwner interface {
	// fire runs once the timer was taken off the heap, with no lock held,
	// on w, the worker that found it due; now is the clock reading then,
	// and seq the timer's seq when it was taken.
	fire(w *worker, now int64, seq uint64)
	// wakes reports whether firing can make a task runnable, for a timer
	// marked maybe: a run whose only timers cannot (a Ticker nobody
	// receives from) is deadlocked. Called with timers.mu held, once no
	// worker runs: it must not block.
	wakes() bool
}

// never is the deadline of no timer.
const never = math.MaxInt64

// timers is the run's timer heap, a binary min-heap on when. Any worker
// takes the timers that fell due off it: the one that finds them due in its
// loop, a searching one, or the idle worker that waits for the earliest
// (park). So a task that computes for a long time without yielding delays
// no other task's timer while another worker is free.
//
// Rejected: a heap per worker, as Go's runtime has one per P. A worker busy
// with one long task would hold up the timers of its heap, and letting other
// workers run them takes the same lock the single heap takes; Tokio's time
// driver is likewise one structure behind one lock.
type timers struct {
	mu   sync.Mutex
	h    []*timer
	sure int          // timers in h that wake a task when they fire (not maybe)
	next atomic.Int64 // the earliest when, or never; read without mu
}

func (ts *timers) init() { ts.next.Store(never) }

// add puts tm in the heap to fall due at when; tm must not be in it. It
// reports whether tm is now the earliest timer.
func (ts *timers) add(tm *timer, when int64) (earliest bool) {
	ts.mu.Lock()
	earliest = ts.addLocked(tm, when)
	ts.mu.Unlock()
	return earliest
}

func (ts *timers) addLocked(tm *timer, when int64) (earliest bool) {
	tm.when = when
	tm.i = len(ts.h)
	ts.h = append(ts.h, tm)
	if !tm.maybe {
		ts.sure++
	}
	ts.up(tm.i)
	ts.publish()
	return ts.h[0] == tm
}

// remove takes tm out of the heap, and reports whether it was in it: false
// means it fell due and was taken off, or was never added.
func (ts *timers) remove(tm *timer) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.removeLocked(tm)
}

func (ts *timers) removeLocked(tm *timer) bool {
	i := tm.i
	if i < 0 || i >= len(ts.h) || ts.h[i] != tm {
		return false
	}
	last := len(ts.h) - 1
	if i != last {
		ts.swap(i, last)
	}
	ts.h[last] = nil
	ts.h = ts.h[:last]
	tm.i = -1
	if !tm.maybe {
		ts.sure--
	}
	if i != last {
		ts.down(i)
		ts.up(i)
	}
	ts.publish()
	return true
}

// dueTimer is a timer taken off the heap, with its seq at that moment.
type dueTimer struct {
	tm  *timer
	seq uint64
}

// take takes the timers due at now off the heap, in the order of their
// deadlines, into dst.
func (ts *timers) take(now int64, dst []dueTimer) []dueTimer {
	if ts.next.Load() > now {
		return dst
	}
	ts.mu.Lock()
	for len(ts.h) > 0 && ts.h[0].when <= now {
		tm := ts.h[0]
		ts.removeLocked(tm)
		dst = append(dst, dueTimer{tm, tm.seq})
	}
	ts.mu.Unlock()
	return dst
}

// canWake reports whether a timer in the heap can make a task runnable.
// Called with every worker idle.
func (ts *timers) canWake() bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.sure > 0 {
		return true
	}
	for _, tm := range ts.h {
		if tm.owner.wakes() {
			return true
		}
	}
	return false
}

// publish stores the earliest deadline for readers without the lock.
func (ts *timers) publish() {
	if len(ts.h) == 0 {
		ts.next.Store(never)
	} else {
		ts.next.Store(ts.h[0].when)
	}
}

func (ts *timers) swap(i, j int) {
	ts.h[i], ts.h[j] = ts.h[j], ts.h[i]
	ts.h[i].i, ts.h[j].i = i, j
}

func (ts *timers) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if ts.h[p].when <= ts.h[i].when {
			return
		}
		ts.swap(i, p)
		i = p
	}
}

func (ts *timers) down(i int) {
	n := len(ts.h)
	for {
		l, m := 2*i+1, i
		if l < n && ts.h[l].when < ts.h[m].when {
			m = l
		}
		if r := l + 1; r < n && ts.h[r].when < ts.h[m].when {
			m = r
		}
		if m == i {
			return
		}
		ts.swap(i, m)
		i = m
	}
}

// addTimer arms tm to fall due at when, and makes sure a worker will see it
// in time: a busy worker looks at the heap at every scheduling decision, and
// an idle one waits for the earliest timer (park); a timer earlier than what
// that one waits for wakes it, or wakes an idle worker to take the watch.
func (s *state) addTimer(tm *timer, when int64) {
	// The order matters: a worker that parks joins the idle list before it
	// reads the earliest deadline, and the timer is in the heap before
	// nidle is read here. So either that worker sees the timer, or it is
	// counted here and woken.
	s.timerAdded(s.timers.add(tm, when), when)
}

// timerAdded makes sure a worker will see a timer added at when, the
// earliest of the heap if earliest.
func (s *state) timerAdded(earliest bool, when int64) {
	if earliest && when < s.watchUntil.Load() && s.nidle.Load() > 0 {
		s.wakeWatcher()
	}
}

// runTimers fires the timers due now, on w.
func (s *state) runTimers(w *worker) {
	now := s.now()
	due := s.timers.take(now, w.due[:0])
	for i, d := range due {
		due[i] = dueTimer{}
		d.tm.owner.fire(w, now, d.seq)
	}
	w.due = due[:0]
}

// readyOn makes t runnable on w, which found its timer due or its
// descriptor ready. Under LockThreads a started task goes to its home
// instead.
func (s *state) readyOn(w *worker, t *Task) {
	if s.locked && t.co != nil && t.co.home != w {
		s.markReady(t, nil)
		t.co.home.forward(t)
		return
	}
	s.readyQuiet(w, t)
	s.wakep()
}

// readyQuiet makes t runnable on w, which runs it next unless another
// worker steals it first, and wakes no other worker for it. t's home, if it
// has one, is w.
func (s *state) readyQuiet(w *worker, t *Task) {
	s.markReady(t, nil)
	w.push(t)
}

// fire ends t's Sleep of generation gen, unless its context ended it first.
func (t *Task) fire(w *worker, _ int64, gen uint64) {
	if !t.claimWake(gen) {
		return
	}
	x := t.x.Load()
	x.parkMu.Lock() // t is suspended once this is free
	//lint:ignore SA2001 the critical section is empty on purpose: a handshake
	x.parkMu.Unlock()
	t.s.readyOn(w, t)
}

func (t *Task) wakes() bool { return true }
