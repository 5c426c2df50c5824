package sched

import "time"

// Clock is where a scheduler reads time and waits for it. The scheduler
// reads Now for Task.Now and Sleep, and an idle worker whose tasks sleep
// waits on NewTimer for the earliest of them. The default is the real
// clock; a virtual clock (deterministic tests) plugs in here.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer whose channel receives once d has passed.
	NewTimer(d time.Duration) ClockTimer
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

// ClockTimer is a Clock's one-shot timer.
type ClockTimer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing, and reports whether it did.
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) ClockTimer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }
