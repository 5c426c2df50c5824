// Package coro provides coroutines: functions that run on their own stack and
// only while someone resumes them, exchanging values in both directions.
//
// # Concepts
//
// A coroutine is created suspended by New and runs nothing until the first
// Resume. The first Resume(in) calls f(in, yield); from then on the coroutine
// and its resumer take turns. Each yield(out) suspends the coroutine and makes
// the pending Resume return (out, true); the next Resume(in) makes that yield
// return in. When f returns, the pending Resume returns f's result with true,
// and the coroutine is dead: every later Resume returns the zero value and
// false, and runs nothing.
//
//	avg := coro.New(func(x float64, yield func(float64) float64) float64 {
//		sum, n := 0.0, 0
//		for {
//			sum, n = sum+x, n+1
//			x = yield(sum / float64(n))
//		}
//	})
//	avg.Resume(10) // 10
//	avg.Resume(20) // 15
//
// Status reports Suspended, Running or Dead, as Lua's coroutine.status does.
// Lua has a fourth status, "normal", for a coroutine that resumed another
// and is waiting for it. coro has none: telling that apart from Running
// needs the identity of the goroutine calling Resume, which Go does not
// expose, so such a coroutine reads Running, and a status that is never
// returned would only mislead. Misuse detection does not depend on the
// difference: resuming a waiting coroutine panics as resuming a running one
// does.
//
// Pull, All and Feed connect coroutines and iterators: Pull makes a coroutine
// from an iter.Seq (an iter.Pull that cannot leak), All ranges over what a
// coroutine yields, and Feed drives a coroutine from a sequence of inputs and
// pairs each input with its answer.
//
// # Switching
//
// Resume and yield switch between goroutines with runtime.coroswitch, the
// mechanism behind iter.Pull: the resumer's goroutine hands its thread
// directly to the coroutine's goroutine, with no kernel call, no Go scheduler
// run queue and no channel. A coroutine's goroutine exists from its first
// Resume until it ends, and runs only inside Resume, Close or a cleanup.
//
// What a resumer does before Resume happens before what the coroutine does
// after the yield it was suspended in returns (or after it starts); what the
// coroutine does before it yields or returns happens before Resume returns.
// So values passed through Resume and yield need no further synchronization,
// and neither does state the two share.
//
// # Ownership
//
// One goroutine at a time may resume or close a coroutine. Handing it to
// another goroutine between resumes is fine. Calling Resume while it is
// running panics: from inside the coroutine, from a coroutine it resumed
// (directly or not), or from a second goroutine while a first one's Resume is
// in progress. The panic names the misuse and leaves both coroutines usable.
//
// The yield function belongs to its coroutine: calling it from anywhere but
// the coroutine's own body, while it runs, is a misuse. After the coroutine
// has ended it panics with a message saying so; while the coroutine is
// suspended, iter.Pull underneath panics ("yield called again before next")
// and the coroutine stays usable; while the coroutine runs on another
// goroutine it cannot be detected, since Go code cannot know which goroutine
// calls it.
//
// A Coroutine must not be copied (go vet reports copies): the cleanup that
// closes an abandoned coroutine belongs to the original handle.
//
// The goroutine of a coroutine is created by its first Resume. If that first
// Resume runs on a goroutine locked to its OS thread (runtime.LockOSThread),
// every later Resume and Close must run on that goroutine while it stays
// locked: the runtime ends the program with "coro: OS thread locking must
// match locking at coroutine creation" otherwise. coro cannot detect this
// before the runtime does, because Go code cannot ask whether its goroutine is
// locked. Such a coroutine must be closed explicitly, not abandoned: the
// cleanup below would close it from another thread.
//
// # Errors, panics and Goexit
//
// A panic in the coroutine is recovered at its top and re-raised by the
// pending Resume as a *PanicError holding the original value and the
// coroutine's own stack at the panic; errors.Is and errors.As see through it
// to the value when it is an error. The coroutine is then dead. A call to
// runtime.Goexit in the coroutine ends it and then the resumer's goroutine
// too, as with iter.Pull.
//
// # Closing and abandoning
//
// Close ends a coroutine. A suspended coroutine is unwound: its pending yield
// panics with a private value that is recovered at the top, so its deferred
// calls run. Close returns nil, or the *PanicError of a deferred call that
// panicked. A coroutine that yields while being unwound (from a deferred
// call, or after recovering the unwinding) is not suspended again (nobody
// would resume it): the yield keeps unwinding, and Close returns
// ErrYieldInClose, much as Lua's coroutine.close returns an error. Close on a
// dead coroutine returns what it died with; on a running one it panics.
//
// One case loses a panic: a deferred call that yields while its coroutine is
// panicking suspends the coroutine mid-panic, and a later Close replaces that
// panic with the unwinding, which is then recovered as a clean close. Go code
// cannot tell that a panic is in flight, so coro cannot tell this apart; do
// not yield from deferred calls that may run during a panic.
//
// A suspended coroutine whose *Coroutine becomes unreachable is closed for
// its owner, on a goroutine of its own, by a cleanup (runtime.AddCleanup):
// abandoning a coroutine leaks no goroutine. The coroutine's goroutine refers
// only to the state behind the handle, never to the handle, so a body that
// does not capture its own *Coroutine can be collected. Resume keeps the
// handle alive while the coroutine runs, so a coroutine used once, inline, is
// never closed under its own feet.
//
// # Nesting
//
// A coroutine may resume another, to any depth: each level is a goroutine of
// its own whose stack grows on demand, so a chain is bounded by memory, as
// goroutines are, and not by a fixed count as in Lua, whose limit (about 200)
// protects a C stack that Go does not have. The tests run a chain 10,000 deep.
//
// # Costs
//
// Measured on a 2-core machine with Go 1.26 (BenchmarkSwitch*, BenchmarkRun*,
// BenchmarkCreate* and BenchmarkMemory*), medians, each beside its baseline
// from the same run:
//
//	resume+yield round trip           98 ns, 0 allocs  iter.Pull next: 76 ns; goroutine and channels: 281 ns
//	New, Resume to the end            350 ns           iter.Pull, next, stop: 230 ns
//	New, Resume, yield, Close         1.7 µs           iter.Pull, next, stop: 440 ns
//	a suspended coroutine             4 KiB of stack and 400 B of heap; iter.Pull: 4 KiB and 144 B
//
// The round trip's premium over iter.Pull is the status word's
// compare-and-swap and release store, which catch misuse. Closing a suspended
// coroutine costs more than stopping an iter.Pull because it unwinds the body
// by panicking (an iterator returns when its yield reports false; a coroutine's
// yield has nothing to report) and because the cleanup that closes abandoned
// coroutines is set at the first yield.
package coro
