package sched

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Chooser picks the next task to run in deterministic mode.
type Chooser interface {
	// Choose returns the index in runnable (which holds at least one task)
	// of the task to run next. It is called at every scheduling step, even
	// with one runnable task. The order of runnable depends only on the
	// run's history. Choose must not keep runnable, nor call methods of its
	// tasks other than ID and Name.
	Choose(runnable []*Task) int
}

// Deterministic makes runs reproducible: the same program with a Chooser
// that makes the same choices runs the same way, step for step.
//
//   - One thread: Threads and LockThreads are ignored.
//   - At every step, ch chooses the task to run among the runnable ones.
//     A step comes where a task parks, yields or ends, and also, unless
//     ParkPointsOnly, right before each operation of a task on a primitive
//     (Send, Recv, Select, Close, Lock, Unlock, RLock, RUnlock, TryLock and
//     the other Try forms, WaitGroup's Add, Done and Wait, Cond's Wait,
//     Signal and Broadcast, Semaphore's Acquire and Release, a Group's or
//     Handle's Wait) and right after it starts a task: where a real
//     scheduler may preempt it, so that interleavings with no wait between
//     two operations are explored too. Where only the running task could
//     run, there is no step.
//   - A virtual clock (WithClock is ignored) starts at SimEpoch(). It moves
//     when no task is runnable, straight to the earliest timer: an hour of
//     Sleep takes no real time. With a ClockChooser it may also move at a
//     step while tasks are runnable, straight to the earliest timer, which
//     fires there: time passing while tasks compute.
//   - Await returns ErrDeterministic without running its function: real
//     I/O has no place in a reproducible run.
//   - A context that a task cancels wakes its waiters (Sleep, Select with
//     OnDone) at the next step. A context that something else ends, such
//     as a real-time deadline (context.WithTimeout), is seen at a step that
//     depends on real time: use Task.Sleep for timeouts instead. When every
//     task is parked, a run whose contexts are not done is a deadlock.
//   - Select chooses among ready cases with a generator seeded by the
//     run's history.
//
// The scheduler keeps a checksum of its decisions (LastRun): the same
// choices give the same checksum, and a program that lets something else
// (the real clock, map order, a goroutine) into its decisions shows it as a
// checksum that changes from run to run.
func Deterministic(ch Chooser) Option {
	if ch == nil {
		panic("sched: Deterministic(nil)")
	}
	return func(s *Scheduler) { s.chooser = ch }
}

// ClockChooser is a Chooser that also decides when virtual time passes while
// tasks can still run. At a step where a timer is pending, the scheduler
// asks AdvanceClock first; if it reports true, the clock moves to the next
// timer and fires it (and the others due then) before the task to run is
// chosen: a model of time passing while tasks compute, so that a timeout can
// fire in the middle of work. A Chooser that is not a ClockChooser lets time
// pass only when no task can run.
type ClockChooser interface {
	Chooser
	// AdvanceClock reports whether time moves to the next timer, due in
	// wait, before the next of the runnable tasks runs. The same rules as
	// Choose apply.
	AdvanceClock(runnable []*Task, wait time.Duration) bool
}

// ParkPointsOnly makes a deterministic run choose only where a task parks,
// yields or ends, as a cooperative scheduler switches, rather than also
// before every operation on a primitive and every task start. It explores
// fewer interleavings, in fewer steps.
func ParkPointsOnly() Option {
	return func(s *Scheduler) { s.parkOnly = true }
}

// MaxSteps ends a deterministic run after n scheduling steps with a
// *StepLimitError: a run that keeps going that long is taken for a livelock.
// Its tasks are unwound, as in a deadlock. 0, the default, means no limit.
// It applies to deterministic mode only.
func MaxSteps(n uint64) Option {
	return func(s *Scheduler) { s.maxSteps = n }
}

// SimEpoch returns where the virtual clock of deterministic mode starts:
// midnight UTC on 1 January 2000.
func SimEpoch() time.Time { return simEpoch }

var simEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// RunStats describe a Run.
type RunStats struct {
	Steps    uint64        // scheduling steps: calls of Choose, in deterministic mode
	Checksum uint64        // a hash of every decision, in deterministic mode
	Virtual  time.Duration // virtual time elapsed, in deterministic mode
}

// LastRun returns the stats of the last Run that returned.
func (s *Scheduler) LastRun() RunStats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.last
}

// ErrDeterministic is what Await and NewFD return in deterministic mode.
var ErrDeterministic = errors.New("sched: real I/O in deterministic mode: it cannot be replayed")

// ErrStepLimit is what a *StepLimitError matches with errors.Is.
var ErrStepLimit = errors.New("sched: step limit")

// StepLimitError reports a deterministic run that reached its MaxSteps.
type StepLimitError struct {
	Steps    uint64
	Runnable int // tasks still runnable at the end
	// Tasks are the tasks left, by ID: a runnable one "waits on" nothing,
	// and WaitsOn says what it did last; a parked one, what it waits for.
	Tasks []ParkedTask
}

func (e *StepLimitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sched: step limit: still running after %d steps, with %d runnable tasks (a livelock?):", e.Steps, e.Runnable)
	writeParked(&b, e.Tasks, true)
	return b.String()
}

// Is reports whether target is ErrStepLimit.
func (e *StepLimitError) Is(target error) bool { return target == ErrStepLimit }

// sim is the state of a deterministic run. Only its one worker touches it,
// or the task that worker runs.
type sim struct {
	s        *state
	ch       Chooser
	clock    ClockChooser // ch, if it decides when time passes
	parkOnly bool         // ParkPointsOnly
	cur      *Task        // the task running, or the last that ran
	runnable []*Task
	step     uint64
	max      uint64
	sum      uint64
	now      int64 // virtual nanoseconds since SimEpoch
	watches  []*watch
	over     bool      // the step limit was reached, or the watchdog gave the run up
	dog      *watchdog // &watched, with a Watchdog; else nil
	watched  watchdog
	draws    uint64
	pcg      rand.PCG
	rng      *rand.Rand
}

func newSim(s *state, ch Chooser, max uint64, parkOnly bool) *sim {
	m := &sim{s: s, ch: ch, max: max, sum: fnvOffset, parkOnly: parkOnly}
	m.clock, _ = ch.(ClockChooser)
	m.rng = rand.New(&m.pcg)
	return m
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func (m *sim) mix(x uint64) { m.sum = (m.sum ^ x) * fnvPrime }

// choose takes the next task for w, the run's worker: the Chooser's pick
// among the runnable ones, after moving time on to the next timer if a
// ClockChooser says so.
func (m *sim) choose(w *worker) *Task {
	m.poll()
	n := len(m.runnable)
	if n == 0 {
		return nil
	}
	if m.max > 0 && m.step >= m.max || m.dog != nil && m.dog.fired.Load() {
		m.over = true
		return nil
	}
	if next := m.s.timers.next.Load(); next != never && m.clock != nil && m.clock.AdvanceClock(m.runnable, time.Duration(max(next-m.now, 0))) {
		m.step++
		m.mix(uint64(n))
		m.mix(clockStep)
		m.now = max(m.now, next)
		m.mix(uint64(m.now))
		m.s.runTimers(w)
		n = len(m.runnable)
		if m.max > 0 && m.step >= m.max {
			m.over = true
			return nil
		}
	}
	m.step++
	i := m.ch.Choose(m.runnable)
	if i < 0 || i >= n {
		panic(fmt.Sprintf("sched: Chooser chose %d among %d runnable tasks", i, n))
	}
	t := m.runnable[i]
	m.runnable[i] = m.runnable[n-1]
	m.runnable[n-1] = nil
	m.runnable = m.runnable[:n-1]
	m.mix(uint64(n))
	m.mix(t.id)
	m.mix(uint64(m.now))
	return t
}

// pointIn is a decision point (sim.point) for an operation that takes no
// task (Unlock, Close, Done, Signal): s is the run the primitive was last
// used in, or nil, and the running task is its worker's.
func pointIn(s *state) {
	if s != nil && s.mode == modeSim {
		s.sim.point(s.sim.cur)
	}
}

// left describes the tasks of a run stopped at its step limit, for the
// report, and makes each put its stack there when it is closed: a runnable
// one by what it did last, a parked one by what it waits on.
func (s *state) left() []ParkedTask {
	var tasks []*Task
	for c := range s.cos {
		if t := c.t; t != nil && t.state != stateDone && !t.frozen() {
			tasks = append(tasks, t)
		}
	}
	slices.SortFunc(tasks, func(a, b *Task) int { return cmp.Compare(a.id, b.id) })
	r := reportOn(tasks)
	for i, t := range tasks {
		if t.state != stateParked {
			r[i].WaitsOn = "nothing: runnable, last did " + cmp.Or(t.extra().lastOp, "nothing yet")
		}
	}
	return r
}

// clockStep is what a step that moves the clock adds to the checksum, where
// another adds the ID of the task it runs.
const clockStep = 1<<64 - 1

// point is a decision point of a deterministic run, before an operation of
// the running task on a primitive or the start of a task: the Chooser may
// run another task first, as a real scheduler may preempt there (and time
// may pass, for a ClockChooser). Where no choice is possible (nothing else
// can run, and no timer is pending for a ClockChooser) it is no step.
func (m *sim) point(t *Task) {
	if m.parkOnly || t == nil || t.state != stateRunning || t.co == nil || t.co.closing {
		return
	}
	if len(m.runnable) == 0 && (m.clock == nil || m.s.timers.next.Load() == never) {
		return
	}
	t.state = stateYielded
	t.suspend()
}

// shuffle shuffles order, which holds 0 to n-1, as rand.Perm would, with a
// generator seeded by the run's history.
func (m *sim) shuffle(order []int) {
	m.draws++
	m.pcg.Seed(m.sum, m.draws)
	m.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
}

// watch is a context wait of deterministic mode: instead of a callback on a
// goroutine of the context package (context.AfterFunc), which would run at
// a moment nobody controls, the worker looks at done at every step.
type watch struct {
	done <-chan struct{}
	f    func()
	dead bool
}

// poll runs the callbacks of the contexts that are done, in the order they
// were registered.
func (m *sim) poll() {
	if len(m.watches) == 0 {
		return
	}
	live := m.watches[:0]
	for _, w := range m.watches {
		if w.dead {
			continue
		}
		select {
		case <-w.done:
			w.dead = true
			w.f()
			continue
		default:
		}
		live = append(live, w)
	}
	clear(m.watches[len(live):])
	m.watches = live
}

// afterFunc is context.AfterFunc, or in deterministic mode a watch polled
// at every step. The stop function reports whether it stopped f from
// running.
func (s *state) afterFunc(ctx context.Context, f func()) (stop func() bool) {
	if s.sim == nil {
		return context.AfterFunc(ctx, f)
	}
	w := &watch{done: ctx.Done(), f: f}
	s.sim.watches = append(s.sim.watches, w)
	return func() bool {
		was := !w.dead
		w.dead = true
		return was
	}
}

// simClock is the virtual clock of deterministic mode.
type simClock struct{ m *sim }

func (c simClock) Now() time.Time { return simEpoch.Add(time.Duration(c.m.now)) }

// NewTimer is never called: an idle deterministic worker moves the clock
// itself.
func (c simClock) NewTimer(d time.Duration) ClockTimer { panic("sched: virtual timer") }

// simNext is find in modeSim: the chosen task, or, when
// none is runnable, the earliest timer's tasks after moving the clock to
// it. It returns nil when the run is over: every task ended, they are all
// parked (a deadlock), or the step limit was reached.
func (w *worker) simNext() *Task {
	s, m := w.s, w.s.sim
	for {
		if t := w.next(); t != nil {
			return t
		}
		if !m.over && s.timers.canWake() {
			// Nothing can run until a timer fires: time moves to it.
			m.now = max(m.now, s.timers.next.Load())
			s.runTimers(w)
			continue
		}
		var limit *StepLimitError
		if m.over {
			limit = &StepLimitError{Steps: m.step, Runnable: len(m.runnable), Tasks: s.left()}
		} else if unwind := s.stuck(); unwind != nil {
			s.unwindAll(unwind)
			continue
		}
		s.mu.Lock()
		s.endLocked(limit)
		s.mu.Unlock()
		return nil
	}
}
