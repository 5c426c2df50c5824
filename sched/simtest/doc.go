// Package simtest runs concurrent programs deterministically, replays their
// failures, and explores their schedules to find the bugs that show up once
// in a hundred runs.
//
// Go's own tools leave such bugs alone: testing/synctest fakes time but does
// not control the order in which goroutines run and cannot replay one; the
// race detector sees unsynchronized memory, not deadlocks or leaks. weave
// owns its scheduler, so it can choose the order itself.
//
// # Deterministic runs
//
// A deterministic run (sched.Deterministic) has one thread. At every
// scheduling step, a sched.Chooser picks the next task among the runnable
// ones. A step comes where a task parks, yields or ends, and right before
// each operation of a task on a primitive (Lock, Unlock, Send, Recv, Select,
// Close, Add, Done, Wait, Signal, ...) and after each task start: where a
// real scheduler may preempt, so that two tasks that take two free locks in
// opposite orders, with nothing between, can interleave. ParkPointsOnly
// keeps only the first kind, in fewer steps.
//
// Time is virtual. It moves when no task can run, straight to the next
// timer, so that an hour of Sleep costs nothing; and, by the seed's choice,
// at a step while tasks can run, to model time passing while they compute
// (every strategy moves the clock to a timer due in w with probability
// 1 µs / w at each step): a deadline can pass in the middle of the work it
// bounds. Nothing comes in from outside: Await returns
// sched.ErrDeterministic without running its function. A run is then a
// function of its program and its choices. The scheduler keeps a checksum
// of every decision (sched.RunStats): the same seed gives the same
// checksum, every time.
//
// A Strategy makes the choices from a seed:
//
//   - Random() picks uniformly among the runnable tasks at every step.
//   - PCT(d) (probabilistic concurrency testing) gives each task a random
//     priority and always runs the highest, except at d-1 random change
//     points, where the task about to run drops below all others. A bug that
//     needs d events in a given order among n tasks in a run of k steps is
//     found with probability at least 1/(n·k^(d-1)) per run; depth 1 finds
//     bugs of one ordering (an atomicity violation), depth 2 most deadlocks.
//
// # Exploring
//
// Explore runs a body under many seeds, FirstSeed, FirstSeed+1 and so on,
// and stops at the first failure. A run fails when the scheduler's Run
// returns an error:
//
//   - the body, or a task it started, returned an error or panicked;
//   - tasks deadlocked: nothing runnable, no timer, tasks parked
//     (sched.DeadlockError);
//   - a Mutex.Lock closed a wait-for cycle (sched.LockCycleError);
//   - a Group's tasks ended and left tasks they started parked with nothing
//     left that could wake them (sched.ErrLeak, from the Group's Wait);
//     they are unwound and reported once, there;
//   - the run took more than MaxSteps steps: a livelock, or a loop that
//     yields forever (sched.ErrStepLimit);
//   - a task kept its goroutine for the Watchdog's limit of real time, 10 s
//     by default, without giving control back: a loop that neither yields
//     nor parks, a receive from a Go channel, time.Sleep, a system call
//     that blocks (sched.ErrWatchdog). See "Tasks that never give control
//     back" below.
//
// The Failure names the seed, the strategy (a PCT strategy with its run
// length fixed, as the failing run used it), the step at which the first task
// failed, the checksum, and the error, with the sched report of every task
// involved. Explore then runs the seed once more with a tracer: Failure.Trace
// has the run's events, one a line, each with its step and virtual time (the
// last 10,000 of them, after a line that counts the others: TraceLines),
// and Failure.Replayed says whether the second run differed from the first:
// ended another way, passed, or made other choices (it never does for a
// deterministic program).
//
// # In tests
//
// Run does the same for `go test`, and fails the test at the first failure
// with the command that replays it:
//
//	func TestTransfer(t *testing.T) {
//		simtest.Run(t, transfers, simtest.PCT(2), simtest.Seeds(500))
//	}
//
//	--- FAIL: TestTransfer
//	    simtest: lock cycle at step 9 of 11, seed 4 (run 4), strategy pct:2:11, ...
//	    replay: go test ./bank -run '^TestTransfer$' -weave.seed=4 -weave.strategy=pct:2:11
//
// The package registers the flags of that command: -weave.seed=N runs seed
// N alone, -weave.strategy=S overrides the strategy, -weave.seeds=N the
// number of seeds, and -weave.trace=FILE writes the failing run's events to
// FILE. The replay makes the same choices, fails at the same step with the
// same checksum.
//
// # Sharding
//
// -weave.shard=i/n (or the Shard option) spreads an exploration over n
// machines or processes: shard i, from 0, runs the seeds FirstSeed+i,
// FirstSeed+i+n, FirstSeed+i+2n, ... of the exploration's Seeds, so that
// the n shards between them run each of its seeds exactly once, and each
// starts with low seeds. Seeds and -weave.seeds count the seeds of the
// whole exploration, not of a shard. Each shard stops at its own first
// failure, whose replay command names its seed alone:
//
//	go test ./bank -run '^TestTransfer$' -weave.seeds=100000 -weave.shard=3/8
//
// A seed names the same run on every machine, whatever its GOMAXPROCS or
// its number of cores: the run has one thread, and its choices come from
// the seed alone (TestChecksumAcrossProcesses runs seeds again in other
// processes, with other GOMAXPROCS, and compares their checksums). Only PCT's
// learned run length depends on the runs before, within the shard; a
// failure records the length it used.
//
// # Nondeterminism
//
// A seed fixes the run only if the program's own choices are fixed too. A
// program that reads the real clock, iterates over a map, or lets a
// goroutine outside the run decide which task to wake, runs differently
// under the same seed. CheckDeterminism runs each seed twice, records the
// runnable tasks and the choice at every step, and reports the first step
// that differs, with both sides, as a *NondeterminismError; if the two runs
// made the same choices, it compares how they ended too: their checksums,
// and whether each passed or failed, with what kind of failure and what
// error (with the addresses and goroutine numbers that change from run to
// run blanked out). A program whose result, not its scheduling, depends on
// the real clock or on state kept from one run to the next is caught there.
// Without CheckDeterminism, the second run that traces a failure still
// says, in Failure.Replayed, that it passed or failed another way.
//
// # Tasks that never give control back
//
// A step ends only when the running task gives control back to the
// scheduler: a task that spins in `for !done {}`, or blocks outside it, on a
// Go channel, in time.Sleep or in a system call, stops the run, and no
// step limit can end it. A real-time watchdog can: when the run's steps
// stop for its limit (Watchdog, DefaultWatchdog), Explore and Run return
// with a failure of kind "watchdog", a *sched.WatchdogError that names the
// task, the step and the virtual time, with the stack of the task's
// goroutine, and the replay command. The trace ends at that step: the
// second run that makes it stops right before it, rather than stalling
// again, and CheckDeterminism does not run it twice.
//
// Go cannot stop a goroutine from outside. The task's goroutine is
// abandoned, spinning or blocked, with the run's other goroutines behind
// it, until the test binary exits; the failing test reports the replay
// command as usual. If the task ever gives control back, the run ends at
// its next step, and its goroutines return. A test that ends with goleak's
// check, and fails by a watchdog on purpose, must let the task go (close the
// channel it waits on) or ignore the goroutines left (goleak.IgnoreCurrent).
//
// # What the body must do
//
// The body runs once per seed, as the main task of a fresh scheduler. It
// must build its state afresh each time, start its tasks with the sched
// API, and use the task's clock (Task.Sleep, Task.Now) and Sleep-based
// timeouts rather than context.WithTimeout, which reads the real clock.
//
// # Costs
//
// Medians of `go test -run '^$' -bench . -count 5 ./sched/simtest/` on the
// project's reference machine (2 cores, Go 1.26), one thread:
//
//	two tasks ping-ponging over a Chan, Random   6.8 million steps/s (147 ns a step)
//	the same with PCT(3)                         6.5 million steps/s
//	100 tasks yielding 100 times each, Random    6.7 million steps/s
//	the same with PCT(3)                         2.6 million steps/s
//	one run of a small program under Explore     5.4 µs, 52 allocations
//
// A step is a choice and a task switch. PCT looks at every runnable task at
// every step, which a hundred runnable tasks make dearer. At 5 µs a run, the
// 10,000 seeds of a small program take a twentieth of a second. The
// watchdog that Explore gives every run costs two allocations a run (a
// channel, and the option), a ticker from a pool, and a few stores a step:
// the ping-pong with sched.Watchdog is within 1% of the one without.
package simtest
