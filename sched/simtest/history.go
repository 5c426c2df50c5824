package simtest

import (
	"fmt"
	"sync"
	"time"

	"github.com/weavert/weave/sched"
)

// A History records the operations that the clients of a concurrent object
// (a register, a queue, a replicated key-value store) issue, and what each
// one returned, so that CheckLinearizable can judge the answers against a
// sequential model. Inputs are of type I and outputs of type O.
//
// A client calls Invoke right before it issues an operation, before any
// request leaves it, and Return on the Op that Invoke gave once it has the
// result. History numbers these events in the order they happen: an
// operation that returned before another was invoked comes before it, and
// the check must respect that; two operations whose spans overlap were
// concurrent, and may take effect in either order. In a deterministic run
// the numbers are exact. With several threads they are too, as long as each
// call of Invoke happens before the request and each Return after the
// response: a mutex orders the events.
//
// An operation that never returned (its client timed out, lost its
// connection, crashed, or the run ended first) has an unknown outcome: it may
// have taken effect at any moment after its call, or never. The check treats
// it so, as if it returned after every other event, with whatever output the
// model gives. A client that gets a timeout or any other error that leaves
// the outcome open must therefore not call Return; it may go on with other
// operations. Fail is for the other errors: the object refused the
// operation, and it certainly had no effect.
//
// The zero History is empty and ready to use. A History must not be copied
// after first use. Its methods may be called from any task or goroutine. A
// History belongs to one run: Explore's body makes a new one each time.
// Recording takes no scheduling step, so a History does not change which
// interleavings a seed gives.
type History[I, O any] struct {
	mu   sync.Mutex
	last int64 // the number of the last event
	ops  []record[I, O]
}

// record is one operation of a History.
type record[I, O any] struct {
	in     I
	out    O
	task   uint64 // the task that invoked it
	name   string // its name
	call   int64  // the numbers of its events; ret is 0 while it has not returned
	ret    int64
	failed bool
	callAt time.Duration // the clocks of the tasks at the events, since
	retAt  time.Duration // sched.SimEpoch
}

// An Op is an operation recorded by History.Invoke, to be completed with
// Return or Fail, or left pending. The zero Op is not an operation.
type Op[I, O any] struct {
	h *History[I, O]
	i int
}

// Invoke records that the task t issues an operation with input in, and
// returns it, to be completed by Return. It does not block. t must be the
// running task; its ID and name say which client invoked the operation, and
// its clock (virtual in a deterministic run) when.
func (h *History[I, O]) Invoke(t *sched.Task, in I) Op[I, O] {
	now := t.Now().Sub(sched.SimEpoch())
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last++
	h.ops = append(h.ops, record[I, O]{in: in, task: t.ID(), name: t.Name(), call: h.last, callAt: now})
	return Op[I, O]{h, len(h.ops) - 1}
}

// Return records that op returned out. t is the running task, not
// necessarily the one that invoked op; its clock tells when. Return panics if
// op has returned or failed already, or if op is the zero Op.
func (op Op[I, O]) Return(t *sched.Task, out O) {
	now := t.Now().Sub(sched.SimEpoch())
	r := op.lock("Return")
	defer op.h.mu.Unlock()
	op.h.last++
	r.out, r.ret, r.retAt = out, op.h.last, now
}

// Fail records that op certainly had no effect: the object refused it (a
// request to a replica that is not the leader, a validation error) before
// doing anything. The check leaves it out. An error that leaves the outcome
// open, such as a timeout, is not a Fail: leave the operation pending. Fail
// panics if op has returned or failed already, or if op is the zero Op.
func (op Op[I, O]) Fail() {
	r := op.lock("Fail")
	defer op.h.mu.Unlock()
	r.failed = true
}

// lock locks op's History and returns op's record, pending.
func (op Op[I, O]) lock(method string) *record[I, O] {
	if op.h == nil {
		panic(fmt.Sprintf("simtest: Op.%s of the zero Op", method))
	}
	op.h.mu.Lock()
	r := &op.h.ops[op.i]
	switch {
	case r.ret != 0:
		op.h.mu.Unlock()
		panic(fmt.Sprintf("simtest: Op.%s of an operation that returned already", method))
	case r.failed:
		op.h.mu.Unlock()
		panic(fmt.Sprintf("simtest: Op.%s of an operation that failed already", method))
	}
	return r
}

// snapshot returns a copy of the operations recorded so far, and the number
// of the last event.
func (h *History[I, O]) snapshot() ([]record[I, O], int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]record[I, O](nil), h.ops...), h.last
}

// Len returns the number of operations recorded so far, pending, returned
// and failed.
func (h *History[I, O]) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}
