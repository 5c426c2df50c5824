package sched

import (
	"cmp"
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"unsafe"
)

// Case is one branch of a Select: a receive (OnRecv), a send (OnSend), or
// the end of a context (OnDone).
type Case interface {
	mutex() *sync.Mutex
	// try completes the case if it can without waiting, with the channel's
	// lock held, and returns a task to wake.
	try() (done bool, partner *Task)
	enqueue(t *Task, sel *selectState, idx int)
	dequeue()
	finish() // after the case was chosen, with no lock held
	// reset forgets what an earlier Select left in the case, so that a
	// Case may be built once and selected on in a loop.
	reset()
	// appendCase appends what the case waits for, for a WaitReason.
	appendCase(b []byte, name func(any) string, live bool) []byte
}

// OnRecv is a Select case that receives from c and then calls f with what
// Recv would have returned. f may be nil.
func OnRecv[T any](c *Chan[T], f func(v T, ok bool)) Case {
	return &recvCase[T]{c: c, f: f}
}

// OnSend is a Select case that sends v on c and then calls f. f may be nil.
// If c is closed, choosing the case panics, as Send does.
func OnSend[T any](c *Chan[T], v T, f func()) Case {
	return &sendCase[T]{c: c, v: v, f: f}
}

// OnDone is a Select case that is chosen when ctx is done, and then calls f
// with ctx.Err(), unchanged. f may be nil. With it, any wait on channels can
// be cancelled:
//
//	sched.Select(t, sched.OnRecv(ch, got), sched.OnDone(t.Context(), stop))
//
// While a Select waits on a context that can end, the run does not count as
// deadlocked: something outside the scheduler may cancel the context.
func OnDone(ctx context.Context, f func(err error)) Case {
	return &doneCase{ctx: ctx, f: f}
}

type doneCase struct {
	ctx  context.Context
	f    func(error)
	mu   sync.Mutex // held, as channel locks are, until the task is suspended
	stop func() bool
	s    *state
}

func (d *doneCase) mutex() *sync.Mutex { return &d.mu }
func (d *doneCase) appendCase(b []byte, _ func(any) string, _ bool) []byte {
	return append(b, "context"...)
}

func (d *doneCase) try() (bool, *Task) { return d.ctx.Err() != nil, nil }

func (d *doneCase) enqueue(t *Task, sel *selectState, idx int) {
	if d.ctx.Done() == nil {
		return // it can never end
	}
	s := t.s
	d.s = s
	s.external.Add(1)
	d.stop = s.afterFunc(d.ctx, func() {
		d.mu.Lock() // the task is suspended once this is free
		won := sel.fired.CompareAndSwap(false, true)
		if won {
			sel.idx = idx
		}
		d.mu.Unlock()
		if won {
			s.readyFromOutside(t, &s.external)
		} else {
			s.external.Add(-1)
		}
	})
}

func (d *doneCase) reset() { d.stop = nil }

func (d *doneCase) dequeue() {
	if d.stop != nil && d.stop() {
		d.s.external.Add(-1) // the callback will not run
	}
}

func (d *doneCase) finish() {
	if d.f != nil {
		d.f(d.ctx.Err())
	}
}

type recvCase[T any] struct {
	c  *Chan[T]
	f  func(T, bool)
	w  *waiter[T]
	v  T
	ok bool
}

func (r *recvCase[T]) mutex() *sync.Mutex { return &r.c.mu }
func (r *recvCase[T]) appendCase(b []byte, name func(any) string, live bool) []byte {
	return r.c.appendWait(append(b, "receive from "...), name, live)
}

func (r *recvCase[T]) try() (bool, *Task) {
	v, ok, done, partner := r.c.recvLocked()
	r.v, r.ok = v, ok
	return done, partner
}

func (r *recvCase[T]) enqueue(t *Task, sel *selectState, idx int) {
	r.w = &waiter[T]{t: t, sel: sel, idx: idx}
	r.c.recvq.push(r.w)
}

func (r *recvCase[T]) dequeue() { r.c.recvq.remove(r.w) }

func (r *recvCase[T]) reset() {
	var zero T
	r.w, r.v, r.ok = nil, zero, false
}

func (r *recvCase[T]) finish() {
	if r.w != nil { // chosen while parked: the value is in the waiter
		r.v, r.ok = r.w.v, r.w.ok
	}
	if r.f != nil {
		r.f(r.v, r.ok)
	}
}

type sendCase[T any] struct {
	c      *Chan[T]
	v      T
	f      func()
	w      *waiter[T]
	closed bool
}

func (s *sendCase[T]) mutex() *sync.Mutex { return &s.c.mu }
func (s *sendCase[T]) appendCase(b []byte, name func(any) string, live bool) []byte {
	return s.c.appendWait(append(b, "send to "...), name, live)
}

func (s *sendCase[T]) try() (bool, *Task) {
	done, closed, partner := s.c.sendLocked(s.v)
	s.closed = closed
	return done || closed, partner
}

func (s *sendCase[T]) enqueue(t *Task, sel *selectState, idx int) {
	s.w = &waiter[T]{t: t, v: s.v, sel: sel, idx: idx}
	s.c.sendq.push(s.w)
}

func (s *sendCase[T]) dequeue() { s.c.sendq.remove(s.w) }

func (s *sendCase[T]) reset() { s.w, s.closed = nil, false }

func (s *sendCase[T]) finish() {
	if s.closed || (s.w != nil && !s.w.ok) {
		panic(msgSendClosed)
	}
	if s.f != nil {
		s.f()
	}
}

// Select waits until one of the cases can proceed, completes it, calls its
// function, and returns its index. If several can proceed, it chooses one at
// random, as Go's select does. Select with no cases parks t for good (a
// deadlock, if nothing else runs). It must be called by t while it runs.
func Select(t *Task, cases ...Case) int {
	return selectCases(t, cases, true)
}

// TrySelect is Select with a default branch: if no case can proceed at
// once, it returns -1 and nothing happens.
func TrySelect(t *Task, cases ...Case) int {
	return selectCases(t, cases, false)
}

// selectLocks is the set of channel locks of a Select, taken in address
// order, so that two Selects over the same channels cannot deadlock.
type selectLocks []*sync.Mutex

func (l selectLocks) Lock() {
	for i, m := range l {
		if i == 0 || m != l[i-1] {
			m.Lock()
		}
	}
}

// Unlock releases the locks: a parked Select's worker calls it once the task
// is suspended.
func (l selectLocks) Unlock() {
	for i := len(l) - 1; i >= 0; i-- {
		if i == 0 || l[i] != l[i-1] {
			l[i].Unlock()
		}
	}
}

func selectCases(t *Task, cases []Case, block bool) int {
	t.running("Select")
	t.spend()
	locks := make(selectLocks, len(cases))
	for i, c := range cases {
		c.reset()
		locks[i] = c.mutex()
	}
	slices.SortFunc(locks, func(a, b *sync.Mutex) int {
		return cmp.Compare(uintptr(unsafe.Pointer(a)), uintptr(unsafe.Pointer(b)))
	})
	locks.Lock()

	// Pass 1: a case that can proceed now, looked at in random order.
	var order []int
	if m := t.s.sim; m != nil {
		order = m.perm(len(cases))
	} else {
		order = rand.Perm(len(cases))
	}
	for _, i := range order {
		if done, partner := cases[i].try(); done {
			locks.Unlock()
			if partner != nil {
				t.wake(partner)
			}
			cases[i].finish()
			return i
		}
	}
	if !block {
		locks.Unlock()
		return -1
	}

	// Pass 2: wait on every channel at once.
	sel := &selectState{cases: cases}
	for i, c := range cases {
		c.enqueue(t, sel, i)
	}
	t.park(WaitSelect, sel, locks)

	// Pass 3: take the other cases' waiters out of their queues.
	locks.Lock()
	for i, c := range cases {
		if i != sel.idx {
			c.dequeue()
		}
	}
	locks.Unlock()
	cases[sel.idx].finish()
	return sel.idx
}

func (sel *selectState) appendWait(b []byte, name func(any) string, live bool) []byte {
	if len(sel.cases) == 0 {
		return append(b, "nothing (no cases)"...)
	}
	for i, c := range sel.cases {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = c.appendCase(b, name, live)
	}
	return b
}
