// Package sched runs many tasks cooperatively on a few threads: the second
// layer of weave, between coroutines (package coro) and processes.
//
// # Concepts
//
// A Scheduler has N threads, called workers: goroutines that each resume one
// task at a time. A task is a function running as a coroutine: it runs until
// it yields, parks or returns, and only then does its worker run another.
//
//	s := sched.New(sched.Threads(4))
//	err := s.Run(func(t *sched.Task) error {
//		ch := sched.NewChan[int](0)
//		t.Go(func(t *sched.Task) error { ch.Send(t, 42); return nil })
//		v, _ := ch.Recv(t)
//		...
//	})
//
// Run runs its function as the main task (ID 1, named "main") and returns
// when it and every task started from it, directly or not, have ended. Tasks
// start others with Task.Go, Task.GoNamed, WaitGroup.Go and Group.Go.
//
// Go has no goroutine-local state, so the running task is explicit: every
// operation that may park takes the *Task of its caller, and must be called
// by that task's own function while it runs. Using a *Task anywhere else (in
// another task, in a goroutine, after the task ended) is a misuse, which
// panics with a message that starts with "sched:" where a check is cheap:
//
//   - Every operation that takes a *Task checks that its task is running
//     (one load): a *Task used while its task is parked, runnable or ended
//     is caught at the call, and a Lock taken for an ended task too.
//   - A park or yield checks that the task's coroutine is the one running
//     (one atomic load per switch, no measurable cost): a task switched out
//     from under it by another goroutine is caught at its next wait.
//   - Not caught at the call: a goroutine that parks or yields through a
//     *Task while that task runs. Go gives no cheap way to know the calling
//     goroutine (reading it from runtime.Stack costs a microsecond a call),
//     so the worker takes the task for switched out and may run another
//     while the real one goes on (on one thread, from that goroutine). The
//     race detector reports it as a data race on the task, and the task's
//     next wait, if its coroutine is switched out by then, panics.
//
// # Threads
//
// Two tasks on the same thread never run at the same time. Threads(1) makes
// the scheduler an event loop, as in JavaScript, Lua or asyncio: its tasks
// can share plain data with no lock, as long as they do not expect it to
// stay unchanged across a yield or a park.
//
// With more threads, tasks run in parallel, and a task may resume on another
// thread than the one it parked on. Everything a task did before it parked
// happens before it resumes, wherever that is.
//
// A task that blocks its thread (time.Sleep, a system call, a Go channel, a
// long computation) stalls every task waiting on that thread. Use the task
// versions (Task.Sleep, Chan), Yield in long loops, and Await for blocking
// work. Nothing preempts a task: Go gives user code no way to.
//
// LockThreads locks each worker to an OS thread of its own. Then a task
// that has started stays on its thread, because the runtime ends the program
// if a coroutine created on a locked thread is resumed on another: only
// unstarted tasks migrate, and a started task woken elsewhere is forwarded to
// its own thread.
//
// # The worker loop
//
// Each worker has a local run queue of 256 tasks; when it overflows, half of
// it moves to a global queue. A task woken by a running task through an
// operation that names the waker (Send, Recv, Select, Go) goes to the
// waker's next slot (Close, Unlock and Done take no task, and their wakes go
// to the global queue) and runs as soon as the waker parks or yields; the next
// slot is used at most 3 times in a row, so that two tasks that keep waking
// each other cannot starve the queue. Every 61st scheduling decision looks
// at the global queue first. A worker with nothing to do steals half of
// another's queue, but not its next slot, which its owner runs next: so a
// task woken by one that then computes for long without parking or
// yielding waits that long, even with other threads idle. At most half the
// busy workers search at once, and the others park until work arrives. These are the constants Go's runtime and
// Tokio converged on.
//
// A task that yields goes to the back of its worker's queue; if nothing
// else could run on its worker, Yield returns at once. A task also gets a
// budget of 128 operations on primitives per resume; once it is spent, the
// next operation yields first, even if it could go on, so that a task that
// never has to wait (an uncontended Mutex, a channel that is never empty)
// cannot keep its thread from the others.
//
// With Threads(1) the run queue is a plain ring with no atomics: there is
// no one to steal from it. And the worker's own goroutine steps aside: a
// task that yields or parks runs the loop on its own goroutine and resumes
// the next task from there, which switches back to it when it stops; when
// the loop picks the task itself, it goes on with no switch at all. So a
// task switch is one coroutine switch, not two. The same holds in a
// deterministic run. With several threads, the loop stays on the worker's
// goroutine: a task whose goroutine runs it cannot be resumed by any other,
// and would be held to its worker.
//
// # Cheap tasks
//
// A task is a closure and a small struct until it first runs. It runs on one
// of its worker's pooled coroutines, and when it ends without having parked,
// the same coroutine goes straight on to the next fresh task, with no switch
// at all. Only a task that parks or yields keeps a coroutine (a goroutine
// stack) to itself, until it ends. Memory is paid for parked tasks, not for
// spawned ones.
//
// # Parking
//
// Chan (buffered or not, with Close, TrySend, TryRecv, and Select over
// several channels with TrySelect as its default branch), Mutex, RWMutex
// (writers first, as sync.RWMutex), Cond, WaitGroup, Semaphore (weighted,
// as golang.org/x/sync/semaphore), Group, Handle, Task.Sleep, Timer, Ticker
// and Await park the calling task, never its worker: the worker runs other
// tasks meanwhile. Each knows its waiters, and the locks know who holds
// them, so a report can say what every parked task waits on, and who holds
// what it wants.
//
// # Time
//
// Task.Sleep parks a task for a while; OnTimeout is a Select case that is
// chosen when a wait has lasted long enough; a Timer and a Ticker send the
// time on a channel, once or on a beat, and Stop and Reset as time.Timer
// and time.Ticker do. All run on one timer heap per run: a busy worker looks
// at it at every scheduling decision, and one idle worker waits for its
// earliest deadline, so that a task computing without a yield on one worker
// does not hold up the timers while another worker is free. Time comes from
// a Clock: the real clock by default; WithClock plugs in another. An
// IdleClock (a virtual clock) is moved straight to the next timer when no
// task can run, so sleeping tests take no time.
//
// # Errors, panics and deadlocks
//
// Run returns the errors of all failed tasks, joined with errors.Join in the
// order they failed, each wrapped in a *TaskError that names the task: the
// first failure comes first. A task that panics fails with a
// *coro.PanicError holding the panic value (which errors.Is and errors.As
// see through) and the task's stack; the other tasks go on. A task that
// calls runtime.Goexit (as testing.T.FailNow does) fails with ErrGoexit; its
// worker goes on. A task that its context cancelled did not fail (see
// Cancellation).
//
// When no task is runnable, no timer can wake one, no Await is running and
// tasks are still parked, nothing can ever wake them: Run returns a
// *DeadlockError naming each parked task, what it waits on (and who holds
// the lock it wants), the function it runs and where that is defined, and
// its stack, instead of hanging. The parked tasks are then unwound: each is
// taken out of what it waits on, so that no Chan, Mutex or Cond keeps it
// for a later Run, and its wait panics, so that its deferred calls run, on
// the scheduler, with every primitive working as usual. A Cond.Wait that
// unwinds takes its Mutex back first, as sync.Cond.Wait returns with it: a
// deferred Unlock finds it held. So the report is the deadlock, and what
// the unwinding does comes after it; a deferred call that waits for good is
// unwound in turn, and Run leaks no goroutine. The same program gives the
// same report on Threads(1), Threads(n) and in a deterministic run: it
// depends on what tasks wait on, never on timing.
//
// # Waking from outside
//
// The deadlock report rests on the scheduler knowing every possible waker:
// tasks of the same Run, timers, Await work and contexts in a Select's
// OnDone. A Chan, Mutex or WaitGroup therefore belongs to the tasks of one
// Run at a time: a task parked on it must be woken by a task of that Run. A
// plain goroutine, or a task of another Run, that would close, unlock or
// count down later is not foreseen: Run reports a deadlock first. To wait
// for the world outside, use Await, or Select on a context.
//
// A cycle of tasks each waiting for a lock the next one holds (a Mutex or an
// RWMutex, for reading or for writing) is found when it closes, even while
// other tasks still run: the Lock or RLock that would close it panics with a
// *LockCycleError naming every task and lock in it. A task that asks for the
// write lock of an RWMutex it holds for reading, or for a read lock again
// while a writer waits, closes such a cycle. Both errors match ErrDeadlock.
//
// # Structured concurrency
//
// A Group is errgroup with the structure of a Trio nursery: Wait waits for
// every task started inside the group, by its Go or by those tasks, directly
// or not, however late they end. A Handle (Spawn) is one task whose result
// its Wait returns and which Cancel cancels, as Tokio's JoinHandle and
// abort; it and what it starts make a scope of their own, nested in its
// starter's like a Group's. Group.SetLimit bounds the tasks of a group's
// Go, as errgroup's does.
//
// A task that is merely still running, runnable or sleeping is never a
// leak. A leak is a task that a Group's or Handle's Wait waits for, once the
// tasks that scope started itself have ended, and that is parked with
// nothing left that could ever wake it: that shows when the whole run can
// no longer move, the same on every thread count. Wait then takes such
// tasks out of their waits, unwinds them, and returns a *LeakError (ErrLeak)
// naming each, what it waited on and where; Run does not report them again.
// In a run that keeps going, a leaked task keeps its Wait waiting, as a
// nursery would.
//
// # Cancellation
//
// Every task has a context: the run's (RunContext), its parent's, its
// Group's or its Handle's. A Group cancels it when the first of its tasks
// fails and when Wait returns, a Handle when Cancel is called, the run when
// RunContext's context ends. Then every wait of every task inside ends, at
// once and from the canceller, not from a goroutine of the context package:
//
//   - A wait that returns an error returns the context's error, unchanged:
//     Sleep, Semaphore.Acquire, Handle.Wait, and a Select's OnDone case on
//     the context.
//   - A wait that cannot return an error (Recv, Send, the WaitGroup's and
//     Cond's Wait, a Select without such a case, a Group's Go under its
//     limit) unwinds the task, as runtime.Goexit does: its deferred calls
//     run, and it ends with its context's error, which is no failure of Run.
//     Write cleanup in deferred calls, as for a panic.
//   - A lock's wait (Lock, RLock) is not ended by a context: the holder is in
//     a critical section that ends by itself, or, cancelled too, in its
//     deferred Unlock. So cleanup that takes a lock works once the context
//     ended; a Lock that can never be granted is a lock cycle or a deadlock,
//     and is reported as such.
//   - Once a task unwinds, its context ends none of its waits: its deferred
//     calls may wait for what they need. A deferred call that recovers the
//     unwinding stops it, and the task goes on.
//   - A Group's Wait is not cancelled: its tasks are, and it waits for them
//     to end. Await is not either: its function gets the context, and must
//     return.
//
// A task that returns its context's error once its context ended was
// cancelled too. The end of a context is not a way out of a deadlock: tasks
// that all wait for a context to end are reported as deadlocked, unless one
// waits on it in a Select's OnDone, which keeps the run going.
//
// # Await
//
// Await runs a function on a bounded pool of goroutines (AwaitLimit) with
// the task's context, parks the task, and wakes it with the result. It is
// for work that blocks a thread: files, cgo, CPU-heavy loops, blocking
// system calls. Sockets, pipes and other pollable descriptors are for an FD
// (or package socket) instead, whose waits take no goroutine. A call that
// finds every goroutine of the pool busy waits its turn, and says so: its
// task waits for WaitAwaitQueued, on the pool, until one takes its function.
//
// # Deterministic runs
//
// Deterministic(ch) makes a run reproducible: one thread, the next task
// chosen by ch among the runnable ones at every step, a virtual clock that
// moves only when nothing is runnable, no Await, and a checksum of every
// decision (LastRun). MaxSteps stops a run that never ends, Watchdog one
// whose task never gives control back (a loop that does not yield, a Go
// channel, a blocking system call): Run returns with the task's stack, and
// abandons its goroutine. Package
// sched/simtest builds on it: it runs a test under many seeds and
// strategies and replays a failing schedule exactly.
//
// # Tracing
//
// WithTracer reports spawn, resume (on which thread), park (why), wake (by
// whom) and done for every task, and the new wait of a parked task whose
// Await leaves the pool's queue (rewait). With no tracer each event costs
// one branch.
// A park's reason is a WaitReason: a kind and the object waited on, which
// nothing formats until someone prints it.
// Task.Stats counts each task's resumes and, with MeasureRunTime (two clock
// readings per resume), the time it ran.
// A named task runs with the pprof label task=<name>, so that CPU profiles
// split by task; unnamed tasks cost nothing for it.
//
// # Costs
//
// Medians of 8 interleaved runs of `go test -run '^$' -bench . -benchtime
// 300ms ./sched/` on the project's reference machine (2 cores, Go 1.26,
// shared with other work), each beside its baseline from the same runs; a
// parked task's size after the other benchmarks is from an earlier
// measurement:
//
//	Yield, two tasks on one thread        148 ns, 0 allocs  iter.Pull next 62 ns (2.4x)
//	  per task switch                     74 ns             per coroutine switch 31 ns (2.4x)
//	unbuffered Chan round trip, 1 thread  187 ns, 0 allocs  two goroutines 265 ns (0.71x)
//	Select over two channels, 1 thread    156 ns, 0 allocs  two goroutines 255 ns (0.61x)
//	spawn and run 100,000 empty tasks     14.7 ms           go + sync.WaitGroup 26.1 ms (0.56x)
//	  the same on Threads(1)              11.9 ms                                       (0.45x)
//	uncontended Mutex Lock+Unlock         9.9 ns            sync.Mutex 4.6 ns (2.2x)
//	Await of a function that returns      937 ns, 6 allocs  go + a channel 431 ns (2.2x)
//	a parked task, stack included         3.6 KB alone, 4.4 KB after the other benchmarks
//	CPU-bound tasks that yield            1.87x faster on Threads(2) than on Threads(1)
//
// On one thread, a task switch is one coroutine switch (see Threads), where
// iter.Pull's next is two, there and back: so a Yield between two tasks, two
// task switches, has next as its floor, and half of next is the floor of a
// task switch. The rest is the loop's bookkeeping (the run queue, the task's
// state, the engine's status word) and the returns that the processor
// mispredicts after each switch. A Chan round trip is two task switches,
// two parks and two wakes, where two goroutines go through Go's scheduler
// twice. With several threads a task switch is two coroutine switches,
// through the worker's goroutine.
// A spawned task costs 192 bytes until it parks. A million parked tasks
// fit in 3.3 GB (TestMillionParkedTasks, WEAVE_MILLION=1). The Mutex pays
// two atomic stores over sync.Mutex to know its holder, which is what makes
// lock-cycle and deadlock reports possible.
// An Await starts a goroutine as the baseline does (the pool's goroutines
// exit when no job is left), and adds its task's park and its wake from
// outside, through the global queue.
package sched
