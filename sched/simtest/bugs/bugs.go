package bugs

import (
	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/sched/simtest"
)

// Bug is one program of the catalogue.
type Bug struct {
	Name    string // a short name, usable as a subtest name
	Pattern string // the kind of real-world bug it mirrors
	// Failure is the kind of failure simtest reports for the buggy
	// version, as simtest.Failure.Kind names it.
	Failure string
	// Strategy finds the buggy version within Budget seeds, counted from
	// seed 1.
	Strategy simtest.Strategy
	Budget   int
	// MaxSteps is the step limit of its runs; 0 for simtest's default.
	MaxSteps uint64

	Buggy, Fixed func(t *sched.Task) error
}

// Options returns the options of simtest that explore b with its strategy
// and step limit, for the given number of seeds.
func (b Bug) Options(seeds int) []simtest.Option {
	opts := []simtest.Option{b.Strategy, simtest.Seeds(seeds)}
	if b.MaxSteps != 0 {
		opts = append(opts, simtest.MaxSteps(b.MaxSteps))
	}
	return opts
}

// ByName returns the bug of All with that name, or panics.
func ByName(name string) Bug {
	for _, b := range All {
		if b.Name == name {
			return b
		}
	}
	panic("bugs: no bug " + name)
}

// All is the catalogue, in the order of docs/simtest.md.
var All = []Bug{
	{
		Name:    "double-lock",
		Pattern: "double locking: a method that holds a lock calls a helper that takes it again, on a path that only some schedules reach (Docker, Kubernetes)",
		Failure: "lock cycle", Strategy: simtest.Random(), Budget: 40,
		Buggy: doubleLockBuggy, Fixed: doubleLockFixed,
	},
	{
		Name:    "lock-order",
		Pattern: "lock-order inversion: two tasks take the same two locks in opposite orders (AB-BA)",
		Failure: "lock cycle", Strategy: simtest.Random(), Budget: 20,
		Buggy: lockOrderBuggy, Fixed: lockOrderFixed,
	},
	{
		Name:    "select-timeout",
		Pattern: "a select picks its timeout, and the worker's send on an unbuffered result channel waits forever (Kubernetes, etcd)",
		Failure: "deadlock", Strategy: simtest.Random(), Budget: 20,
		Buggy: selectTimeoutBuggy, Fixed: selectTimeoutFixed,
	},
	{
		Name:    "context-never-cancelled",
		Pattern: "a context whose cancel is never called on an early return, so the task watching it waits forever",
		Failure: "deadlock", Strategy: simtest.Random(), Budget: 20,
		Buggy: contextNeverCancelledBuggy, Fixed: contextNeverCancelledFixed,
	},
	{
		Name:    "waitgroup-add-late",
		Pattern: "WaitGroup.Add inside the started goroutine: Wait may run before Add and return early",
		Failure: "error", Strategy: simtest.Random(), Budget: 40,
		Buggy: waitGroupAddLateBuggy, Fixed: waitGroupAddLateFixed,
	},
	{
		Name:    "cond-never-signalled",
		Pattern: "a condition variable waited on without checking its condition: the signal came first and is lost",
		Failure: "deadlock", Strategy: simtest.Random(), Budget: 20,
		Buggy: condNeverSignalledBuggy, Fixed: condNeverSignalledFixed,
	},
	{
		Name:    "cond-missing-broadcast",
		Pattern: "a queue closed without Broadcast: workers waiting on its condition are never woken",
		Failure: "deadlock", Strategy: simtest.Random(), Budget: 20,
		Buggy: condMissingBroadcastBuggy, Fixed: condMissingBroadcastFixed,
	},
	{
		Name:    "mutex-across-send",
		Pattern: "a mutex held across a channel send whose receiver must take the same mutex first (Docker, etcd)",
		Failure: "deadlock", Strategy: simtest.Random(), Budget: 40,
		Buggy: mutexAcrossSendBuggy, Fixed: mutexAcrossSendFixed,
	},
	{
		Name:    "recursive-rlock",
		Pattern: "a recursive read lock while a writer waits: the writer blocks new readers, the reader blocks the writer",
		Failure: "lock cycle", Strategy: simtest.Random(), Budget: 40,
		Buggy: recursiveRLockBuggy, Fixed: recursiveRLockFixed,
	},
	{
		Name:    "early-return-leak",
		Pattern: "a goroutine leaked by an early return: the first match is taken and the other senders block forever",
		Failure: "leak", Strategy: simtest.Random(), Budget: 20,
		Buggy: earlyReturnLeakBuggy, Fixed: earlyReturnLeakFixed,
	},
	{
		Name:    "double-close",
		Pattern: "a channel closed twice: two shutdown paths check a flag, then close",
		Failure: "panic", Strategy: simtest.Random(), Budget: 20,
		Buggy: doubleCloseBuggy, Fixed: doubleCloseFixed,
	},
	{
		Name:    "missing-done",
		Pattern: "WaitGroup.Done missing on an early-return path, so Wait waits forever",
		Failure: "deadlock", Strategy: simtest.Random(), Budget: 20,
		Buggy: missingDoneBuggy, Fixed: missingDoneFixed,
	},
	{
		Name:    "check-then-act",
		Pattern: "check-then-act on a shared map: two tasks both miss the cache and both dial (an atomicity violation)",
		Failure: "error", Strategy: simtest.Random(), Budget: 20,
		Buggy: checkThenActBuggy, Fixed: checkThenActFixed,
	},
	{
		Name:    "lost-notify",
		Pattern: "a non-blocking send on an unbuffered channel drops the notification when the waiter is not yet waiting (gRPC, etcd)",
		Failure: "deadlock", Strategy: simtest.Random(), Budget: 40,
		Buggy: lostNotifyBuggy, Fixed: lostNotifyFixed,
	},
	{
		Name:    "spin-holding-lock",
		Pattern: "a busy-wait loop (runtime.Gosched) holding the lock that the task it waits for needs: a livelock",
		Failure: "step limit", Strategy: simtest.Random(), Budget: 40, MaxSteps: 10_000,
		Buggy: spinHoldingLockBuggy, Fixed: spinHoldingLockFixed,
	},
	{
		Name:    "missing-unlock",
		Pattern: "an early return that skips Unlock: the next Lock waits forever",
		Failure: "deadlock", Strategy: simtest.Random(), Budget: 40,
		Buggy: missingUnlockBuggy, Fixed: missingUnlockFixed,
	},
	{
		Name:    "late-subscribe",
		Pattern: "an order violation: a subscriber registers after the last event was published, and waits for it forever (Docker's event streams)",
		Failure: "deadlock", Strategy: simtest.PCT(1), Budget: 20,
		Buggy: lateSubscribeBuggy, Fixed: lateSubscribeFixed,
	},
	{
		Name:    "compaction-lost-delete",
		Pattern: "an atomicity violation deep in a loop: a read-modify-write of one key among many undoes a concurrent delete (CockroachDB, etcd)",
		Failure: "error", Strategy: simtest.PCT(2), Budget: 300,
		Buggy: compactionBuggy, Fixed: compactionFixed,
	},
	{
		Name:    "lock-order-no-yield",
		Pattern: "lock-order inversion with nothing between the two Locks: only a preemption right before a Lock interleaves the tasks",
		Failure: "lock cycle", Strategy: simtest.Random(), Budget: 40,
		Buggy: lockOrderNoYieldBuggy, Fixed: lockOrderNoYieldFixed,
	},
	{
		Name:    "timeout-mid-work",
		Pattern: "a watchdog's deadline passes while the job it watches still computes, and it releases what the job still uses (Kubernetes, Docker)",
		Failure: "panic", Strategy: simtest.Random(), Budget: 40,
		Buggy: timeoutMidWorkBuggy, Fixed: timeoutMidWorkFixed,
	},
	{
		Name:    "cond-deadlock-deferred",
		Pattern: "one condition variable for two conditions, with Signal: a wake-up goes to the wrong side, and every task waits (deferred Unlocks)",
		Failure: "deadlock", Strategy: simtest.Random(), Budget: 80,
		Buggy: condDeadlockDeferredBuggy, Fixed: condDeadlockDeferredFixed,
	},
	{
		Name:    "lock-cycle-deferred",
		Pattern: "two transfers in opposite directions lock source then destination, with deferred Unlocks: a lock cycle",
		Failure: "lock cycle", Strategy: simtest.Random(), Budget: 40,
		Buggy: lockCycleDeferredBuggy, Fixed: lockCycleDeferredFixed,
	},
}
