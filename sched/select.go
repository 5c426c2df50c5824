package sched

import (
	"context"
	"math/rand/v2"
	"sync"
	"unsafe"
)

// Case is one branch of a Select: a receive (OnRecv), a send (OnSend), or
// the end of a context (OnDone). A Case may be built once and selected on
// again and again, by one task at a time: a Select over Cases built once
// allocates nothing.
type Case interface {
	mutex() *sync.Mutex // nil for a case on a nil channel, which never proceeds
	noteRun(t *Task)    // see Chan.noteRun
	// try completes the case if it can without waiting, with the channel's
	// lock held, and returns a task to wake.
	try() (done bool, partner *Task)
	enqueue(t *Task, gen uint64, idx int)
	dequeue()
	finish() // after the case was chosen, with no lock held
	// reset forgets what an earlier Select left in the case.
	reset()
	// appendCase appends what the case waits for, for a WaitReason.
	appendCase(b []byte, name func(any) string, live bool) []byte
}

// OnRecv is a Select case that receives from c and then calls f with what
// Recv would have returned. f may be nil.
func OnRecv[T any](c *Chan[T], f func(v T, ok bool)) Case {
	return &recvCase[T]{chanCase: chanCase[T]{c: c}, f: f}
}

// OnSend is a Select case that sends v on c and then calls f. f may be nil.
// If c is closed, choosing the case panics, as Send does.
func OnSend[T any](c *Chan[T], v T, f func()) Case {
	return &sendCase[T]{chanCase: chanCase[T]{c: c}, v: v, f: f}
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
func (d *doneCase) noteRun(*Task)      {}

func (d *doneCase) appendCase(b []byte, _ func(any) string, _ bool) []byte {
	return append(b, "context"...)
}

func (d *doneCase) try() (bool, *Task) { return d.ctx.Err() != nil, nil }

func (d *doneCase) enqueue(t *Task, gen uint64, idx int) {
	if d.ctx.Done() == nil {
		return // it can never end
	}
	s := t.s
	d.s = s
	s.external.Add(1)
	d.stop = s.afterFunc(d.ctx, func() {
		d.mu.Lock() // the task is suspended once this is free
		won := t.claimWake(gen)
		if won {
			t.x.Load().sel.idx = idx
		}
		d.mu.Unlock()
		if won {
			s.readyFromOutside(t, s.dropExternal)
		} else {
			// Another case, or the task's cancellation, ended the wait.
			s.endExternal()
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

// chanCase is what the receive and send cases of a Select share: the
// channel, and the waiter the case queues on it while the Select waits.
type chanCase[T any] struct {
	c      *Chan[T]
	w      waiter[T]
	queued bool // w was queued: if chosen, what it moved is in it
}

func (cc *chanCase[T]) noteRun(t *Task) { cc.c.noteRun(t) }

func (cc *chanCase[T]) mutex() *sync.Mutex {
	if cc.c == nil {
		return nil
	}
	return &cc.c.mu
}

func (cc *chanCase[T]) queue(q *waitq[T], t *Task, v T, gen uint64, idx int) {
	cc.w = waiter[T]{t: t, v: v, sel: true, gen: gen, idx: idx}
	cc.queued = true
	q.push(&cc.w)
}

func (cc *chanCase[T]) unqueue(q *waitq[T]) {
	if cc.queued {
		q.remove(&cc.w)
	}
}

type recvCase[T any] struct {
	chanCase[T]
	f  func(T, bool)
	v  T
	ok bool
}

func (r *recvCase[T]) appendCase(b []byte, name func(any) string, live bool) []byte {
	return r.c.appendWait(append(b, "receive from "...), name, live)
}

func (r *recvCase[T]) try() (bool, *Task) {
	if r.c == nil {
		return false, nil
	}
	v, ok, done, partner := r.c.recvLocked()
	r.v, r.ok = v, ok
	return done, partner
}

func (r *recvCase[T]) enqueue(t *Task, gen uint64, idx int) {
	if r.c != nil {
		var zero T
		r.queue(&r.c.recvq, t, zero, gen, idx)
	}
}

func (r *recvCase[T]) dequeue() { r.unqueue(&r.c.recvq) }

func (r *recvCase[T]) reset() {
	var zero T
	r.queued, r.v, r.ok = false, zero, false
}

func (r *recvCase[T]) finish() {
	if r.queued { // chosen while parked: the value is in the waiter
		r.v, r.ok = r.w.v, r.w.ok
		var zero T
		r.w.v = zero
	}
	if r.f != nil {
		r.f(r.v, r.ok)
	}
}

type sendCase[T any] struct {
	chanCase[T]
	v      T
	f      func()
	closed bool
}

func (s *sendCase[T]) appendCase(b []byte, name func(any) string, live bool) []byte {
	return s.c.appendWait(append(b, "send to "...), name, live)
}

func (s *sendCase[T]) try() (bool, *Task) {
	if s.c == nil {
		return false, nil
	}
	done, closed, partner := s.c.sendLocked(s.v)
	s.closed = closed
	return done || closed, partner
}

func (s *sendCase[T]) enqueue(t *Task, gen uint64, idx int) {
	if s.c != nil {
		s.queue(&s.c.sendq, t, s.v, gen, idx)
	}
}

func (s *sendCase[T]) dequeue() { s.unqueue(&s.c.sendq) }

func (s *sendCase[T]) reset() { s.queued, s.closed = false, false }

func (s *sendCase[T]) finish() {
	if s.closed || (s.queued && !s.w.ok) {
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

// selectState is a task's scratch space for its Selects, kept from one to the
// next so that a Select allocates nothing, as the runtime's selectgo uses its
// caller's stack. While a Select waits, the winning case's waker writes idx.
type selectState struct {
	idx   int
	cases []Case        // while parked: what it waits on, for reports
	locks []*sync.Mutex // the cases' locks, in address order
	order []int         // the order in which to try the cases
}

// Lock takes the cases' locks in address order, so that two Selects over the
// same channels cannot deadlock.
func (sel *selectState) Lock() {
	for i, m := range sel.locks {
		if i == 0 || m != sel.locks[i-1] {
			m.Lock()
		}
	}
}

// Unlock releases the cases' locks: a parked Select's worker calls it once
// the task is suspended.
func (sel *selectState) Unlock() {
	for i := len(sel.locks) - 1; i >= 0; i-- {
		if i == 0 || sel.locks[i] != sel.locks[i-1] {
			sel.locks[i].Unlock()
		}
	}
}

// dequeueLocked takes every case's waiter out of its queue.
func (sel *selectState) dequeueLocked(*Task) taskList {
	for _, c := range sel.cases {
		c.dequeue()
	}
	return taskList{}
}

// A parked Select's wait is described by its cases, which the scratch space
// holds only while the Select waits. A tracer may format a reason long after
// that, so it receives a copy of them (waitingCases): only a run with a
// tracer pays that allocation.
func (sel *selectState) appendWait(b []byte, name func(any) string, live bool) []byte {
	return waitingCases(sel.cases).appendWait(b, name, live)
}

type waitingCases []Case

func (waitingCases) dequeueLocked(*Task) taskList { return taskList{} }

func (cs waitingCases) appendWait(b []byte, name func(any) string, live bool) []byte {
	if len(cs) == 0 {
		return append(b, "nothing (no cases)"...)
	}
	for i, c := range cs {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = c.appendCase(b, name, live)
	}
	return b
}

func selectCases(t *Task, cases []Case, block bool) int {
	t.enter("Select")
	x := t.extra()
	sel := x.sel
	if sel == nil {
		sel = &selectState{}
		x.sel = sel
	}
	sel.locks = sel.locks[:0]
	sel.order = sel.order[:0]
	for i, c := range cases {
		c.reset()
		c.noteRun(t)
		if m := c.mutex(); m != nil {
			sel.locks = append(sel.locks, m)
		}
		sel.order = append(sel.order, i)
	}
	// Insertion sort: a Select has a few cases.
	for i := 1; i < len(sel.locks); i++ {
		for j := i; j > 0 && uintptr(unsafe.Pointer(sel.locks[j])) < uintptr(unsafe.Pointer(sel.locks[j-1])); j-- {
			sel.locks[j], sel.locks[j-1] = sel.locks[j-1], sel.locks[j]
		}
	}
	t.s.shuffle(sel.order)
	sel.Lock()

	// Pass 1: a case that can proceed now, looked at in random order.
	for _, i := range sel.order {
		if done, partner := cases[i].try(); done {
			sel.Unlock()
			if partner != nil {
				t.wake(partner)
			}
			cases[i].finish()
			return i
		}
	}
	if !block {
		sel.Unlock()
		return -1
	}

	// Pass 2: wait on every channel at once.
	gen := t.armFor(WaitSelect, sel, sel)
	for i, c := range cases {
		c.enqueue(t, gen, i)
	}
	// A copy in the scratch space, not the caller's slice: holding that
	// would move a variadic Select's arguments to the heap.
	sel.cases = append(sel.cases[:0], cases...)
	sel.idx = -1
	why := t.park(WaitSelect, sel, sel)
	clear(sel.cases)
	sel.cases = sel.cases[:0]
	switch why {
	case intrNone:
		// Pass 3: take the other cases' waiters out of their queues.
		sel.Lock()
		for i, c := range cases {
			if i != sel.idx {
				c.dequeue()
			}
		}
		sel.Unlock()
	case intrCancel:
		// The interrupter took every waiter out. A case on a context
		// that ended is the Select's own answer to it.
		for i, c := range cases {
			if d, ok := c.(*doneCase); ok && d.ctx.Err() != nil {
				sel.idx = i
				break
			}
		}
		if sel.idx < 0 {
			t.unwind()
		}
	default:
		t.unwind()
	}
	cases[sel.idx].finish()
	return sel.idx
}

// shuffle puts order in a random order: from the run's history in modeSim,
// from the runtime's generator otherwise.
func (s *state) shuffle(order []int) {
	if s.mode == modeSim {
		s.sim.shuffle(order)
		return
	}
	for i := len(order) - 1; i > 0; i-- {
		j := rand.IntN(i + 1)
		order[i], order[j] = order[j], order[i]
	}
}
