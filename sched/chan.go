package sched

import (
	"fmt"
	"sync"
)

// Chan is a channel between tasks: Send and Recv park the calling task, not
// its worker, while they wait. NewChan makes one with a buffer; the zero
// value is an unbuffered channel, ready to use. A Chan belongs to the tasks
// of one Run, on any of its workers: a task parked on it must be woken by
// another task of that Run (see "Waking from outside" in the package doc).
//
// Its semantics are those of a Go channel: a send happens before the
// corresponding receive completes; on an unbuffered channel, the receive
// happens before the send completes; waiters are served in FIFO order. A nil
// *Chan is Go's nil channel: Send and Recv wait forever (a deadlock, if
// nothing else runs), TrySend and TryRecv never proceed, a Select case on it
// is never chosen, and Close panics.
type Chan[T any] struct {
	mu     sync.Mutex
	buf    []T // ring of len = capacity
	head   int
	n      int
	closed bool
	recvq  waitq[T]
	sendq  waitq[T]
	run    *state // the deterministic run that used it last (pointIn)
}

// waiter is a task waiting in Send, Recv or Select, with the value it moves.
type waiter[T any] struct {
	t    *Task
	v    T
	ok   bool // the operation completed (false: the channel was closed)
	next *waiter[T]
	sel  bool   // a case of a Select: the first waker to claim its task wins
	gen  uint64 // with sel: the Select's wait generation (Task.arm)
	idx  int    // with sel: the case's index in its Select
}

// dequeueWaiter takes the first waiter of q that can still be completed,
// skipping the stale cases of Selects that another case has won, and the
// waits that their task's context ended.
func dequeueWaiter[T any](q *waitq[T]) *waiter[T] {
	for w := q.pop(); w != nil; w = q.pop() {
		if !w.sel {
			if w.t.wakeable() {
				return w
			}
			continue // its context ended the wait: the interrupter wakes it
		}
		if w.t.claimWake(w.gen) {
			w.t.x.Load().sel.idx = w.idx
			return w
		}
	}
	return nil
}

// NewChan returns a channel with room for capacity values; 0 makes it
// unbuffered. It panics if capacity < 0.
func NewChan[T any](capacity int) *Chan[T] {
	if capacity < 0 {
		panic("sched: NewChan with negative capacity")
	}
	return &Chan[T]{buf: make([]T, capacity)}
}

// waiterOf returns t's waiter for element type T, reusing the one from its
// last wait on such a channel: a blocking Send or Recv allocates only the
// first time.
func waiterOf[T any](t *Task) *waiter[T] {
	x := t.extra()
	w, _ := x.waiter.(*waiter[T])
	if w == nil {
		w = &waiter[T]{t: t}
		x.waiter = w
	}
	return w
}

const msgSendClosed = "sched: send on closed channel"

// Send sends v, parking t until a receiver takes it or there is room in the
// buffer. It panics if c is closed, or is closed while t waits. Send must be
// called by t while it runs.
func (c *Chan[T]) Send(t *Task, v T) {
	t.enter("Chan.Send")
	c.noteRun(t)
	if c == nil {
		t.waitNil(WaitSend)
	}
	c.mu.Lock()
	if done, closed, partner := c.sendLocked(v); done || closed {
		c.mu.Unlock()
		if closed {
			panic(msgSendClosed)
		}
		if partner != nil {
			t.wake(partner)
		}
		return
	}
	w := waiterOf[T](t)
	w.v, w.ok = v, false
	c.sendq.push(w)
	if t.park(WaitSend, c, &c.mu) != intrNone {
		t.unwind()
	}
	if !w.ok {
		panic(msgSendClosed)
	}
}

// TrySend sends v if it can without waiting, and reports whether it did.
// It panics if c is closed.
func (c *Chan[T]) TrySend(t *Task, v T) bool {
	t.enter("Chan.TrySend")
	c.noteRun(t)
	if c == nil {
		return false
	}
	c.mu.Lock()
	done, closed, partner := c.sendLocked(v)
	c.mu.Unlock()
	if closed {
		panic(msgSendClosed)
	}
	if partner != nil {
		t.wake(partner)
	}
	return done
}

// sendLocked sends v without waiting if it can, with c.mu held. partner is a
// receiver to wake.
func (c *Chan[T]) sendLocked(v T) (done, closed bool, partner *Task) {
	if c.closed {
		return false, true, nil
	}
	if r := dequeueWaiter(&c.recvq); r != nil {
		r.v, r.ok = v, true
		return true, false, r.t
	}
	if c.n < len(c.buf) {
		c.buf[(c.head+c.n)%len(c.buf)] = v
		c.n++
		return true, false, nil
	}
	return false, false, nil
}

// Recv receives a value, parking t until one is sent. ok is false if c is
// closed and drained. Recv must be called by t while it runs.
func (c *Chan[T]) Recv(t *Task) (v T, ok bool) {
	t.enter("Chan.Recv")
	c.noteRun(t)
	if c == nil {
		t.waitNil(WaitRecv)
	}
	c.mu.Lock()
	if v, ok, done, partner := c.recvLocked(); done {
		c.mu.Unlock()
		if partner != nil {
			t.wake(partner)
		}
		return v, ok
	}
	w := waiterOf[T](t)
	w.ok = false
	c.recvq.push(w)
	if t.park(WaitRecv, c, &c.mu) != intrNone {
		t.unwind()
	}
	v, w.v = w.v, v
	return v, w.ok
}

// TryRecv receives a value if it can without waiting. ready reports whether
// Recv would not have waited; then v and ok are what it would have returned.
func (c *Chan[T]) TryRecv(t *Task) (v T, ok, ready bool) {
	t.enter("Chan.TryRecv")
	c.noteRun(t)
	if c == nil {
		return v, false, false
	}
	c.mu.Lock()
	v, ok, ready, partner := c.recvLocked()
	c.mu.Unlock()
	if partner != nil {
		t.wake(partner)
	}
	return v, ok, ready
}

// recvLocked receives without waiting if it can, with c.mu held. partner is
// a sender to wake.
func (c *Chan[T]) recvLocked() (v T, ok, done bool, partner *Task) {
	var zero T
	if s := dequeueWaiter(&c.sendq); s != nil {
		if len(c.buf) == 0 {
			v = s.v
		} else {
			// The buffer is full: take its head, and put the sender's value
			// at its tail, which keeps FIFO order.
			v = c.buf[c.head]
			c.buf[c.head] = s.v
			c.head = (c.head + 1) % len(c.buf)
		}
		s.v, s.ok = zero, true
		return v, true, true, s.t
	}
	if c.n > 0 {
		v = c.buf[c.head]
		c.buf[c.head] = zero
		c.head = (c.head + 1) % len(c.buf)
		c.n--
		return v, true, true, nil
	}
	if c.closed {
		return v, false, true, nil
	}
	return v, false, false, nil
}

// Close closes c: waiting receivers get (zero, false), as will receivers once
// the buffer is drained; waiting senders panic. Close may be called by any
// task of the Run c belongs to. It panics if c is already closed.
func (c *Chan[T]) Close() {
	if c == nil {
		panic("sched: close of nil channel")
	}
	pointIn(c.run)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		panic("sched: close of closed channel")
	}
	c.closed = true
	var woken []*Task
	for r := dequeueWaiter(&c.recvq); r != nil; r = dequeueWaiter(&c.recvq) {
		var zero T
		r.v, r.ok = zero, false
		woken = append(woken, r.t)
	}
	for s := dequeueWaiter(&c.sendq); s != nil; s = dequeueWaiter(&c.sendq) {
		s.ok = false
		woken = append(woken, s.t)
	}
	c.mu.Unlock()
	for _, t := range woken {
		t.s.ready(t, nil)
	}
}

// noteRun records, in a deterministic run, that t's run uses c: its Close is
// a decision point there.
func (c *Chan[T]) noteRun(t *Task) {
	if c != nil && t.s.mode == modeSim {
		c.run = t.s
	}
}

// Len returns the number of values in c's buffer.
func (c *Chan[T]) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Cap returns c's capacity.
func (c *Chan[T]) Cap() int {
	if c == nil {
		return 0
	}
	return len(c.buf)
}

// waitNil parks t for good, in Send or Recv on a nil *Chan: only an
// interrupter ends the wait, and t then unwinds.
func (t *Task) waitNil(kind WaitKind) {
	x := t.extra()
	x.parkMu.Lock()
	t.park(kind, (*nilChan)(t), &x.parkMu)
	t.unwind()
}

// nilChan is a task in Send or Recv on a nil *Chan, as what it waits on.
type nilChan Task

func (*nilChan) appendWait(b []byte, _ func(any) string, _ bool) []byte {
	return append(b, "a nil channel"...)
}

func (*nilChan) dequeueLocked(*Task) taskList { return taskList{} }

func (c *Chan[T]) dequeueLocked(t *Task) taskList {
	w := waiterOf[T](t)
	if t.waitKind == WaitRecv {
		c.recvq.remove(w)
	} else {
		c.sendq.remove(w)
	}
	return taskList{}
}

func (c *Chan[T]) appendWait(b []byte, name func(any) string, _ bool) []byte {
	if c == nil {
		return append(b, "a nil channel"...)
	}
	b = append(b, name(c)...)
	return fmt.Appendf(b, " (cap %d)", len(c.buf))
}
