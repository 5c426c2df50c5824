package sched

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/weavert/weave/internal/engine"
)

// WaitKind is what a task that stopped running waits for.
type WaitKind uint8

const (
	WaitYield       WaitKind = iota // it yielded: it is runnable again at once
	WaitSleep                       // Task.Sleep
	WaitRecv                        // Chan.Recv
	WaitSend                        // Chan.Send
	WaitSelect                      // Select
	WaitLock                        // Mutex.Lock
	WaitRWLock                      // RWMutex.Lock
	WaitRWRLock                     // RWMutex.RLock
	WaitCond                        // Cond.Wait
	WaitWaitGroup                   // WaitGroup.Wait
	WaitAwait                       // Await
	WaitGroupWait                   // Group.Wait
	WaitGroupGo                     // Group.Go, for a slot under SetLimit
	WaitHandle                      // Handle.Wait
	WaitSemaphore                   // Semaphore.Acquire
	WaitIORead                      // an FD's read
	WaitIOWrite                     // an FD's write
	WaitAwaitQueued                 // Await, for a goroutine of the pool: all are busy
	WaitCrashed                     // nothing: its simulated host crashed
	WaitNotify                      // Notify.Wait
)

var waitKindNames = [...]string{
	WaitYield:       "yield",
	WaitSleep:       "sleep",
	WaitRecv:        "chan receive",
	WaitSend:        "chan send",
	WaitSelect:      "select",
	WaitLock:        "Mutex.Lock",
	WaitRWLock:      "RWMutex.Lock",
	WaitRWRLock:     "RWMutex.RLock",
	WaitCond:        "Cond.Wait",
	WaitWaitGroup:   "WaitGroup.Wait",
	WaitAwait:       "Await",
	WaitGroupWait:   "Group.Wait",
	WaitGroupGo:     "Group.Go",
	WaitHandle:      "Handle.Wait",
	WaitSemaphore:   "Semaphore.Acquire",
	WaitIORead:      "I/O read",
	WaitIOWrite:     "I/O write",
	WaitAwaitQueued: "Await queued",
	WaitCrashed:     "crashed",
	WaitNotify:      "Notify.Wait",
}

func (k WaitKind) String() string {
	if int(k) < len(waitKindNames) {
		return waitKindNames[k]
	}
	return "WaitKind(" + strconv.Itoa(int(k)) + ")"
}

// WaitReason is why a task stopped running: what it waits for, and on what.
// Tracer.Park receives one at every park. It is a small value that nothing
// formats until someone prints it, as the runtime's own wait reasons are:
// a tracer that only counts, or compares the Kind, pays nothing for words.
type WaitReason struct {
	Kind WaitKind
	on   waitable // the object waited on; nil if none
}

// waitable is what a task can wait on: a primitive, or a Select's cases.
type waitable interface {
	// appendWait appends the object, each object in it named by name, and
	// what does not change about it (a Chan's capacity); with live, also
	// its state now (who holds a Mutex), read with its own lock or atomics.
	// It appends nothing if there is no object to name (Sleep).
	appendWait(b []byte, name func(obj any) string, live bool) []byte
	// dequeueLocked takes t out of the object's wait queue, with the lock
	// that guards it held (the lock t parked with), and returns the tasks
	// that t's leaving lets go on (a writer that gave up lets readers in),
	// to wake once the lock is released. It does nothing if t is not in the
	// queue: a waker took it out first.
	dequeueLocked(t *Task) (woken taskList)
}

// String describes r: "chan receive on *sched.Chan[int] 0xc000104000
// (cap 0)". It reads only what does not change, so it may be called at any
// time, from any goroutine.
func (r WaitReason) String() string { return r.format(typeAndAddress, false) }

// Detail is String with the object's state as it is when Detail is called:
// the tasks that hold a Mutex or RWMutex, a WaitGroup's counter. It may be
// called at any time, from any goroutine, and never waits: the state an
// object keeps under its lock (an RWMutex's readers, a Semaphore's weight
// taken) is left out while another holds that lock, as the parking task's
// object is during Tracer.Park.
func (r WaitReason) Detail() string { return r.format(typeAndAddress, true) }

// Format is Detail with each object named by name rather than by its type
// and address: a tracer that wants the same text in two runs of the same
// program names objects by the order it first saw them.
func (r WaitReason) Format(name func(obj any) string) string { return r.format(name, true) }

func (r WaitReason) format(name func(obj any) string, live bool) string {
	b := []byte(r.Kind.String())
	if r.on != nil {
		n := len(b)
		b = r.on.appendWait(append(b, " on "...), name, live)
		if len(b) == n+len(" on ") {
			b = b[:n]
		}
	}
	return string(b)
}

func typeAndAddress(obj any) string { return fmt.Sprintf("%T %p", obj, obj) }

// setWait records what t, about to park, waits for.
func (t *Task) setWait(kind WaitKind, on waitable) {
	t.waitKind, t.waitOn = kind, on
}

// waitReason is what t waits for, while it is parked.
func (t *Task) waitReason() WaitReason { return WaitReason{t.waitKind, t.waitOn} }

// intr is why a parked task's wait ended, if not because what it waited for
// happened: its waker did not wake it, an interrupter did.
type intr uint8

const (
	intrNone   intr = iota // its waker woke it
	intrCancel             // its context ended (scope.go)
	intrUnwind             // the run unwinds it: a deadlock, or a leak (shutdown.go)
)

// The claim word of a task decides who ends a wait that more than one party
// may end: the cases of a Select, a Sleep's timer, and the end of the task's
// context against any waker. It holds gen<<2 | flags, gen being the wait's
// generation (Task.gen):
const (
	claimOpen   = 1 // the wait of generation gen is open: the first to clear it ends it
	claimCancel = 2 // the end of the task's context may end it
)

// arm opens a wait of t, with a new generation that it returns; cancel says
// whether the end of t's context may end it. Whoever claims it first (a
// waker, a timer, an interrupter) makes t runnable; the others leave t alone.
func (t *Task) arm(cancel bool) uint64 {
	t.intr = intrNone
	t.gen++
	v := t.gen<<2 | claimOpen
	if cancel {
		v |= claimCancel
	}
	t.claim.Store(v)
	return t.gen
}

// claimWake reports whether the caller is the first to end t's wait of
// generation gen: only the first may make t runnable.
func (t *Task) claimWake(gen uint64) bool {
	v := t.claim.Load()
	return v>>2 == gen && v&claimOpen != 0 && t.claim.CompareAndSwap(v, v&^claimOpen)
}

// claimCancelled reports whether the caller, which ended t's context, is the
// first to end t's wait: false if t is not in a wait its context may end, or
// if another has ended it.
func (t *Task) claimCancelled() bool {
	v := t.claim.Load()
	return v&(claimOpen|claimCancel) == claimOpen|claimCancel && t.claim.CompareAndSwap(v, v&^claimOpen)
}

// wakeable reports whether a waker that took t out of a primitive's wait
// queue, holding the primitive's lock, may make it runnable: yes, unless
// the wait was armed and an interrupter claimed it first (then it takes t
// out of the queue itself, if t is still there, and wakes it).
func (t *Task) wakeable() bool { return !t.armed || t.claimWake(t.gen) }

// park stops t, running, in a wait for kind on what, whose wait queue t has
// joined holding unlock, or, for kind WaitYield, in a yield: t is runnable
// again at once (what and unlock are nil, and park returns intrNone).
//
// The worker releases unlock once t is suspended, so that a waker, which
// needs the lock to find t, never resumes a coroutine still running. Either
// way, unlock is released when park returns. It returns intrNone when a
// waker ended the wait; otherwise t has been taken out of the queue, and the
// caller must give up the wait: intrCancel (the caller returns the context's
// error, or unwinds t) or intrUnwind (it unwinds t).
//
// The end of t's context ends the wait if t's context can end, the kind of
// wait allows it (cancellable), and t is not unwinding already. A context
// that ended before t parked ends the wait at once; one that ends later
// does so through scope.cancel or the run's context.
//
// t's coroutine switches out, to its worker. It must be the one running: a
// goroutine that parked or yielded through t while t ran has switched it out
// already, and t, still running, finds out here. But if the worker's own
// goroutine resumed t (w.direct), t does not switch to it: t's goroutine runs
// the worker's loop in its place (it acts), and the tasks it picks run as
// coroutines that it resumes, which switch back to it when they stop. A task
// switch is then one coroutine switch instead of two (to the worker's
// goroutine and on to the next task), and none at all when the loop picks t
// itself: then t goes on. When the run is over, t switches to the worker's
// goroutine, whose loop returns.
//
// Only t's goroutine acts, never the goroutines it resumes: so nesting is one
// level deep, and t, whose coroutine is not suspended while it acts, is
// resumed by nobody but itself. That needs every task t could be handed to
// to be its worker's: acting is for the modes with one worker (newState).
//
// Yields, waits and the switch are written out in this one function: every
// frame between a task's call and its switch is a return that the processor
// mispredicts once the switch has run another stack, a few nanoseconds each,
// on both sides of every task switch. The loop is not (worker.act).
func (t *Task) park(kind WaitKind, what waitable, unlock sync.Locker) intr {
	if kind == WaitYield {
		t.state = stateYielded
	} else {
		if !t.armed { // else armFor set the wait up
			t.intr = intrNone
			t.waitKind, t.waitOn, t.waitMu = kind, what, unlock
			if t.cancellable && !t.unwinding && cancellable(kind) {
				t.armFor(kind, what, unlock)
			}
		}
		// After arming: either the context's canceller sees the wait open
		// and claims it, or this sees the context done.
		if t.armed && t.claim.Load()&claimCancel != 0 && t.ctx.Err() != nil && t.claimWake(t.gen) {
			t.armed = false
			t.intr = intrCancel
			t.giveUpLocked(what, unlock)
			return intrCancel
		}
		t.state = stateParked
	}
	c := t.co
	if c.e.Status() != engine.Running {
		t.usedElsewhere()
	}
	if w := t.w; c == w.direct && w.act(t) {
		return t.resumedIn(kind)
	}
	if !c.e.Yield() {
		// The run's end is closing t (finish): nothing will resume it. A
		// wait it was entering is given up, and it unwinds from here.
		if t.state == stateParked {
			t.giveUpLocked(t.waitOn, t.waitMu)
		}
		if x := t.x.Load(); x != nil && x.report != nil {
			*x.report = trimParkStack(stack())
			x.report = nil
		}
		c.e.Unwind()
	}
	return t.resumedIn(kind)
}

// resumedIn ends, for park, t's wait for kind, which it was resumed from.
func (t *Task) resumedIn(kind WaitKind) intr {
	if kind == WaitYield {
		return intrNone
	}
	t.armed = false
	return t.intr
}

// armFor arms t's coming wait for kind on what, guarded by mu, for a caller
// that must know its generation before it parks (Sleep's timer, Select's
// waiters) or that several may end whatever t's context: see park. The wait
// is set up before it is armed: an interrupter reads it once it claimed the
// wait.
func (t *Task) armFor(kind WaitKind, what waitable, mu sync.Locker) uint64 {
	t.setWait(kind, what)
	t.waitMu = mu
	t.armed = true
	return t.arm(t.cancellable && !t.unwinding && cancellable(kind))
}

// cancellable reports whether the end of a task's context may end a wait of
// kind. Not a Group's Wait, which waits for tasks that are cancelled too (a
// nursery), nor Await, whose function gets the context and must return. Nor
// a lock's: its holder is in a critical section that ends by itself, and if
// the holder is cancelled too, in its deferred Unlock; so cleanup that takes
// a lock still works once the context ended, and a Lock that can never be
// granted is a lock cycle or a deadlock, which are reported.
func cancellable(kind WaitKind) bool {
	switch kind {
	case WaitGroupWait, WaitAwait, WaitAwaitQueued, WaitLock, WaitRWLock, WaitRWRLock, WaitCrashed:
		return false
	}
	return true
}

// interrupt ends t's wait, which the caller has claimed, for why: it takes t
// out of what it waits on, and makes it runnable. by is the running task
// that interrupts, or nil.
func (s *state) interrupt(t *Task, why intr, by *Task) {
	t.intr = why
	t.leaveWait()
	if by == nil && s.mode != modeSim {
		s.readyFromOutside(t, func() {})
		return
	}
	s.ready(t, by)
}

// giveUpLocked takes t, about to park, out of the wait queue of what, whose
// lock mu t holds, and releases mu.
func (t *Task) giveUpLocked(what waitable, mu sync.Locker) {
	woken := what.dequeueLocked(t)
	mu.Unlock()
	readyAll(&woken)
}

// leaveWait takes t out of the wait queue of what it waits on, with the lock
// it parked with (which waits for t to be suspended, if it is still
// parking), and wakes the tasks that its leaving lets go on.
func (t *Task) leaveWait() {
	mu := t.waitMu
	mu.Lock()
	woken := t.waitOn.dequeueLocked(t)
	mu.Unlock()
	readyAll(&woken)
}

// unwinding is the panic with which a task gives up its wait, for its
// context or for the run, and returns from its function: its deferred calls
// run, and runTask recovers it.
type unwinding struct{}

var unwindToken = &unwinding{}

// unwind ends t, whose wait was interrupted: it records t's stack for the
// report that named it, if any, and panics with unwindToken. It does not
// return. From then on, the end of t's context ends none of its waits: its
// deferred calls may wait for what they need.
func (t *Task) unwind() {
	t.beginUnwind()
	panic(unwindToken)
}

// beginUnwind marks t as unwinding, and records its stack, from the wait it
// gives up, for the report that named it.
func (t *Task) beginUnwind() {
	x := t.extra()
	if !t.unwinding {
		t.unwinding = true
		x.cause = t.intr
	}
	if r := x.report; r != nil {
		x.report = nil
		*r = trimParkStack(stack())
	}
}

// act runs w's loop on the goroutine of t, w's direct task, which has just
// stopped (Task.park), until the loop picks t again: then it reports true,
// and t goes on without a switch. When the run is over, it reports false,
// and t switches to the worker's goroutine, whose loop returns.
//
// Not written out in park, though it costs the acting task a frame on each
// side of its switches: park's frame lies under that of every parked task,
// and a task parked in FD.Read must fit in Go's smallest stack
// (TestFDParkedStack), which the loop's locals in park made it outgrow.
//
//go:noinline
func (w *worker) act(t *Task) bool {
	looping := true
	defer func() {
		if looping {
			loopPanicked(recover())
		}
	}()
	if w.s.mode == modeSim {
		w.s.sim.acting(t)
	}
	w.suspended(t)
	for {
		n := w.handoff
		w.handoff = nil
		if n == nil {
			if n = w.find(); n == nil {
				w.over = true
				looping = false
				return false
			}
		}
		if n == t {
			w.resumed(t)
			looping = false
			return true
		}
		nc := n.co
		if nc == nil || w.s.locked {
			w.execute(n)
			continue
		}
		// execute, for a started task.
		w.resumed(n)
		nc.e.Begin()
		nc.e.Switch()
		w.back(nc)
	}
}
