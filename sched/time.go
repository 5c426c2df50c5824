package sched

import "time"

// Clock is where a scheduler reads time and waits for it. The scheduler
// reads Now for Task.Now and Sleep, and an idle worker whose tasks sleep
// waits on NewTimer for the earliest of them. The default is the real
// clock; a virtual clock (deterministic tests) plugs in here.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer whose channel receives once d has passed.
	NewTimer(d time.Duration) Timer
}

// IdleClock is a Clock that time can be moved on, such as a virtual clock.
// When every worker is idle and tasks sleep, the scheduler calls Idle rather
// than wait: the clock moves its time to its earliest pending timer and
// fires it. So virtual time moves only when no task can run, straight to the
// next timer, and a test that sleeps for an hour takes no time.
type IdleClock interface {
	Clock
	// Idle fires the earliest pending timer, after moving Now to its time.
	// The scheduler calls it with its own lock held: it must not call
	// back into the scheduler, and must not block.
	Idle()
}

// Timer is a Clock's one-shot timer.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing, and reports whether it did.
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// timer is a sleeping task's entry in its worker's heap. gen tells a live
// entry from one whose sleep a context ended early.
type timer struct {
	when int64
	t    *Task
	gen  uint64
	stop func() bool // stops the context callback; nil if there is none
}

// timerHeap is a worker's sleep timers, a binary min-heap on when. Only its
// worker touches it.
//
// Rejected: one heap for the whole scheduler. It would need a lock on every
// Sleep, and the worker that parks a sleeper is as good as any to wake it.
type timerHeap struct{ h []timer }

func (th *timerHeap) len() int    { return len(th.h) }
func (th *timerHeap) next() int64 { return th.h[0].when }

func (th *timerHeap) push(e timer) {
	th.h = append(th.h, e)
	i := len(th.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if th.h[p].when <= th.h[i].when {
			break
		}
		th.h[p], th.h[i] = th.h[i], th.h[p]
		i = p
	}
}

func (th *timerHeap) pop() timer {
	h := th.h
	e := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = timer{}
	h = h[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && h[l].when < h[m].when {
			m = l
		}
		if r := l + 1; r < n && h[r].when < h[m].when {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	th.h = h
	return e
}
