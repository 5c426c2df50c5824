// Package engine is the one switching mechanism behind weave's coroutines.
//
// A Coro is a function running on its own goroutine stack that runs only
// while someone resumes it. It carries no values: callers exchange data through
// their own fields, written before Switch and read after it (the switch
// synchronizes, so no atomics are needed for them). Package coro puts a typed,
// garbage-collected face on it; package sched drives it directly from its
// worker loop, where the public type's cleanups and generic plumbing would cost
// on the hot path.
//
// The floor is iter.Pull: runtime.newcoro and runtime.coroswitch are reachable
// only through it, and a coroswitch is a handful of atomic operations with no
// kernel and no Go scheduler involved. Everything here is bookkeeping around
// one iter.Pull per coroutine: the status word that detects misuse, the
// recovery that turns a panic into a value with its stack, and the unwinding
// that makes Close run the coroutine's defers.
//
// The protocol, for a resumer: Begin claims the coroutine (false: it is dead);
// write the values it will read; Switch runs it until it yields (true) or
// ends (false). After an end, record what Panic and YieldedWhileClosing say,
// then call End, which makes the coroutine Dead: until then it reads Running,
// so that nobody observes a dead coroutine whose outcome is not yet recorded.
// Close works the same way: when it reports true, record, then End.
package engine

import (
	"iter"
	"runtime/debug"
	"sync/atomic"
)

// Status is the state of a coroutine.
type Status uint32

const (
	Created   Status = iota // not started: no goroutine yet (the zero value)
	Suspended               // waiting in Yield
	Running                 // claimed by Begin or Close, until Switch yields or End
	Dead                    // returned, panicked, exited by runtime.Goexit, or closed
)

// Coro is a coroutine. Call Init before its first use.
//
// Ownership: one goroutine at a time resumes a Coro (Begin, Switch, End) or
// closes it. Handing it to another goroutine between resumes is fine: the
// status word is atomic and each switch synchronizes. Two goroutines that try
// to resume it at once are caught by Begin's compare-and-swap.
type Coro struct {
	status atomic.Uint32

	next  func() (struct{}, bool)
	stop  func()
	yield func(struct{}) bool // iter.Pull's yield; set when the body starts
	body  Body

	// Written by the coroutine's goroutine before it switches back, read by
	// the resumer after the switch returns.
	done      bool   // the body has ended, one way or another
	returned  bool   // the body returned normally
	closing   bool   // Close has begun: a failed yield means unwinding
	unwinding bool   // Close is unwinding the body
	yieldBad  bool   // the body yielded while being closed
	panicked  bool   // the body ended by a panic (other than Close's unwinding)
	panicVal  any    // the value it panicked with
	stack     []byte // its stack at the panic

	// token is this coroutine's own unwinding panic value. Its own, not one
	// shared by all, so that a coroutine which recovers another's unwinding
	// (an escaped yield called inside it) does not take it for its own.
	token closing
}

// closing is the type of the private panic value that unwinds a coroutine
// being closed. It is an error only so that a body which recovers it and logs
// it prints something meaningful. It is not empty so that each coroutine's
// token has an address of its own.
type closing struct{ _ byte }

func (*closing) Error() string { return "coroutine is being closed" }

// Body is what a coroutine runs. It is an interface rather than a func so
// that a caller's state can be its own body, with no closure to allocate.
type Body interface{ Run() }

// Init prepares c to run body on its first resume. Nothing runs yet, and no
// goroutine exists until then: a coroutine that is never resumed costs only
// its memory, and dropping it leaks nothing.
func (c *Coro) Init(body Body) { c.body = body }

// run is the sequence handed to iter.Pull: it is the coroutine's goroutine.
func (c *Coro) run(yield func(struct{}) bool) {
	c.yield = yield
	defer c.finish()
	c.body.Run()
	c.returned = true
}

// finish records how the body ended. It is deferred directly so that its
// recover sees the body's panic.
func (c *Coro) finish() {
	c.done = true
	if c.returned {
		return
	}
	switch r := recover(); r {
	case nil:
		// Unwinding with nothing to recover: runtime.Goexit. iter.Pull
		// forwards it to the resumer, which will never call End: the
		// coroutine ends itself.
		c.status.Store(uint32(Dead))
	case any(&c.token):
		// Close's own unwinding reached the top: a clean close.
	default:
		c.panicked, c.panicVal, c.stack = true, r, debug.Stack()
	}
}

// Status reports c's state. It may be called from any goroutine.
func (c *Coro) Status() Status { return Status(c.status.Load()) }

// Misuse messages, each naming the API misused.
const (
	msgResumeRunning = "coro: Resume of a running coroutine (from inside itself, from a coroutine it resumed, or from two goroutines at once)"
	msgCloseRunning  = "coro: Close of a running coroutine"
	msgYieldOutside  = "coro: yield called while its coroutine is not running (the yield function escaped its coroutine)"
)

// Begin claims a suspended coroutine for one Switch. It returns false, and
// claims nothing, if c is dead. It panics if c is running: resumed from inside
// itself, from a coroutine it resumed, or from two goroutines at once. After
// Begin returns true the caller may write the values the coroutine will read,
// then must call Switch.
func (c *Coro) Begin() bool {
	return c.status.CompareAndSwap(uint32(Suspended), uint32(Running)) || c.beginFailed(msgResumeRunning)
}

//go:noinline
func (c *Coro) beginFailed(msg string) bool {
	switch Status(c.status.Load()) {
	case Dead:
		return false
	case Created:
		// The first resume creates the goroutine. The swap catches two
		// goroutines that both try to start c.
		if c.status.CompareAndSwap(uint32(Created), uint32(Running)) {
			c.next, c.stop = iter.Pull(c.run)
			return true
		}
	}
	panic(msg)
}

// Switch runs c until it yields or ends, after a successful Begin. It returns
// true if c yielded, and false if it ended: then the caller records the
// outcome (Panic, YieldedWhileClosing) and calls End. If c exits by
// runtime.Goexit, Switch exits the calling goroutine too, as iter.Pull does.
func (c *Coro) Switch() (yielded bool) {
	c.next()
	if c.done {
		return false
	}
	c.status.Store(uint32(Suspended))
	return true
}

// End makes c dead, after its outcome has been recorded.
func (c *Coro) End() { c.status.Store(uint32(Dead)) }

// Yield suspends the running coroutine until its next Switch, and reports
// true when it is resumed. It must be called from c's own body while c is
// running. If it reports false, the caller must call Unwind at once: c is being
// closed, or the yield was misplaced.
//
// Yield and Unwind are two calls rather than one so that Yield inlines into
// its caller: a switch is a few tens of nanoseconds, and a call is a few.
func (c *Coro) Yield() bool { return c.yield(struct{}{}) }

// Unwind follows a Yield that reported false; it does not return. If c is
// being closed, it panics with c's private token, which Close recovers at the
// top of the body, so that the body's deferred calls run. Otherwise the yield
// came from outside the running coroutine (its yield function escaped), and
// Unwind panics with a message that says so.
//
//go:noinline
func (c *Coro) Unwind() {
	if !c.closing || c.done {
		panic(msgYieldOutside)
	}
	// Close is unwinding us. A yield during that unwinding (from a defer, or
	// after recovering the unwinding panic) cannot be honoured: nobody will
	// resume us again. Record it and keep unwinding, as Lua does.
	if c.unwinding {
		c.yieldBad = true
	}
	c.unwinding = true
	panic(&c.token)
}

// Close ends c. A suspended coroutine is unwound: its pending Yield reports
// false, the body's Unwind panics, its deferred calls run, and the panic is
// recovered at the top. A coroutine that never started never runs. Close
// reports false, and does nothing, if c is already dead; it panics if c is
// running. If a deferred call exits by runtime.Goexit, Close exits the calling
// goroutine too.
//
// When Close reports true the caller records the outcome (Panic: a deferred
// call panicked; YieldedWhileClosing: the body yielded again) and calls End.
func (c *Coro) Close() (closed bool) {
	if c.status.CompareAndSwap(uint32(Created), uint32(Running)) {
		return true // never started: there is nothing to unwind
	}
	if !c.status.CompareAndSwap(uint32(Suspended), uint32(Running)) && !c.closeFailed() {
		return false
	}
	c.closing = true
	c.stop()
	return true
}

//go:noinline
func (c *Coro) closeFailed() bool {
	if Status(c.status.Load()) == Dead {
		return false
	}
	panic(msgCloseRunning)
}

// Panic reports whether a dead c ended by a panic, with the value and the
// coroutine's stack at that point.
func (c *Coro) Panic() (panicked bool, value any, stack []byte) {
	return c.panicked, c.panicVal, c.stack
}

// YieldedWhileClosing reports whether c's body tried to yield while Close was
// unwinding it.
func (c *Coro) YieldedWhileClosing() bool { return c.yieldBad }
