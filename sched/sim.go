package sched

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
//   - A virtual clock (WithClock is ignored) starts at SimEpoch() and moves only
//     when no task is runnable, straight to the earliest timer: an hour of
//     Sleep takes no real time.
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

// ErrDeterministic is what Await returns in deterministic mode.
var ErrDeterministic = errors.New("sched: Await in deterministic mode: real I/O cannot be replayed")

// ErrStepLimit is what a *StepLimitError matches with errors.Is.
var ErrStepLimit = errors.New("sched: step limit")

// StepLimitError reports a deterministic run that reached its MaxSteps.
type StepLimitError struct {
	Steps    uint64
	Runnable int // tasks still runnable at the end
}

func (e *StepLimitError) Error() string {
	return fmt.Sprintf("sched: step limit: still running after %d steps, with %d runnable tasks (a livelock?)", e.Steps, e.Runnable)
}

// Is reports whether target is ErrStepLimit.
func (e *StepLimitError) Is(target error) bool { return target == ErrStepLimit }

// sim is the state of a deterministic run. Only its one worker touches it,
// or the task that worker runs.
type sim struct {
	ch       Chooser
	runnable []*Task
	step     uint64
	max      uint64
	sum      uint64
	now      int64 // virtual nanoseconds since SimEpoch
	watches  []*watch
	over     bool // the step limit was reached
	draws    uint64
	pcg      rand.PCG
	rng      *rand.Rand
}

func newSim(ch Chooser, max uint64) *sim {
	m := &sim{ch: ch, max: max, sum: fnvOffset}
	m.rng = rand.New(&m.pcg)
	return m
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func (m *sim) mix(x uint64) { m.sum = (m.sum ^ x) * fnvPrime }

// choose takes the next task: the Chooser's pick among the runnable ones.
func (m *sim) choose() *Task {
	m.poll()
	n := len(m.runnable)
	if n == 0 {
		return nil
	}
	if m.max > 0 && m.step >= m.max {
		m.over = true
		return nil
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
			limit = &StepLimitError{Steps: m.step, Runnable: len(m.runnable)}
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
