package simtest

import (
	"errors"
	"fmt"
	"time"

	"github.com/weavert/weave/sched"
)

// DefaultWatchdog is the real-time limit of every run unless Watchdog says
// otherwise.
const DefaultWatchdog = 10 * time.Second

// Watchdog ends a run whose steps stop for d of real time, and reports it as
// a failure (a *sched.WatchdogError, of kind "watchdog"): a task ran that
// long without giving control back to the scheduler. It spins in a loop
// that neither yields nor parks, receives from a Go channel, sleeps with
// time.Sleep or blocks in a system call: what a deterministic run cannot
// see, let alone replay. The failure names the task, the step and the
// virtual time, with the stack of the task's goroutine.
//
// Go cannot stop that goroutine: it is abandoned, spinning or blocked, and
// the run's other goroutines with it, until the test binary exits. If the
// task ever gives control back, the run ends at its next step and its
// goroutines return (sched.WatchdogError.Ended). A test that checks for
// leaked goroutines (goleak) after a watchdog failure should let the task
// go, as a test of the watchdog itself can, or ignore the goroutines that
// were there.
//
// The default is DefaultWatchdog; 0 means no watchdog. It panics if d < 0.
func Watchdog(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("simtest: Watchdog(%v): need 0 or more", d))
	}
	return optionFunc(func(c *config) { c.watchdog = d })
}

// stalled returns the *sched.WatchdogError of err, or nil.
func stalled(err error) *sched.WatchdogError {
	var we *sched.WatchdogError
	errors.As(err, &we)
	return we
}

// traceStalled traces f, a run that the watchdog gave up: a replay would
// stall at the same step, so the replay stops right before it, at a step
// limit; a line says what happened next.
func (c *config) traceStalled(body func(*sched.Task) error, f *Failure, we *sched.WatchdogError) {
	tr := tracer{keep: c.traceLines}
	if f.Steps > 1 {
		r := c.run(body, f.Strategy, f.Seed, tr.wrap, sched.WithTracer(&tr), sched.MaxSteps(f.Steps-1))
		if !errors.Is(r.err, sched.ErrStepLimit) || r.stats.Steps != f.Steps-1 {
			f.Replayed = fmt.Sprintf("it ended after %d steps, before the step at which the watchdog fired, with %v: the program is not deterministic (try CheckDeterminism)",
				r.stats.Steps, r.err)
		}
	}
	what := "the run makes no step"
	if we.ID != 0 {
		what = fmt.Sprintf("task %s runs, and does not give control back", taskLabel(we.ID, we.Name))
	}
	tr.add(fmt.Appendf(nil, "step %d +%v: %s: the watchdog gave the run up after %v\n", f.Steps, we.Virtual, what, we.Limit))
	f.Trace = tr.String()
}
