package coro

import (
	"errors"
	"fmt"
	"iter"
	"runtime"

	"github.com/weavert/weave/internal/engine"
)

// Status is the state of a coroutine, as in Lua's coroutine.status, less
// Lua's "normal" (see Coroutine.Status).
type Status int

const (
	// Suspended: created and not yet started, or waiting in yield.
	Suspended Status = iota
	// Running: resumed and not yet yielded or ended. Seen from inside the
	// coroutine, by anyone while it runs, and while it waits for a
	// coroutine it resumed.
	Running
	// Dead: returned, panicked, exited by runtime.Goexit, or closed.
	Dead
)

func (s Status) String() string {
	switch s {
	case Suspended:
		return "suspended"
	case Running:
		return "running"
	case Dead:
		return "dead"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// ErrYieldInClose is what Close returns when the coroutine yielded while
// Close was unwinding it: from a deferred call, or after recovering the
// unwinding. The yield is not honoured (nobody would resume it): it panics
// again to continue the unwinding.
var ErrYieldInClose = errors.New("coro: coroutine yielded while being closed")

// PanicError is a panic raised inside a coroutine, as it reaches the resumer
// (Resume panics with it) or Close (which returns it).
type PanicError struct {
	// Value is the value the coroutine panicked with.
	Value any
	// Stack is the coroutine's own stack at the panic, as debug.Stack
	// formats it.
	Stack []byte
}

// Error returns the panic value followed by the coroutine's stack, so that an
// unrecovered panic shows where in the coroutine it started.
func (e *PanicError) Error() string {
	return fmt.Sprintf("coro: coroutine panicked: %v\n\ncoroutine stack:\n%s", e.Value, e.Stack)
}

// Unwrap returns Value if it is an error, so that errors.Is and errors.As see
// through a coroutine's panic.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Coroutine is a function that runs on its own stack and only while it is
// resumed. Create one with New or Pull.
//
// A *Coroutine is the handle users hold. The coroutine's goroutine refers only
// to the state behind it, never to the handle, so that when the handle becomes
// unreachable while the coroutine is suspended, a cleanup can close it.
//
// A Coroutine must not be copied: the cleanup belongs to the original handle,
// and would close the coroutine under a copy's feet (go vet reports copies).
type Coroutine[In, Out any] struct {
	_ noCopy
	s *state[In, Out]
}

// noCopy makes go vet's copylocks check report copies of a Coroutine.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

// core is the engine as the generic code below calls it. The compiler does not
// inline calls to another package's functions into generic code instantiated
// elsewhere, but it does inline this package's non-generic functions, and the
// engine's calls within them: these one-line wrappers save a call per switch.
type core struct{ engine.Coro }

func (c *core) begin() bool           { return c.Begin() }
func (c *core) switchIn() bool        { return c.Switch() }
func (c *core) yield() bool           { return c.Yield() }
func (c *core) status() engine.Status { return c.Status() }

type state[In, Out any] struct {
	e     core
	f     func(In, func(Out) In) Out
	in    In
	out   Out
	err   error // once dead: what it died with, as Close reports it
	armed bool  // the cleanup that closes an abandoned coroutine is set
	// seq, set by Pull, is run instead of f; its end is not a result, so the
	// final Resume reports (zero, false).
	seq iter.Seq[Out]
}

// New returns a coroutine that will run f. Nothing runs until the first
// Resume, whose argument becomes f's first argument. Each time f calls yield,
// the pending Resume returns yield's argument, and yield returns the argument
// of the next Resume. When f returns, the pending Resume returns f's result
// and the coroutine is dead.
func New[In, Out any](f func(in In, yield func(Out) In) Out) *Coroutine[In, Out] {
	s := &state[In, Out]{f: f}
	s.e.Init(s)
	return &Coroutine[In, Out]{s: s}
}

// Run is the body of the coroutine, called by the engine on its goroutine.
func (s *state[In, Out]) Run() {
	if s.seq != nil {
		s.runSeq()
		return
	}
	var zero In
	in := s.in
	s.in = zero
	// A closure rather than the method value s.yield: the method value of a
	// generic type calls through one more function on every yield.
	s.out = s.f(in, func(out Out) In {
		s.out = out
		if !s.e.yield() {
			s.e.Unwind()
		}
		in := s.in
		s.in = zero
		return in
	})
}

// runSeq is the body of a coroutine made by Pull. Its yield cannot escape, so
// a yield that reports false means Close: the loop returns, and the iterator
// sees its yield return false, exactly as iter.Pull's stop makes it do.
func (s *state[In, Out]) runSeq() {
	for v := range s.seq {
		s.out = v
		if !s.e.yield() {
			return
		}
	}
}

// closeAbandoned closes a coroutine whose handle became unreachable. It runs
// on the runtime's cleanup goroutine, so the closing gets a goroutine of its
// own: the coroutine's defers may block, or call runtime.Goexit, and neither
// may stall or end the goroutine that runs every cleanup in the program.
func closeAbandoned[In, Out any](s *state[In, Out]) {
	if s.e.status() == engine.Suspended {
		go func() {
			// The only panic Close raises is for a running coroutine, which
			// a copied handle could be resuming: then it is not abandoned.
			defer func() { recover() }()
			s.close()
		}()
	}
}

// Resume starts or continues c with in and returns what c yields next, or,
// if c ends during this call, what its function returns; ok is true. If c was
// already dead, nothing runs and Resume returns the zero value and false.
//
// Resume blocks the calling goroutine while c runs. It may be called from any
// goroutine, one at a time: handing a coroutine to another goroutine between
// resumes is fine, and what one Resume's caller did before it happens before
// what the coroutine does after that yield returns, and so on back. Resume
// panics if c is running: resumed from inside itself, from a coroutine it
// resumed (directly or not), or from two goroutines at once. Both coroutines
// stay usable after that panic.
//
// If c panics, Resume panics with a *PanicError holding the value and c's
// stack; c is then dead. If c calls runtime.Goexit, the calling goroutine
// exits too, as with iter.Pull.
func (c *Coroutine[In, Out]) Resume(in In) (out Out, ok bool) {
	s := c.s
	if !s.e.begin() {
		return out, false
	}
	s.in = in
	yielded := s.e.switchIn()
	runtime.KeepAlive(c) // c may be unreachable in the caller: not closed while it runs
	if !yielded {
		return s.ended()
	}
	if !s.armed {
		s.arm(c)
	}
	out, s.out = s.out, out
	return out, true
}

// arm sets the cleanup that closes c if it is dropped while suspended. It
// waits for the first yield: before it there is no goroutine to reclaim, and a
// coroutine that ends in its first Resume never needs one. (Setting it in New
// cost more than the rest of a coroutine's life put together, because the
// runtime keeps cleanups in a sorted list per memory span.)
func (s *state[In, Out]) arm(c *Coroutine[In, Out]) {
	s.armed = true
	runtime.AddCleanup(c, closeAbandoned[In, Out], s)
}

// ended is Resume's return after the coroutine ended during it.
func (s *state[In, Out]) ended() (out Out, ok bool) {
	s.died()
	out, s.out = s.out, out
	if p, isPanic := s.err.(*PanicError); isPanic {
		panic(p)
	}
	return out, s.seq == nil
}

// died records, once, how a coroutine that has just ended ended, and only
// then lets it read Dead: a Close that sees Dead may read s.err.
func (s *state[In, Out]) died() {
	if panicked, v, stack := s.e.Panic(); panicked {
		s.err = &PanicError{Value: v, Stack: stack}
	} else if s.e.YieldedWhileClosing() {
		s.err = ErrYieldInClose
	}
	s.e.End()
}

// Status reports c's state. From inside c it reads Running. So does a
// coroutine that resumed another and waits for it, which Lua reports as
// "normal": telling the two apart needs the identity of the goroutine that
// calls Resume, which Go does not expose, so coro has no such status.
// Resuming either is refused all the same.
func (c *Coroutine[In, Out]) Status() Status {
	switch c.s.e.status() {
	case engine.Created, engine.Suspended:
		return Suspended
	case engine.Running:
		return Running
	}
	return Dead
}

// Close ends c and reports how it ended.
//
// If c is suspended in yield, Close unwinds it: the pending yield panics with
// a private value, c's deferred calls run, and the panic is recovered at the
// top of c. Close returns nil, or a *PanicError if a deferred call panicked,
// or ErrYieldInClose if c recovered the unwinding and yielded again. If c
// never started, its function never runs and Close returns nil.
//
// If c is dead, Close returns what it died with: nil if it returned or was
// closed cleanly, the *PanicError it panicked with, and so on. Close may be
// called any number of times. Close panics if c is running.
func (c *Coroutine[In, Out]) Close() error {
	s := c.s
	if s.e.status() != engine.Dead {
		s.close()
	}
	runtime.KeepAlive(c)
	return s.err
}

func (s *state[In, Out]) close() {
	if s.e.Close() {
		s.died()
	}
}
