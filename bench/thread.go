package bench

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Rows of the thread layer: two OS threads ping-ponging through a futex.
//
// Each endpoint is a goroutine locked to its own OS thread, and waits and
// wakes with the futex system call directly, so that what is measured is the
// kernel putting one thread to sleep and waking the other, not Go's
// scheduler. (The calls go through unix.Syscall, whose bookkeeping tells Go
// that the thread is in the kernel; it costs tens of nanoseconds and lets the
// rest of the program, the garbage collector included, go on meanwhile.)

func init() {
	register(probe{name: "thread/switch", layer: "thread", unit: "ns", count: 100_000, quick: 5_000,
		setup: threadSwitch})
	register(probe{name: "futex/overhead", layer: "thread", unit: "ns", count: 1_000_000, quick: 50_000,
		setup: timed(1, futexOverhead)})
	register(probe{name: "thread/create", layer: "thread", unit: "ns", count: 2_000, quick: 200,
		setup: timed(1, threadCreate)})
	register(probe{name: "thread/memory", layer: "thread", unit: "B", count: 1_000, quick: 100,
		setup: memory(threadParked, "Go's stack and heap per thread (its system stack and descriptors); its kernel stack is not counted")})
}

// Futex operations, from linux/futex.h (x/sys/unix does not name them). The
// private ones serve threads of one process; process/switch, whose word is in
// a page that two processes share, uses the plain ones.
const (
	futexWait        = 0
	futexWake        = 1
	futexPrivateFlag = 128
)

func futex(addr *uint32, op int, val uint32) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), uintptr(op), uintptr(val), 0, 0, 0)
}

// pingEnd is one end of a ping-pong through the futex word turn: mine says
// when it is this end's turn, theirs hands the turn over. It runs n rounds on
// a thread of its own and returns the context switches that thread made.
func pingEnd(turn *uint32, n int, mine, theirs uint32, private bool) (switches, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	flag := 0
	if private {
		flag = futexPrivateFlag
	}
	before, err := threadSwitches()
	if err != nil {
		return switches{}, err
	}
	for range n {
		for atomic.LoadUint32(turn) != mine {
			futex(turn, futexWait|flag, theirs)
		}
		atomic.StoreUint32(turn, theirs)
		futex(turn, futexWake|flag, 1)
	}
	after, err := threadSwitches()
	return after.minus(before), err
}

// pingPong runs n round trips between two threads of this process and
// returns the context switches both made.
func pingPong(n int) (switches, error) {
	var turn uint32
	type result struct {
		sw  switches
		err error
	}
	other := make(chan result)
	go func() {
		sw, err := pingEnd(&turn, n, 1, 0, true)
		other <- result{sw, err}
	}()
	sw, err := pingEnd(&turn, n, 0, 1, true)
	r := <-other
	return sw.plus(r.sw), errors.Join(err, r.err)
}

// threadSwitch measures thread/switch and notes the real context switches
// per round trip that the kernel counted.
func threadSwitch(n int) (func() (float64, error), func() string, error) {
	var trips int64
	var total switches
	try := func() (float64, error) {
		ns, err := perOp(n, 2, func(n int) error {
			sw, err := pingPong(n)
			total = total.plus(sw)
			return err
		})
		trips += int64(n)
		return ns, err
	}
	return try, func() string { return switchNote(total, trips) }, nil
}

// switchNote says how many context switches the kernel counted per round
// trip. A ping-pong whose ends really give up their CPU takes two: each end
// sleeps (a voluntary switch), or is preempted by the end it woke (an
// involuntary one).
func switchNote(sw switches, trips int64) string {
	if trips == 0 {
		return ""
	}
	vol, invol := float64(sw.voluntary)/float64(trips), float64(sw.involuntary)/float64(trips)
	note := fmt.Sprintf("%.2f context switches per round trip (%.2f voluntary, %.2f involuntary)", vol+invol, vol, invol)
	if vol+invol < 1.5 || vol+invol > 2.5 {
		note += "; not about 2: the ends often found their turn without sleeping, so part of this is two CPUs running in parallel"
	}
	return note
}

// futexOverhead is the cost of the futex calls of one switch, inside one
// thread: a wake with no waiter and a wait that returns at once because the
// word has already changed. Subtract it from thread/switch, as lmbench does.
func futexOverhead(n int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var w uint32
	for range n {
		futex(&w, futexWake|futexPrivateFlag, 1)
		futex(&w, futexWait|futexPrivateFlag, 1) // w is 0: EAGAIN at once
	}
	return nil
}

// threadCreate makes a goroutine locked to its OS thread that exits without
// unlocking: the runtime then ends that thread, and starts another in its
// place. One unit is a thread created and destroyed.
func threadCreate(n int) error {
	done := make(chan struct{})
	for range n {
		go func() {
			runtime.LockOSThread()
			done <- struct{}{}
		}()
		<-done
	}
	return nil
}

// threadParked makes n OS threads, each a locked goroutine blocked in a
// channel receive.
func threadParked(n int) (release func()) {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	ready := make(chan struct{})
	for range n {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ready <- struct{}{}
			<-stop
		})
		<-ready
	}
	return func() {
		close(stop)
		wg.Wait()
	}
}

// threadSwitches returns the context switches of the calling thread so far:
// voluntary ones (it slept) and involuntary ones (it was preempted, as a
// thread is when the one it wakes takes its CPU at once).
func threadSwitches() (switches, error) {
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return switches{}, err
	}
	vol, err := parseSwitches(string(b), "voluntary_ctxt_switches")
	if err != nil {
		return switches{}, err
	}
	invol, err := parseSwitches(string(b), "nonvoluntary_ctxt_switches")
	return switches{vol, invol}, err
}

// switches counts a thread's context switches.
type switches struct{ voluntary, involuntary int64 }

func (a switches) minus(b switches) switches {
	return switches{a.voluntary - b.voluntary, a.involuntary - b.involuntary}
}

func (a switches) plus(b switches) switches {
	return switches{a.voluntary + b.voluntary, a.involuntary + b.involuntary}
}
