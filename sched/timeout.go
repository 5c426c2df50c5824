package sched

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Timer sends the time on its channel C once, when it fires, by the clock of
// its scheduler (virtual in a deterministic run). It is time.Timer for
// tasks: receive from C with Recv or in a Select. Create one with NewTimer.
//
// As with time.Timer since Go 1.23, no value sent before a Stop or Reset is
// received after it: Stop and Reset take back a value C still holds, and a
// firing that raced with them sends nothing. A Timer belongs to the Run of
// the task that made it; its methods may be called by any task of that Run.
type Timer struct {
	C  *Chan[time.Time] // capacity 1
	st sendTimer
}

// Ticker sends the time on its channel C every period, by the clock of its
// scheduler. If a receiver falls behind, ticks are dropped, as with
// time.Ticker: C holds one at most. Create one with NewTicker, and Stop it
// when done: a Ticker that a task waits on keeps the run going. A Ticker
// belongs to the Run of the task that made it; its methods may be called by
// any task of that Run.
type Ticker struct {
	C  *Chan[time.Time] // capacity 1
	st sendTimer
}

// NewTimer returns a Timer of t's scheduler that fires after d.
func NewTimer(t *Task, d time.Duration) *Timer {
	t.running("NewTimer")
	tm := &Timer{C: NewChan[time.Time](1)}
	tm.st.init(t.s, tm.C, 0)
	tm.st.arm(d)
	return tm
}

// Stop stops tm from firing, and reports whether it did: false if tm had
// already fired or been stopped. After Stop, C holds no value.
func (tm *Timer) Stop() bool { return tm.st.stop() }

// Reset makes tm fire after d, and reports whether it was still to fire.
// After Reset, C holds no value from before.
func (tm *Timer) Reset(d time.Duration) bool {
	active := tm.st.stop()
	tm.st.arm(d)
	return active
}

// NewTicker returns a Ticker of t's scheduler that ticks every period. It
// panics if period <= 0.
func NewTicker(t *Task, period time.Duration) *Ticker {
	t.running("NewTicker")
	if period <= 0 {
		panic("sched: NewTicker with a period that is not positive")
	}
	tk := &Ticker{C: NewChan[time.Time](1)}
	tk.st.init(t.s, tk.C, period)
	tk.st.arm(period)
	return tk
}

// Stop stops tk: it ticks no more, and C holds no value.
func (tk *Ticker) Stop() { tk.st.stop() }

// Reset stops tk and makes it tick every period from now. It panics if
// period <= 0.
func (tk *Ticker) Reset(period time.Duration) {
	if period <= 0 {
		panic("sched: Ticker.Reset with a period that is not positive")
	}
	tk.st.stop()
	tk.st.period = int64(period)
	tk.st.arm(period)
}

// sendTimer is the timer of a Timer or Ticker: when it fires, it sends the
// time on c.
type sendTimer struct {
	s      *state
	c      *Chan[time.Time]
	tm     timer
	period int64 // a Ticker's; 0 for a Timer
	// seq is the generation of the deadline armed last. Stop and Reset move
	// it on first, so that a firing of an earlier deadline sees it changed
	// and sends nothing.
	seq atomic.Uint64
}

func (st *sendTimer) init(s *state, c *Chan[time.Time], period time.Duration) {
	st.s, st.c, st.period = s, c, int64(period)
	st.tm.owner = st
	st.tm.maybe = true // only if a task waits on c (wakes)
}

// arm makes st fire after d.
func (st *sendTimer) arm(d time.Duration) {
	st.tm.seq = st.seq.Add(1)
	st.s.addTimer(&st.tm, st.s.now()+int64(max(d, 0)))
}

// stop disarms st and takes back what c holds, and reports whether st was
// armed.
func (st *sendTimer) stop() bool {
	st.seq.Add(1)
	armed := st.s.timers.remove(&st.tm)
	c := st.c
	c.mu.Lock()
	if c.n > 0 {
		c.buf[c.head] = time.Time{}
		c.head = (c.head + 1) % len(c.buf)
		c.n--
	}
	c.mu.Unlock()
	return armed
}

func (st *sendTimer) fire(w *worker, now int64, seq uint64) {
	s, c := st.s, st.c
	c.mu.Lock()
	if st.seq.Load() != seq {
		c.mu.Unlock()
		return // stopped or reset meanwhile
	}
	_, _, partner := c.sendLocked(s.base.Add(time.Duration(now)))
	c.mu.Unlock()
	if partner != nil {
		s.readyOn(w, partner)
	}
	if st.period == 0 {
		return
	}
	// The next tick, on the ticker's beat, after now. Armed under the
	// heap's lock with the seq checked there: Stop moves seq before it
	// removes, so either it sees this tick armed or this sees it moved.
	ts := &s.timers
	ts.mu.Lock()
	if st.seq.Load() != seq {
		ts.mu.Unlock()
		return
	}
	next := st.tm.when + st.period
	if next <= now {
		next += (now-next)/st.period*st.period + st.period
	}
	earliest := ts.addLocked(&st.tm, next)
	ts.mu.Unlock()
	s.timerAdded(earliest, next)
}

// wakes reports whether a task waits to receive from c. Called with the
// timer heap's lock held and no task running: it does not wait for c's lock.
func (st *sendTimer) wakes() bool {
	c := st.c
	if !c.mu.TryLock() {
		return true // someone is at it: not idle after all
	}
	defer c.mu.Unlock()
	return c.recvq.head != nil
}

// OnTimeout is a Select case that is chosen once d has passed since the
// Select began to wait, by the clock of the task's scheduler, and then calls
// f. f may be nil. A timeout of d <= 0 is ready at once. With it, a wait has
// a deadline without a helper task:
//
//	sched.Select(t, sched.OnRecv(reply, got), sched.OnTimeout(time.Second, nil))
//
// A Select over an OnTimeout case built once allocates nothing.
func OnTimeout(d time.Duration, f func()) Case {
	c := &timeoutCase{d: d, f: f}
	c.tm.owner = c
	return c
}

type timeoutCase struct {
	d  time.Duration
	f  func()
	mu sync.Mutex // held, as channel locks are, until the task is suspended
	tm timer
	// While its Select waits, under mu: the task, its wait's generation, the
	// case's index, and the seq of the armed deadline.
	t     *Task
	gen   uint64
	idx   int
	seq   uint64
	armed bool
}

func (c *timeoutCase) mutex() *sync.Mutex { return &c.mu }
func (c *timeoutCase) noteRun(*Task)      {}

func (c *timeoutCase) appendCase(b []byte, _ func(any) string, _ bool) []byte {
	return fmt.Appendf(b, "timeout %v", c.d)
}

func (c *timeoutCase) try() (bool, *Task) { return c.d <= 0, nil }

func (c *timeoutCase) enqueue(t *Task, gen uint64, idx int) {
	c.t, c.gen, c.idx = t, gen, idx
	c.seq++
	c.tm.seq = c.seq
	c.armed = true
	t.s.addTimer(&c.tm, t.s.now()+int64(c.d))
}

func (c *timeoutCase) dequeue() {
	if c.armed {
		c.t.s.timers.remove(&c.tm)
	}
}

func (c *timeoutCase) reset() { c.armed = false }

func (c *timeoutCase) finish() {
	if c.f != nil {
		c.f()
	}
}

func (c *timeoutCase) fire(w *worker, _ int64, seq uint64) {
	c.mu.Lock() // the task is suspended once this is free
	if seq != c.seq {
		c.mu.Unlock()
		return // the deadline of an earlier Select, which ended without it
	}
	t := c.t
	won := t.claimWake(c.gen)
	if won {
		t.x.Load().sel.idx = c.idx
	}
	c.mu.Unlock()
	if won {
		t.s.readyOn(w, t)
	}
}

func (c *timeoutCase) wakes() bool { return true }
