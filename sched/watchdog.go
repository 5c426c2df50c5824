package sched

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Watchdog gives a deterministic run a real-time watchdog: if the run's
// steps stop for d, because a task ran that long without giving control
// back to the scheduler (a loop that neither yields nor parks, a receive
// from a Go channel, time.Sleep, a system call that blocks), Run returns a
// *WatchdogError instead of hanging. The error names the task, the step at
// which it was resumed and the virtual time then, and gives the stack of the
// goroutine that runs it. The watchdog fires between d and 1.25·d after the
// last step, not counting a moment in which the watchdog itself could not
// run (a machine too busy, a process stopped).
//
// Go cannot stop a goroutine from outside, so Run gives the run up: the
// task's goroutine is abandoned, spinning or blocked, and the run's other
// goroutines wait behind it. If the task ever gives control back, the run
// ends at its next step: its tasks are unwound as at a step limit (their
// deferred calls run, and may call the run's Tracer), its goroutines return,
// and the channel of WatchdogError.Ended is closed. If it never does, they
// stay until the program exits.
//
// A watched run costs a channel and a ticker, taken from a pool, and a few
// stores per step. The default, 0, is no watchdog. It applies to
// deterministic mode only; it panics if d < 0.
func Watchdog(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("sched: Watchdog(%v): need 0 or more", d))
	}
	return func(s *Scheduler) { s.watchdog = d }
}

// ErrWatchdog is what a *WatchdogError matches with errors.Is.
var ErrWatchdog = errors.New("sched: watchdog")

// WatchdogError reports a deterministic run given up by its Watchdog: its
// steps stopped for Limit of real time. Run returns it alone: the failures
// of the run's tasks until then are not gathered.
type WatchdogError struct {
	Limit   time.Duration
	Step    uint64        // the step at which the task was resumed, or 0
	Virtual time.Duration // the virtual time then, from SimEpoch
	// ID and Name are the task's, or 0 and "" if no task had run: the time
	// went in the scheduler's own calls (a Chooser, a Tracer).
	ID   uint64
	Name string
	// Stack is the stack of the goroutine that runs the task, as
	// runtime.Stack prints it, taken when the watchdog fired; nil if it
	// was not found.
	Stack []byte

	afterTask bool // the task had given control back: Stack is the worker's
	ended     <-chan struct{}
}

func (e *WatchdogError) Error() string {
	var b bytes.Buffer
	switch {
	case e.ID == 0:
		fmt.Fprintf(&b, "sched: watchdog: no step for %v of real time, before any task ran: a Chooser or a Tracer that does not return?", e.Limit)
	case e.afterTask:
		fmt.Fprintf(&b, "sched: watchdog: no step for %v of real time after task %s ran from step %d (virtual time +%v) and gave control back: a Chooser or a Tracer that does not return?",
			e.Limit, taskLabel(e.ID, e.Name), e.Step, e.Virtual)
	default:
		fmt.Fprintf(&b, "sched: watchdog: task %s ran for %v of real time without giving control back, from step %d (virtual time +%v): "+
			"a loop that neither yields nor parks, a Go channel, time.Sleep or a system call that blocks? The run was given up; its goroutine is abandoned",
			taskLabel(e.ID, e.Name), e.Limit, e.Step, e.Virtual)
	}
	if e.Stack != nil {
		fmt.Fprintf(&b, "\n\n%s", bytes.TrimSpace(e.Stack))
	}
	return b.String()
}

// Is reports whether target is ErrWatchdog.
func (e *WatchdogError) Is(target error) bool { return target == ErrWatchdog }

// Ended returns a channel that is closed when the run given up has ended:
// its task gave control back, the run's tasks were unwound and its
// goroutines have returned, or are returning. It is never closed if the task
// never gives control back.
func (e *WatchdogError) Ended() <-chan struct{} { return e.ended }

// watchdog watches a deterministic run: Run's goroutine waits for the run,
// whose worker ends it on its own goroutine (end), and looks every quarter
// of the limit at beats, which every resume of a task moves (wait).
//
// Rejected: recording the goroutine ID of each coroutine as it starts, to
// find its stack later (runtime.Stack of its own goroutine, then parsing):
// 1.6 µs a coroutine, a third of a small run. The stack is found instead by
// the address of the coroutine, which the traceback prints as the receiver
// of (*coroutine).Run, a frame every task's goroutine has.
type watchdog struct {
	limit time.Duration
	beats atomic.Uint64
	fired atomic.Bool // the run was given up: it ends at its next step
	done  chan struct{}
	err   error // the run's, once done is closed

	// What the report says: beat n writes recs[n%2] first, and the
	// watcher, having seen beats stop at n, copies it to last, then sets
	// fired, which the run looks at before each step and each beat. So a
	// beat that comes when the watcher fires writes the other record, and
	// the one after it sees fired and writes none.
	n    uint64
	recs [2]beatRecord
	last beatRecord
}

// beatRecord is where a run was at a beat.
type beatRecord struct {
	task *Task      // the task resumed, or nil
	co   *coroutine // the coroutine that runs it, or that the end of the run closes
	step uint64
	sum  uint64
	now  int64
}

// dog returns the run's watchdog, or nil.
func (s *state) dog() *watchdog {
	if s.sim == nil {
		return nil
	}
	return s.sim.dog
}

// resume makes t the running task: m.cur, and for a watchdog, a beat.
func (m *sim) resume(t *Task) {
	m.cur = t
	if m.dog != nil {
		m.dog.beat(m, t, t.co)
	}
}

// beat records that t runs on c from now on: a resume, or the close of c
// at the end of the run (t nil if c is free).
func (d *watchdog) beat(m *sim, t *Task, c *coroutine) {
	if d.fired.Load() {
		return
	}
	d.n++
	d.recs[d.n%2] = beatRecord{task: t, co: c, step: m.step, sum: m.sum, now: m.now}
	d.beats.Store(d.n)
}

// stats are the RunStats of the run: as of its last beat if it was given up,
// since its fields may still change.
func (m *sim) stats() RunStats {
	if d := m.dog; d != nil && d.fired.Load() {
		return RunStats{Steps: d.last.step, Checksum: d.last.sum, Virtual: time.Duration(d.last.now)}
	}
	return RunStats{Steps: m.step, Checksum: m.sum, Virtual: time.Duration(m.now)}
}

// watch gives m a watchdog of the given limit.
func (m *sim) watch(limit time.Duration) {
	m.watched = watchdog{limit: limit, done: make(chan struct{})}
	m.dog = &m.watched
}

// end ends the run on its worker's goroutine, once the worker's loop has
// returned: it unwinds the tasks left and gathers the errors (finish), and
// tells the watcher. Not on the watcher's: the tasks' deferred calls run
// there, and may hang too.
func (d *watchdog) end(s *state) {
	s.pool.wg.Wait()
	d.err = s.finish()
	close(d.done)
}

// tickers are the stopped tickers of watchers: a run of a few microseconds
// should not pay for a new one.
var tickers sync.Pool

// wait waits for the run, whose worker is w, to end (end) and returns its
// error; or, if its beats stop for the limit, gives it up and returns a
// *WatchdogError.
func (d *watchdog) wait(w *worker) error {
	period := max(d.limit/4, 1)
	tick, _ := tickers.Get().(*time.Ticker)
	if tick == nil {
		tick = time.NewTicker(period)
	} else {
		tick.Reset(period)
	}
	defer func() {
		tick.Stop() // and no tick is left to receive (Go 1.23)
		tickers.Put(tick)
	}()
	last, since, prev := d.beats.Load(), time.Now(), time.Now()
	for {
		select {
		case <-d.done:
			return d.err
		case <-tick.C:
		}
		now := time.Now()
		late := now.Sub(prev) > 2*period
		prev = now
		if b := d.beats.Load(); b != last || late {
			// A beat, or a tick so late that the run may not have had
			// the time to beat either: start counting again.
			last, since = b, now
			continue
		}
		if now.Sub(since) >= d.limit {
			d.last = d.recs[last%2]
			d.fired.Store(true)
			return d.report(w)
		}
	}
}

// report describes the run given up, at its last beat; w is its worker.
func (d *watchdog) report(w *worker) *WatchdogError {
	r := d.last
	e := &WatchdogError{Limit: d.limit, Step: r.step, Virtual: time.Duration(r.now), ended: d.done}
	if r.task != nil {
		e.ID, e.Name = r.task.id, r.task.name
	}
	all := allStacks()
	suspended := true
	if r.co != nil {
		e.Stack, suspended = goroutineOf(all, "sched.(*coroutine).Run", r.co)
	}
	if suspended {
		// No task's goroutine runs: the time went in the worker's, in the
		// scheduler's own calls.
		e.afterTask = r.task != nil
		e.Stack, _ = goroutineOf(all, "sched.(*worker).main", w)
	}
	return e
}

// allStacks returns the stacks of all goroutines, as runtime.Stack prints
// them.
func allStacks() []byte {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 64<<20 {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// goroutineOf returns, from all, the stack of the goroutine that has the
// frame fn with receiver p, and whether that goroutine is a coroutine that
// is switched out; or nil. Every task's goroutine has the frame
// "sched.(*coroutine).Run(0x…)", whose argument is its coroutine's address,
// and the worker's has "sched.(*worker).main(0x…, …)": the object is live,
// so no other has its address. The runtime prints the argument from where
// the function keeps it, with a "?" if it may be stale.
func goroutineOf(all []byte, fn string, p any) (stack []byte, suspended bool) {
	frame := fmt.Appendf(nil, "%s(%p", fn, p)
	for g := range bytes.SplitSeq(all, []byte("\n\n")) {
		i := bytes.Index(g, frame)
		if i < 0 {
			continue
		}
		if j := i + len(frame); j < len(g) && bytes.IndexByte([]byte("?,)"), g[j]) >= 0 {
			head, _, _ := bytes.Cut(g, []byte("\n"))
			return bytes.Clone(g), bytes.Contains(head, []byte("[coroutine"))
		}
	}
	return nil, false
}
