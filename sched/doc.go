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
// another task, in a goroutine, after the task ended) is a misuse: Yield,
// Go and the primitives detect the common cases and panic with a message
// that starts with "sched:".
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
// another's queue (not its next slot, which its owner runs next anyway); at
// most half the busy workers search at once, and the others park until work
// arrives. These are the constants Go's runtime and
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
// no one to steal from it.
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
// (writers first, as sync.RWMutex), Cond, WaitGroup,
// Group, Task.Sleep and Await park the calling task, never its worker: the
// worker runs other tasks meanwhile. Each knows its waiters, so a report can
// say what every parked task waits on, and who holds the Mutex it wants.
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
// order of task IDs, each wrapped in a *TaskError that names the task. A task
// that panics fails with a *coro.PanicError holding the panic value (which
// errors.Is and errors.As see through) and the task's stack; the other tasks
// go on. A task that calls runtime.Goexit (as testing.T.FailNow does) fails
// with ErrGoexit; its worker goes on.
//
// When no task is runnable, no timer is pending, no Await is running and
// tasks are still parked, nothing can ever wake them: Run returns a
// *DeadlockError naming each parked task, what it waits on (and who holds
// the Mutex it wants), the function it runs and where that is defined, and
// its stack, instead of hanging. The parked tasks are then unwound, so that
// their deferred calls run, and Run leaks no goroutine.
//
// # Waking from outside
//
// The deadlock report rests on the scheduler knowing every possible waker:
// tasks of the same Run, timers, Await work and contexts (Select with
// OnDone, Sleep). A Chan, Mutex or WaitGroup therefore belongs to the tasks of
// one Run: a task parked on it must be woken by a task of that Run. A plain
// goroutine, or a task of another Run, that would close, unlock or count down
// later is not foreseen: Run reports a deadlock first. To wait for the world
// outside, use Await, or Select on a context.
//
// A cycle of tasks each waiting for a Mutex the next one holds is found when
// it closes, even while other tasks still run: the Lock that would close it
// panics with a *LockCycleError naming every task and Mutex in it. Both
// errors match ErrDeadlock.
//
// A task started by a Group's task (with Task.Go or WaitGroup.Go, directly
// or not) belongs to the group: if it has not ended when the group's own
// tasks have, Group.Wait reports it in a *LeakError (ErrLeak), as a
// goroutine leaked by an early return would be.
//
// # Groups, cancellation and Await
//
// Every task has a context: its parent's, or its Group's. A Group waits for
// its tasks and cancels their context when the first of them fails, as
// errgroup does. A task parked in Sleep, or in a Select with an OnDone case,
// wakes when its context ends, with ctx.Err() unchanged; Recv, Send, Lock
// and Wait do not watch a context, so a wait that must be cancellable is a
// Select with OnDone. While a task waits on a context that can end, the run
// does not count as deadlocked.
//
// Await runs a function on a bounded pool of goroutines (AwaitLimit) with
// the task's context, parks the task, and wakes it with the result.
//
// # Deterministic runs
//
// Deterministic(ch) makes a run reproducible: one thread, the next task
// chosen by ch among the runnable ones at every step, a virtual clock that
// moves only when nothing is runnable, no Await, and a checksum of every
// decision (LastRun). MaxSteps stops a run that never ends. Package
// sched/simtest builds on it: it runs a test under many seeds and
// strategies and replays a failing schedule exactly.
//
// # Tracing
//
// WithTracer reports spawn, resume (on which thread), park (why), wake (by
// whom) and done for every task. With no tracer each event costs one branch.
// A park's reason is a WaitReason: a kind and the object waited on, which
// nothing formats until someone prints it.
// Task.Stats counts each task's resumes and, with MeasureRunTime (two clock
// readings per resume), the time it ran.
// A named task runs with the pprof label task=<name>, so that CPU profiles
// split by task; unnamed tasks cost nothing for it.
//
// # Costs
//
// Medians of 5 runs of `go test -run '^$' -bench . -count 5 ./sched/` on
// the project's reference machine (2 cores, Go 1.26), each beside its
// baseline from the same run:
//
//	Yield, two tasks on one thread        232 ns, 0 allocs  iter.Pull next 76 ns (3.05x)
//	unbuffered Chan round trip, 1 thread  281 ns, 0 allocs  two goroutines 274 ns (1.03x)
//	spawn and run 100,000 empty tasks     14.7 ms           go + sync.WaitGroup 41.1 ms (0.36x)
//	  the same on Threads(1)              9.0 ms                                        (0.22x)
//	uncontended Mutex Lock+Unlock         21.9 ns           sync.Mutex 12.3 ns (1.78x)
//	a parked task, stack included         3.7 KB alone, 4.4 KB after the other benchmarks
//	CPU-bound tasks that yield            1.89x faster on Threads(2) than on Threads(1)
//
// A Yield is four coroutine switches (task to worker, worker to the next
// task, and back), where iter.Pull's next is two: the worker in the middle
// sets the floor at 2x, and the runtime's coroswitch is most of what remains.
// A spawned task costs 192 bytes until it parks. A million parked tasks
// fit in 3.3 GB (TestMillionParkedTasks, WEAVE_MILLION=1). The Mutex pays
// two atomic stores over sync.Mutex to know its holder, which is what makes
// lock-cycle and deadlock reports possible.
package sched
