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
// number of seeds, -weave.trace=FILE writes the failing run's events to
// FILE, and -weave.history=FILE the history of a failing linearizability
// check (see below). The replay makes the same choices, fails at the same
// step with the same checksum.
//
// # Simulated worlds
//
// A networked program runs in a deterministic run as a cluster of simulated
// hosts, with no change to its code. NewWorld, in the body, makes a World;
// World.Host adds a host with an address (10.0.0.1, 10.0.0.2, ...) and
// starts its entry function as the host's first task. Package socket's
// calls in a host's tasks (Listen, Dial, Accept, Read, Write, ListenPacket,
// ReadFrom, WriteTo, Close, the deadlines) go to the world's network instead
// of the kernel, with the same errors: streams are ordered and reliable
// while connected, datagrams may be lost and duplicated (Loss), and every
// delivery takes a latency drawn from the seed (Latency). A host is found
// by its name or its address ("db1:7000", "10.0.0.1:7000").
//
//	func cluster(t *sched.Task) error {
//		w := simtest.NewWorld(t)
//		for _, name := range []string{"db1", "db2", "db3"} {
//			w.Host(t, name, func(t *sched.Task) error { return serve(t, ":7000") })
//		}
//		w.Chaos(t, simtest.Chaos{Crash: time.Second, Partition: 2 * time.Second})
//		done := sched.NewChan[error](1)
//		w.Host(t, "client", func(t *sched.Task) error {
//			done.Send(t, workload(t, "db1:7000", "db2:7000", "db3:7000"))
//			return nil
//		})
//		err, _ := done.Recv(t)
//		return err
//	}
//
// Faults come from the test or from the seed. World.Crash stops every task
// of a host at once: none runs again, and a wake of one is lost; their
// deferred calls run only when the run ends, after everything else, so
// that nothing of a crashed host acts on the live world, as a killed
// process runs none. The peers of its connections are reset, and its disk
// (DiskOf, Disk) keeps only what a Sync made durable before the crash.
// World.Restart runs the host's entry again, as a fresh process. Partition
// and Heal cut and restore links (datagrams are lost, stream data waits, a
// Dial gets no answer), Hold and Release hold deliveries, Spike adds
// latency, Reset resets connections, Skew sets a host's clock offset (what
// Task.Now returns to its tasks; timers measure durations and are not
// skewed). World.Chaos injects them at random, at the rates of a Chaos.
// Buggify lets code take its rare paths more often in simulation, and
// never outside.
//
// Every fault is a line of the failing run's trace, with its step and
// virtual time ("step 812 +1.204s: fault: crash db2"), beside the tasks'
// events, so that a failure shows what the world did to cause it. When the
// body returns, every host stops as if it crashed, and the run ends.
//
// Hosts share nothing but the network, as processes do: a task of one host
// must not use the Mutexes, Chans or variables of another (a crash would
// leave them held or half-written, as it does a process's). The body's own
// tasks may talk to a host's through a Chan to collect results, as the
// example does.
//
// # Checking histories
//
// A test of a concurrent or replicated object (a register, a queue, a
// key-value store) can check what its clients saw instead of asserting it
// by hand. Each client records its operations in a History: Invoke right
// before it issues one, and Return on the Op that Invoke gave, with the
// answer, once it has it. When the clients are done, CheckLinearizable
// judges the history against a Model, the object's sequential
// specification: it looks for an order of the operations, each taking
// effect at one instant between its call and its return, in which the
// model gives each the answer its client got. If there is none, the
// object is not linearizable, and the body's error says so. KV is the model
// of a key-value store (Get, Put, Append, compare-and-swap), checked key by
// key:
//
//	func clients(t *sched.Task) error {
//		db := newStore()
//		h := new(simtest.KVHistory)
//		var wg sched.WaitGroup
//		for range 3 {
//			wg.Go(t, func(t *sched.Task) error {
//				op := h.Invoke(t, simtest.KVPut("x", "1"))
//				db.Put(t, "x", "1")
//				op.Return(t, simtest.KVOutput{})
//				op = h.Invoke(t, simtest.KVGet("x"))
//				op.Return(t, simtest.KVOutput{Value: db.Get(t, "x")})
//				return nil
//			})
//		}
//		wg.Wait(t)
//		return simtest.CheckLinearizable(h, simtest.KV())
//	}
//
// What counts is the order of events, not time: the History numbers the
// calls and returns in the order they happen, exactly in a deterministic
// run. An operation that returned before another was called took effect
// before it; operations whose spans overlap may take effect in either
// order. An operation that never returned (its client timed out, crashed,
// or was cut off) may have taken effect at any instant after its call, or
// never: the check allows both, as long as it took effect once. Fail is
// for an operation the object certainly refused: it is left out. The error
// explains a failure with the events of the part of the history no order
// explains:
//
//	simtest: history not linearizable: partition "x": 4 operations: no order of them fits the model and the order of events
//	the longest order that fits takes 2 of them, and leaves the state "ab":
//		events 1-5: task 2: Append("x", "a")
//		events 2-3: task 3: Append("x", "b")
//	none of the operations that could come next fits:
//		events 4-7: task 3: Get("x") -> "a"
//			the model answers Get("x") -> "ab"
//		...
//
// "events 2-3" are the numbers of the call and the return. With
// -weave.history=FILE (or HistoryFile), the check also writes that part of
// the history to FILE as a web page, porcupine's visualization, to explore
// in a browser.
//
// Deciding linearizability is NP-complete, and a history with many
// concurrent operations on one key can take the checker time exponential
// in their number. The check is bounded by a number of steps of the model
// (CheckSteps, a million by default), past which it returns ErrUndecided
// rather than a verdict. A bound in steps rather than time keeps the
// verdict a function of the history: a seed replays to the same one, on any
// machine. The checker is porcupine (github.com/anishathalye/porcupine).
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
//	recording an operation (Invoke and Return)   0.37 µs, 329 bytes (its slice grows)
//	3 clients, 27 operations on 2 keys: a run    47 µs
//	the same, and CheckLinearizable              117 µs, 434 allocations
//
// A step is a choice and a task switch. PCT looks at every runnable task at
// every step, which a hundred runnable tasks make dearer. At 5 µs a run, the
// 10,000 seeds of a small program take a twentieth of a second. A History
// takes no scheduling step. Checking the history of a run of clients that
// each wait for their answers costs about one and a half times the run. The
// watchdog that Explore gives every run costs two allocations a run (a
// channel, and the option), a ticker from a pool, and a few stores a step:
// the ping-pong with sched.Watchdog is within 1% of the one without.
package simtest
