package bugs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weavert/weave/sched"
)

// Each program is one function with a fixed flag: the buggy and the fixed
// versions differ only where it is tested.

// double-lock: get holds the cache's lock and, on a miss, calls load,
// which locks it again. The miss happens only if the reader runs before
// the task that warms the cache.

func doubleLockBuggy(t *sched.Task) error { return doubleLock(t, false) }
func doubleLockFixed(t *sched.Task) error { return doubleLock(t, true) }

type cache struct {
	mu sched.Mutex
	m  map[string]int
}

func (c *cache) load(t *sched.Task, k string) int {
	c.mu.Lock(t)
	defer c.mu.Unlock()
	return c.loadLocked(k)
}

func (c *cache) loadLocked(k string) int {
	c.m[k] = len(k)
	return c.m[k]
}

func doubleLock(t *sched.Task, fixed bool) error {
	c := &cache{m: map[string]int{}}
	get := func(t *sched.Task, k string) int {
		c.mu.Lock(t)
		defer c.mu.Unlock()
		if v, ok := c.m[k]; ok {
			return v
		}
		if fixed {
			return c.loadLocked(k)
		}
		return c.load(t, k) // locks c.mu again
	}
	var wg sched.WaitGroup
	wg.Go(t, func(t *sched.Task) error { c.load(t, "config"); return nil })
	wg.Go(t, func(t *sched.Task) error { get(t, "config"); return nil })
	wg.Wait(t)
	return nil
}

// lock-order: flush locks the log, then the index; compact locks the
// index, then the log. Each does some work (a yield) between its locks.

func lockOrderBuggy(t *sched.Task) error { return lockOrder(t, false) }
func lockOrderFixed(t *sched.Task) error { return lockOrder(t, true) }

func lockOrder(t *sched.Task, fixed bool) error {
	var log, index sched.Mutex
	both := func(first, second *sched.Mutex) func(*sched.Task) error {
		return func(t *sched.Task) error {
			first.Lock(t)
			defer first.Unlock()
			t.Yield() // work under the first lock
			second.Lock(t)
			defer second.Unlock()
			return nil
		}
	}
	var wg sched.WaitGroup
	wg.Go(t, both(&log, &index)) // flush
	if fixed {
		wg.Go(t, both(&log, &index)) // compact, in the same order
	} else {
		wg.Go(t, both(&index, &log)) // compact
	}
	wg.Wait(t)
	return nil
}

// select-timeout: a query and a timeout race; when the timeout wins, the
// query's send on the unbuffered result channel has no receiver, ever.

func selectTimeoutBuggy(t *sched.Task) error { return selectTimeout(t, false) }
func selectTimeoutFixed(t *sched.Task) error { return selectTimeout(t, true) }

func selectTimeout(t *sched.Task, fixed bool) error {
	capacity := 0
	if fixed {
		capacity = 1 // the sender never waits
	}
	result := sched.NewChan[int](capacity)
	timeout := sched.NewChan[struct{}](0)
	t.GoNamed("query", func(t *sched.Task) error {
		if err := t.Sleep(10 * time.Millisecond); err != nil {
			return err
		}
		result.Send(t, 42)
		return nil
	})
	t.GoNamed("timer", func(t *sched.Task) error {
		if err := t.Sleep(10 * time.Millisecond); err != nil {
			return err
		}
		timeout.Close()
		return nil
	})
	sched.Select(t, sched.OnRecv(result, nil), sched.OnRecv(timeout, nil))
	return nil
}

// context-never-cancelled: a watcher runs until its context is cancelled;
// the early return for a warm cache forgets to stop it.

func contextNeverCancelledBuggy(t *sched.Task) error { return contextNeverCancelled(t, false) }
func contextNeverCancelledFixed(t *sched.Task) error { return contextNeverCancelled(t, true) }

// watcher is a task that applies updates until stop is called.
type watcher struct {
	updates *sched.Chan[int]
	stop    func()
}

func startWatcher(t *sched.Task) *watcher {
	ctx, cancel := context.WithCancel(t.Context())
	w := &watcher{updates: sched.NewChan[int](0), stop: cancel}
	t.GoNamed("watcher", func(t *sched.Task) error {
		for done := false; !done; {
			sched.Select(t,
				sched.OnRecv(w.updates, func(int, bool) {}),
				sched.OnDone(ctx, func(error) { done = true }))
		}
		return nil
	})
	return w
}

func contextNeverCancelled(t *sched.Task, fixed bool) error {
	warm := map[string]bool{}
	t.GoNamed("warmer", func(t *sched.Task) error {
		warm["config"] = true
		return nil
	})
	t.Yield()
	w := startWatcher(t)
	if fixed {
		defer w.stop()
	}
	if warm["config"] {
		return nil // the watcher is never stopped
	}
	w.updates.Send(t, 1)
	w.stop()
	return nil
}

// waitgroup-add-late: each worker adds itself to the WaitGroup when it
// starts, so Wait may find the counter at zero before every worker did.

func waitGroupAddLateBuggy(t *sched.Task) error { return waitGroupAddLate(t, false) }
func waitGroupAddLateFixed(t *sched.Task) error { return waitGroupAddLate(t, true) }

func waitGroupAddLate(t *sched.Task, fixed bool) error {
	var wg sched.WaitGroup
	total := 0
	for i := 1; i <= 3; i++ {
		work := func(t *sched.Task) {
			t.Yield()
			total += i
		}
		if fixed {
			wg.Go(t, func(t *sched.Task) error { work(t); return nil })
			continue
		}
		t.Go(func(t *sched.Task) error {
			wg.Add(1)
			defer wg.Done()
			work(t)
			return nil
		})
	}
	t.Yield() // "let the workers start"
	wg.Wait(t)
	if total != 6 {
		return fmt.Errorf("total %d after Wait, want 6: Wait returned before every worker was counted", total)
	}
	return nil
}

// cond-never-signalled: the consumer waits on the condition without
// checking it first; if the producer already signalled, nobody will again.

func condNeverSignalledBuggy(t *sched.Task) error { return condNeverSignalled(t, false) }
func condNeverSignalledFixed(t *sched.Task) error { return condNeverSignalled(t, true) }

func condNeverSignalled(t *sched.Task, fixed bool) error {
	var mu sched.Mutex
	c := sched.NewCond(&mu)
	ready := false
	var wg sched.WaitGroup
	wg.Go(t, func(t *sched.Task) error { // producer
		mu.Lock(t)
		ready = true
		c.Signal()
		mu.Unlock()
		return nil
	})
	wg.Go(t, func(t *sched.Task) error { // consumer
		mu.Lock(t)
		defer mu.Unlock()
		if fixed {
			for !ready {
				c.Wait(t)
			}
			return nil
		}
		c.Wait(t) // assumes the producer has not run yet
		return nil
	})
	wg.Wait(t)
	return nil
}

// cond-missing-broadcast: closing the queue sets its flag but wakes
// nobody; a worker already waiting for an item waits forever.

func condMissingBroadcastBuggy(t *sched.Task) error { return condMissingBroadcast(t, false) }
func condMissingBroadcastFixed(t *sched.Task) error { return condMissingBroadcast(t, true) }

func condMissingBroadcast(t *sched.Task, fixed bool) error {
	var mu sched.Mutex
	c := sched.NewCond(&mu)
	var queue []int
	closed := false
	done := 0
	var wg sched.WaitGroup
	for range 2 {
		wg.Go(t, func(t *sched.Task) error {
			for {
				mu.Lock(t)
				for len(queue) == 0 && !closed {
					c.Wait(t)
				}
				if len(queue) == 0 {
					mu.Unlock()
					return nil
				}
				queue = queue[1:]
				mu.Unlock()
				t.Yield() // process the item
				done++
			}
		})
	}
	for i := range 3 {
		mu.Lock(t)
		queue = append(queue, i)
		c.Signal()
		mu.Unlock()
		t.Yield()
	}
	mu.Lock(t)
	closed = true
	if fixed {
		c.Broadcast()
	}
	mu.Unlock()
	wg.Wait(t)
	if done != 3 {
		return fmt.Errorf("%d items done, want 3", done)
	}
	return nil
}

// mutex-across-send: the publisher holds the state's lock while it sends
// an event; the subscriber checks the state, under that lock, before each
// receive.

func mutexAcrossSendBuggy(t *sched.Task) error { return mutexAcrossSend(t, false) }
func mutexAcrossSendFixed(t *sched.Task) error { return mutexAcrossSend(t, true) }

func mutexAcrossSend(t *sched.Task, fixed bool) error {
	var mu sched.Mutex
	stopped := false
	events := sched.NewChan[string](0)
	var wg sched.WaitGroup
	wg.Go(t, func(t *sched.Task) error { // subscriber
		for {
			mu.Lock(t)
			s := stopped
			mu.Unlock()
			if s {
				return nil
			}
			if _, ok := events.Recv(t); !ok {
				return nil
			}
		}
	})
	wg.Go(t, func(t *sched.Task) error { // publisher
		mu.Lock(t)
		if fixed {
			mu.Unlock() // publish outside the lock
			events.Send(t, "changed")
			mu.Lock(t)
		} else {
			events.Send(t, "changed") // waits for the subscriber, which waits for mu
		}
		stopped = true
		mu.Unlock()
		events.Close()
		return nil
	})
	wg.Wait(t)
	return nil
}

// recursive-rlock: a reader takes the read lock and calls a helper that
// takes it again; a writer that arrives in between blocks the second
// RLock, and waits for the first.

func recursiveRLockBuggy(t *sched.Task) error { return recursiveRLock(t, false) }
func recursiveRLockFixed(t *sched.Task) error { return recursiveRLock(t, true) }

func recursiveRLock(t *sched.Task, fixed bool) error {
	var mu sched.RWMutex
	limits := map[string]int{"rate": 10}
	lookup := func(t *sched.Task, k string) int {
		if !fixed {
			mu.RLock(t)
			defer mu.RUnlock(t)
		}
		return limits[k]
	}
	var wg sched.WaitGroup
	wg.Go(t, func(t *sched.Task) error { // reader
		mu.RLock(t)
		defer mu.RUnlock(t)
		t.Yield() // work under the read lock
		_ = lookup(t, "rate")
		return nil
	})
	wg.Go(t, func(t *sched.Task) error { // writer
		mu.Lock(t)
		limits["rate"] = 20
		mu.Unlock()
		return nil
	})
	wg.Wait(t)
	return nil
}

// early-return-leak: a search asks three replicas and returns at the
// first page that matches; replicas that answer later block forever on the
// unbuffered channel. Which replica answers first depends on the schedule.

func earlyReturnLeakBuggy(t *sched.Task) error { return earlyReturnLeak(t, false) }
func earlyReturnLeakFixed(t *sched.Task) error { return earlyReturnLeak(t, true) }

func earlyReturnLeak(t *sched.Task, fixed bool) error {
	g := sched.NewGroup(t)
	g.Go(t, func(t *sched.Task) error { // search
		capacity := 0
		if fixed {
			capacity = 3 // every replica can answer and end
		}
		pages := sched.NewChan[bool](capacity)
		var connected sched.WaitGroup
		for i := range 3 {
			connected.Add(1)
			t.Go(func(t *sched.Task) error { // replica i
				connected.Done()
				pages.Send(t, i == 1)
				return nil
			})
		}
		connected.Wait(t)
		for range 3 {
			if match, _ := pages.Recv(t); match {
				return nil
			}
		}
		return errors.New("no match")
	})
	return g.Wait(t)
}

// double-close: shutdown may be called on an error and on a signal; both
// check the flag, flush, then close.

func doubleCloseBuggy(t *sched.Task) error { return doubleClose(t, false) }
func doubleCloseFixed(t *sched.Task) error { return doubleClose(t, true) }

func doubleClose(t *sched.Task, fixed bool) error {
	done := sched.NewChan[struct{}](0)
	closed := false
	shutdown := func(t *sched.Task) error {
		if closed {
			return nil
		}
		if fixed {
			closed = true // claim the close before anything can run
		}
		t.Yield() // flush the logs
		done.Close()
		closed = true
		return nil
	}
	var wg sched.WaitGroup
	wg.Go(t, shutdown) // on an error
	wg.Go(t, shutdown) // on a signal
	wg.Wait(t)
	return nil
}

// missing-done: a worker that finds nothing to do returns early, before
// its Done.

func missingDoneBuggy(t *sched.Task) error { return missingDone(t, false) }
func missingDoneFixed(t *sched.Task) error { return missingDone(t, true) }

func missingDone(t *sched.Task, fixed bool) error {
	var wg sched.WaitGroup
	var jobs []int
	t.GoNamed("loader", func(t *sched.Task) error {
		t.Yield() // read the jobs
		jobs = append(jobs, 1, 2)
		return nil
	})
	for range 2 {
		wg.Add(1)
		t.Go(func(t *sched.Task) error {
			if fixed {
				defer wg.Done()
			}
			if len(jobs) == 0 {
				return nil // nothing to do yet
			}
			jobs = jobs[1:]
			if !fixed {
				wg.Done()
			}
			return nil
		})
	}
	wg.Wait(t)
	return nil
}

// check-then-act: two requests for the same host both find no connection,
// and both dial one.

func checkThenActBuggy(t *sched.Task) error { return checkThenAct(t, false) }
func checkThenActFixed(t *sched.Task) error { return checkThenAct(t, true) }

func checkThenAct(t *sched.Task, fixed bool) error {
	var mu sched.Mutex
	conns := map[string]int{}
	dials := 0
	get := func(t *sched.Task, host string) int {
		if fixed {
			mu.Lock(t)
			defer mu.Unlock()
		}
		if c, ok := conns[host]; ok {
			return c
		}
		t.Yield() // dial
		dials++
		conns[host] = dials
		return dials
	}
	var wg sched.WaitGroup
	for range 2 {
		wg.Go(t, func(t *sched.Task) error { get(t, "db"); return nil })
	}
	wg.Wait(t)
	if dials != 1 {
		return fmt.Errorf("%d connections dialled to db, want 1", dials)
	}
	return nil
}

// lost-notify: the notifier sends without blocking (select with a
// default); on an unbuffered channel the notification is dropped unless the
// waiter already waits.

func lostNotifyBuggy(t *sched.Task) error { return lostNotify(t, false) }
func lostNotifyFixed(t *sched.Task) error { return lostNotify(t, true) }

func lostNotify(t *sched.Task, fixed bool) error {
	capacity := 0
	if fixed {
		capacity = 1 // keeps one pending notification
	}
	kick := sched.NewChan[struct{}](capacity)
	var wg sched.WaitGroup
	wg.Go(t, func(t *sched.Task) error { // waiter
		kick.Recv(t)
		return nil
	})
	wg.Go(t, func(t *sched.Task) error { // notifier
		kick.TrySend(t, struct{}{})
		return nil
	})
	wg.Wait(t)
	return nil
}

// spin-holding-lock: a task spins, yielding, until a flag is set, and
// holds the lock that the task that sets the flag needs.

func spinHoldingLockBuggy(t *sched.Task) error { return spinHoldingLock(t, false) }
func spinHoldingLockFixed(t *sched.Task) error { return spinHoldingLock(t, true) }

func spinHoldingLock(t *sched.Task, fixed bool) error {
	var mu sched.Mutex
	ready := false
	isReady := func(t *sched.Task) bool {
		mu.Lock(t)
		defer mu.Unlock()
		return ready
	}
	var wg sched.WaitGroup
	wg.Go(t, func(t *sched.Task) error { // setter
		mu.Lock(t)
		ready = true
		mu.Unlock()
		return nil
	})
	wg.Go(t, func(t *sched.Task) error { // spinner
		if fixed {
			for !isReady(t) {
				t.Yield()
			}
			return nil
		}
		mu.Lock(t)
		defer mu.Unlock()
		for !ready {
			t.Yield() // runtime.Gosched, with mu held
		}
		return nil
	})
	wg.Wait(t)
	return nil
}

// missing-unlock: a withdrawal that finds too little money returns without
// unlocking the account.

func missingUnlockBuggy(t *sched.Task) error { return missingUnlock(t, false) }
func missingUnlockFixed(t *sched.Task) error { return missingUnlock(t, true) }

func missingUnlock(t *sched.Task, fixed bool) error {
	var mu sched.Mutex
	balance := 0
	withdraw := func(t *sched.Task, n int) bool {
		mu.Lock(t)
		if fixed {
			defer mu.Unlock()
		}
		if balance < n {
			return false // without Unlock
		}
		balance -= n
		if !fixed {
			mu.Unlock()
		}
		return true
	}
	var wg sched.WaitGroup
	wg.Go(t, func(t *sched.Task) error { // deposit
		mu.Lock(t)
		balance += 10
		mu.Unlock()
		return nil
	})
	wg.Go(t, func(t *sched.Task) error { withdraw(t, 5); return nil })
	wg.Wait(t)
	return nil
}

// late-subscribe: a subscriber registers while the publisher already
// publishes; if it registers after the last event, it waits forever for
// an event that has gone by. Only a subscriber starved for the whole
// publication sees it: a random walk rarely starves a task that long.

func lateSubscribeBuggy(t *sched.Task) error { return lateSubscribe(t, false) }
func lateSubscribeFixed(t *sched.Task) error { return lateSubscribe(t, true) }

func lateSubscribe(t *sched.Task, fixed bool) error {
	var subs []*sched.Chan[string]
	finished := false
	publish := func(t *sched.Task, ev string) {
		for _, s := range subs {
			s.TrySend(t, ev)
		}
	}
	var wg sched.WaitGroup
	wg.Go(t, func(t *sched.Task) error { // publisher
		for range 8 {
			t.Yield() // produce an event
			publish(t, "progress")
		}
		publish(t, "done")
		finished = true
		return nil
	})
	wg.Go(t, func(t *sched.Task) error { // subscriber
		ch := sched.NewChan[string](16)
		subs = append(subs, ch)
		if fixed && finished {
			return nil // the state is sticky: a late subscriber sees it
		}
		for {
			if ev, _ := ch.Recv(t); ev == "done" {
				return nil
			}
		}
	})
	wg.Wait(t)
	return nil
}

// compaction-lost-delete: a compaction reads each key, rewrites it
// (yielding), and writes it back; a delete that lands between the read
// and the write of that key is undone. The window is one step among
// many, late in the run.

func compactionBuggy(t *sched.Task) error { return compaction(t, false) }
func compactionFixed(t *sched.Task) error { return compaction(t, true) }

func compaction(t *sched.Task, fixed bool) error {
	var mu sched.Mutex
	store := map[int]string{}
	for k := range 16 {
		store[k] = fmt.Sprint("v", k)
	}
	var wg sched.WaitGroup
	wg.Go(t, func(t *sched.Task) error { // compactor
		for k := range 16 {
			if fixed {
				mu.Lock(t)
			}
			v, ok := store[k]
			t.Yield() // rewrite the value
			if ok {
				store[k] = v
			}
			if fixed {
				mu.Unlock()
			}
		}
		return nil
	})
	wg.Go(t, func(t *sched.Task) error { // a client deletes key 13
		mu.Lock(t)
		delete(store, 13)
		mu.Unlock()
		return nil
	})
	wg.Wait(t)
	if _, ok := store[13]; ok {
		return errors.New("key 13 was deleted, and the compaction brought it back")
	}
	return nil
}

// lock-order-no-yield: two tasks take the same two locks in opposite
// orders, each with nothing between its two Locks: no wait, no yield. Only
// a switch right before a Lock (a preemption) interleaves them.

func lockOrderNoYieldBuggy(t *sched.Task) error { return lockOrderNoYield(t, false) }
func lockOrderNoYieldFixed(t *sched.Task) error { return lockOrderNoYield(t, true) }

func lockOrderNoYield(t *sched.Task, fixed bool) error {
	var users, groups sched.Mutex
	both := func(first, second *sched.Mutex) func(*sched.Task) error {
		return func(t *sched.Task) error {
			first.Lock(t)
			second.Lock(t)
			second.Unlock()
			first.Unlock()
			return nil
		}
	}
	var wg sched.WaitGroup
	wg.Go(t, both(&users, &groups)) // add a user to a group
	if fixed {
		wg.Go(t, both(&users, &groups))
	} else {
		wg.Go(t, both(&groups, &users)) // rename a group, updating its users
	}
	wg.Wait(t)
	return nil
}

// timeout-mid-work: a watchdog gives a job a deadline. When the deadline
// passes while the job still computes (it never waits, so only time that
// passes while tasks run lets the timeout fire first), the watchdog closes
// the results channel, and the job's late send panics. The fix cancels the
// job and waits for it before closing.

func timeoutMidWorkBuggy(t *sched.Task) error { return timeoutMidWork(t, false) }
func timeoutMidWorkFixed(t *sched.Task) error { return timeoutMidWork(t, true) }

func timeoutMidWork(t *sched.Task, fixed bool) error {
	results := sched.NewChan[int](1)
	var mu sched.Mutex
	total := 0
	job := sched.Spawn(t, func(t *sched.Task) (int, error) {
		for i := range 8 {
			if err := t.Context().Err(); err != nil {
				return 0, err // cancelled: no result
			}
			mu.Lock(t) // a step of work
			total += i
			mu.Unlock()
		}
		results.Send(t, total)
		return total, nil
	})
	timedOut := false
	sched.Select(t, sched.OnRecv(results, nil), sched.OnTimeout(20*time.Microsecond, func() { timedOut = true }))
	if timedOut && fixed {
		job.Cancel()
		job.Wait(t) // its cancellation, which is no failure
		results.Close()
		return nil
	}
	if timedOut {
		results.Close() // no result will be read: release the channel
	}
	_, err := job.Wait(t)
	return err
}

// cond-deadlock-deferred: a bounded buffer with one condition variable for
// both "not full" and "not empty", and Signal: a signal meant for a consumer
// can wake a producer, which waits again, and everyone ends up waiting.
// Every wait is in a loop, with the usual deferred Unlock; the report must
// be the deadlock, nothing else.

func condDeadlockDeferredBuggy(t *sched.Task) error { return condDeadlockDeferred(t, false) }
func condDeadlockDeferredFixed(t *sched.Task) error { return condDeadlockDeferred(t, true) }

func condDeadlockDeferred(t *sched.Task, fixed bool) error {
	var mu sched.Mutex
	c := sched.NewCond(&mu)
	var buf []int
	wake := c.Signal
	if fixed {
		wake = c.Broadcast
	}
	put := func(t *sched.Task, v int) {
		mu.Lock(t)
		defer mu.Unlock()
		for len(buf) == 1 {
			c.Wait(t)
		}
		buf = append(buf, v)
		wake()
	}
	get := func(t *sched.Task) int {
		mu.Lock(t)
		defer mu.Unlock()
		for len(buf) == 0 {
			c.Wait(t)
		}
		v := buf[0]
		buf = buf[1:]
		wake()
		return v
	}
	var wg sched.WaitGroup
	for range 2 {
		wg.Go(t, func(t *sched.Task) error {
			for i := range 3 {
				put(t, i)
			}
			return nil
		})
		wg.Go(t, func(t *sched.Task) error {
			for range 3 {
				get(t)
			}
			return nil
		})
	}
	wg.Wait(t)
	return nil
}

// lock-cycle-deferred: two transfers between the same two accounts, in
// opposite directions, each locking its source and then its destination,
// each Unlock deferred. The report must be the cycle, nothing else: the
// deferred Unlocks of the task whose Lock closed it, and of the other, run
// on consistent locks.

func lockCycleDeferredBuggy(t *sched.Task) error { return lockCycleDeferred(t, false) }
func lockCycleDeferredFixed(t *sched.Task) error { return lockCycleDeferred(t, true) }

type ledger struct {
	id      int
	mu      sched.Mutex
	balance int
}

func lockCycleDeferred(t *sched.Task, fixed bool) error {
	a, b := &ledger{id: 1, balance: 100}, &ledger{id: 2, balance: 100}
	transfer := func(t *sched.Task, from, to *ledger, n int) {
		first, second := from, to
		if fixed && second.id < first.id {
			first, second = second, first
		}
		first.mu.Lock(t)
		defer first.mu.Unlock()
		second.mu.Lock(t)
		defer second.mu.Unlock()
		from.balance -= n
		to.balance += n
	}
	var wg sched.WaitGroup
	wg.Go(t, func(t *sched.Task) error { transfer(t, a, b, 10); return nil })
	wg.Go(t, func(t *sched.Task) error { transfer(t, b, a, 20); return nil })
	wg.Wait(t)
	if a.balance+b.balance != 200 {
		return fmt.Errorf("the ledgers hold %d, want 200", a.balance+b.balance)
	}
	return nil
}
