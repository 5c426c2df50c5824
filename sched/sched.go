package sched

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weavert/weave/internal/poll"
)

// Scheduler runs tasks on a fixed set of threads (workers). Create one with
// New; its zero value is not usable. A Scheduler may be Run many times, one
// Run at a time.
type Scheduler struct {
	locked     bool
	threads    int
	awaitLimit int
	clock      Clock
	tracer     Tracer
	timed      bool
	chooser    Chooser
	maxSteps   uint64
	parkOnly   bool
	watchdog   time.Duration
	running    atomic.Bool

	statsMu sync.Mutex
	last    RunStats
}

// Option configures a Scheduler.
type Option func(*Scheduler)

// Threads sets the number of workers. Threads(1) makes the scheduler an
// event loop: its tasks run strictly one at a time. The default is
// runtime.GOMAXPROCS(0). Threads panics if n < 1.
func Threads(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("sched: Threads(%d): need at least one thread", n))
	}
	return func(s *Scheduler) { s.threads = n }
}

// LockThreads locks each worker to an OS thread of its own
// (runtime.LockOSThread) for the length of a Run, for tasks that need a
// stable thread: thread-local state in C libraries, per-thread OS settings.
//
// Then a task that has started stays on the thread it started on: the
// runtime ends the program if a coroutine created on a locked thread is
// resumed on another. Only tasks that have not started yet move between
// threads (by stealing, or through the global queue); a started task woken
// elsewhere is forwarded to its own thread. A task must not call
// runtime.Goexit under LockThreads: its thread would end with it.
func LockThreads() Option {
	return func(s *Scheduler) { s.locked = true }
}

// WithClock makes the scheduler read time from c instead of the real clock.
// Sleep, Now and the timers of every worker use it.
func WithClock(c Clock) Option {
	return func(s *Scheduler) { s.clock = c }
}

// AwaitLimit sets how many goroutines at most run the functions given to
// Await at once; more calls wait their turn, their tasks parked for
// WaitAwaitQueued. The default is 64. It panics if n < 1.
func AwaitLimit(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("sched: AwaitLimit(%d): need at least one goroutine", n))
	}
	return func(s *Scheduler) { s.awaitLimit = n }
}

// WithTracer makes the scheduler report the life of every task to tr. With
// no tracer, each event costs one branch.
func WithTracer(tr Tracer) Option {
	return func(s *Scheduler) { s.tracer = tr }
}

// MeasureRunTime makes the scheduler measure the time each task spends
// running, which Task.Stats reports. It costs two readings of the monotonic
// clock per resume, which is why it is off by default.
func MeasureRunTime() Option {
	return func(s *Scheduler) { s.timed = true }
}

// New returns a Scheduler configured by opts.
func New(opts ...Option) *Scheduler {
	s := &Scheduler{threads: runtime.GOMAXPROCS(0), awaitLimit: 64, clock: realClock{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Run runs main as the first task and returns when main and every task
// started from it, directly or not, have ended; or when no task can make
// progress any more (a deadlock), with a *DeadlockError.
//
// It returns the errors of all tasks that failed, joined with errors.Join in
// the order they failed, each wrapped in a *TaskError. A task that panicked
// failed with a *coro.PanicError holding the value and the task's stack.
//
// Run blocks the calling goroutine. It panics if the scheduler is already
// running. Everything a task does happens before Run returns.
func (s *Scheduler) Run(main func(t *Task) error) error {
	return s.RunContext(context.Background(), main)
}

// RunContext is Run with ctx as the main task's context, from which every
// task's context derives. When ctx ends (a signal, a deadline), every task
// is cancelled: each wait that the end of a context may end ends (see
// "Cancellation" in the package doc), and RunContext returns ctx.Err(),
// unchanged, before the errors of the tasks that failed, once every task
// has ended. The end of ctx does not count as a way out of a deadlock: a
// run whose tasks all wait for it is reported as deadlocked.
func (s *Scheduler) RunContext(ctx context.Context, main func(t *Task) error) error {
	if main == nil {
		panic("sched: Run with a nil function")
	}
	if !s.running.CompareAndSwap(false, true) {
		panic("sched: Run called while the scheduler is already running")
	}
	defer s.running.Store(false)
	st := newState(s)
	err := st.run(ctx, main)
	var stats RunStats
	if m := st.sim; m != nil {
		stats = m.stats()
	}
	s.statsMu.Lock()
	s.last = stats
	s.statsMu.Unlock()
	return err
}

// state is one Run: the workers, the global queue and what the workers share.
type state struct {
	mode  mode // how runnable tasks are kept and chosen (flavor.go)
	clock Clock
	base  time.Time // now() counts from here
	ws    []*worker
	n     int32

	// Protected by mu: the global queue, the list of idle workers, and the
	// end of the run.
	mu     sync.Mutex
	global taskList
	idle   []*worker
	done   bool
	limit  *StepLimitError
	stop   chan struct{} // closed when the run ends

	gsize      atomic.Int32 // entries in global, readable without mu
	nidle      atomic.Int32 // len(idle), readable without mu
	nsearching atomic.Int32 // workers looking for work to steal (idle.go)
	timers     timers       // of the whole run (timer.go)
	watcher    *worker      // the idle worker that waits for the earliest timer, or nil; guarded by mu
	watchUntil atomic.Int64 // when the watcher will wake, or never
	pollHeld   atomic.Bool  // a worker polls (park.go)
	pollMissed atomic.Bool  // a worker parked without polling while another polled
	external   atomic.Int64 // waits that something outside may end: Await, contexts; descriptors count in ioWaiting
	pool       awaitPool
	ids        atomic.Uint64
	tracer     Tracer // nil: tracing off, one branch per event
	locked     bool   // LockThreads
	sim        *sim   // modeSim's state, or nil
	timed      bool   // MeasureRunTime

	// The scope of every task with no Group or Handle, when the run's
	// context can end (RunContext), or nil; and whether main ended by
	// being cancelled (written by its worker, read by finish).
	root          *scope
	mainCancelled bool

	// The order in which failures happened, and the deadlock found, with
	// its place in that order (shutdown.go). dead is written with every
	// worker idle, under mu or by modeSim's one worker.
	seq     atomic.Uint64
	dead    *DeadlockError
	deadSeq uint64

	// The run's descriptors and poller, opened at the first FD, and the
	// number of tasks parked on them (fd.go).
	fds       fdTable
	pollOnce  sync.Once
	pollErr   error
	poller    atomic.Pointer[poll.Poller]
	ioWaiting atomic.Int64

	// graph guards the wait-for graph of the run's Mutexes: Task.waitMutex,
	// and the holder of every Mutex that tasks wait for. Only contended
	// Locks and Unlocks take it. One lock per run, not per process: a
	// Mutex belongs to one Run at a time, and so does any cycle through it.
	graph graph

	// Every coroutine of the run, so that the end of a run (or a deadlock)
	// can find parked tasks and close every coroutine.
	coMu sync.Mutex
	cos  map[*coroutine]struct{}
}

func newState(s *Scheduler) *state {
	st := &state{
		mode:  modeMulti,
		clock: s.clock,
		n:     int32(s.threads),
		stop:  make(chan struct{}),
		cos:   make(map[*coroutine]struct{}),
	}
	st.pool.limit = s.awaitLimit
	st.tracer = s.tracer
	st.locked = s.locked
	st.timed = s.timed
	switch {
	case s.chooser != nil:
		st.mode = modeSim
		st.sim = newSim(st, s.chooser, s.maxSteps, s.parkOnly)
		if s.watchdog > 0 {
			st.sim.watch(s.watchdog)
		}
		st.clock = simClock{st.sim}
		st.locked = false
		st.n = 1
	case s.threads == 1:
		st.mode = modeSolo
	}
	st.timers.init()
	st.watchUntil.Store(never)
	st.base = st.clock.Now()
	st.ws = make([]*worker, st.n)
	for i := range st.ws {
		st.ws[i] = &worker{s: st, id: i, wake: make(chan struct{}, 1), rng: uint32(i)*2654435761 + 1}
		// With one worker, every task that a task acting for it could be
		// handed to is its own (Task.park).
		st.ws[i].acts = st.mode != modeMulti
	}
	return st
}

func (s *state) run(ctx context.Context, main func(*Task) error) error {
	w0 := s.ws[0]
	t := w0.newTask(nil, ctx, "main", main, nil)
	if ctx.Done() != nil {
		// Every task belongs to a scope that the end of ctx ends.
		s.root = &scope{s: s, ctx: ctx, cancel: func(error) {}, owner: s}
		s.root.join(t, false)
		stop := s.afterFunc(ctx, func() {
			// Counted as a wait from outside while it goes through the
			// tasks, so that the run is not found stuck meanwhile.
			s.external.Add(1)
			s.root.end(ctx.Err(), nil)
			s.endExternal()
		})
		defer func() {
			if d := s.dog(); d == nil || !d.fired.Load() { // else the run may still poll it
				stop()
			}
		}()
	}
	w0.pushLocal(t)
	var wg sync.WaitGroup
	wg.Add(len(s.ws))
	for _, w := range s.ws {
		go w.main(&wg)
	}
	if d := s.dog(); d != nil {
		return d.wait(w0)
	}
	wg.Wait()
	s.pool.wg.Wait()
	return s.finish()
}

// epoch is where mono counts from.
var epoch = time.Now()

// mono reads the monotonic clock, for run times, in nanoseconds.
func mono() int64 { return int64(time.Since(epoch)) }

// now is the scheduler's clock reading in nanoseconds since the run began.
func (s *state) now() int64 {
	switch c := s.clock.(type) {
	case realClock:
		return int64(time.Since(s.base)) // the monotonic clock alone
	case simClock:
		return c.m.now
	}
	return int64(s.clock.Now().Sub(s.base))
}

// popWakeable takes the first task of l that its waker may wake (see
// Task.wakeable), dropping those that an interrupter claimed first. The
// caller holds the lock of the primitive whose wait queue l is.
func popWakeable(l *taskList) *Task {
	for t := l.pop(); t != nil; t = l.pop() {
		if t.wakeable() {
			return t
		}
	}
	return nil
}

// takeWakeable moves every task of l that its waker may wake to woken, in
// order, and returns how many it moved. The caller holds the lock of the
// primitive whose wait queue l is.
func takeWakeable(l, woken *taskList) (n int) {
	for t := popWakeable(l); t != nil; t = popWakeable(l) {
		woken.push(t)
		n++
	}
	return n
}
