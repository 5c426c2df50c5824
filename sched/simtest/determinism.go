package simtest

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/weavert/weave/sched"
)

// NondeterminismError reports that two runs of the same seed chose
// differently: something other than the seed decided which tasks were
// runnable, in what order, or which one ran.
type NondeterminismError struct {
	Seed          uint64
	Step          uint64   // the first step that differs, from 1
	First, Second Decision // that step in each run
	// When the two runs made the same choices but ended differently: how
	// each ended, "passed" or the kind of its failure and its error.
	FirstEnd, SecondEnd string
}

// Decision is one scheduling step: the runnable tasks, in the order the
// scheduler offered them, and the one that ran, or 0 if the step moved the
// clock to the next timer instead (sched.ClockChooser). A run that had ended
// before the step has no runnable tasks.
type Decision struct {
	Runnable []uint64
	Ran      uint64
}

func (d Decision) String() string {
	switch {
	case len(d.Runnable) == 0:
		return "the run had ended"
	case d.Ran == 0:
		return fmt.Sprintf("moved the clock, with %v runnable", d.Runnable)
	}
	return fmt.Sprintf("ran task %d of %v", d.Ran, d.Runnable)
}

func (e *NondeterminismError) Error() string {
	switch {
	case e.Step == 0 && e.FirstEnd != e.SecondEnd:
		return fmt.Sprintf("simtest: seed %d is not deterministic: the two runs made the same choices but ended differently:\nthe first %s\nthe second %s",
			e.Seed, e.FirstEnd, e.SecondEnd)
	case e.Step == 0:
		return fmt.Sprintf("simtest: seed %d is not deterministic: the two runs made the same choices but their checksums differ", e.Seed)
	}
	return fmt.Sprintf("simtest: seed %d is not deterministic: step %d differs: the first run %s, the second %s",
		e.Seed, e.Step, e.First, e.Second)
}

// recorder is a chooser that records every decision of the one it wraps.
type recorder struct {
	inner sched.Chooser
	ids   []uint64 // the runnable IDs of every step, one after the other
	ends  []int    // ids[ends[i-1]:ends[i]] are step i's
	ran   []uint64
}

func (r *recorder) Choose(runnable []*sched.Task) int {
	i := r.inner.Choose(runnable)
	r.record(runnable, runnable[i].ID())
	return i
}

// AdvanceClock records the clock's moves as steps of their own.
func (r *recorder) AdvanceClock(runnable []*sched.Task, wait time.Duration) bool {
	cc, ok := r.inner.(sched.ClockChooser)
	if !ok || !cc.AdvanceClock(runnable, wait) {
		return false
	}
	r.record(runnable, 0)
	return true
}

func (r *recorder) record(runnable []*sched.Task, ran uint64) {
	for _, t := range runnable {
		r.ids = append(r.ids, t.ID())
	}
	r.ends = append(r.ends, len(r.ids))
	r.ran = append(r.ran, ran)
}

func (r *recorder) decision(step int) Decision {
	if step >= len(r.ends) {
		return Decision{}
	}
	from := 0
	if step > 0 {
		from = r.ends[step-1]
	}
	return Decision{Runnable: r.ids[from:r.ends[step]], Ran: r.ran[step]}
}

func (r *recorder) wrap(ch sched.Chooser) sched.Chooser {
	r.inner = ch
	return r
}

// compare runs seed a second time, recording, and returns how that run
// differs from the first, recorded by a, or nil.
func (c *config) compare(body func(*sched.Task) error, strat Strategy, seed uint64, first outcome, a *recorder) *NondeterminismError {
	b := &recorder{}
	second := c.run(body, strat, seed, b.wrap)
	for step := range max(len(a.ran), len(b.ran)) {
		da, db := a.decision(step), b.decision(step)
		if da.Ran != db.Ran || !slices.Equal(da.Runnable, db.Runnable) {
			return &NondeterminismError{Seed: seed, Step: uint64(step) + 1, First: da, Second: db}
		}
	}
	if first.stats.Checksum != second.stats.Checksum {
		return &NondeterminismError{Seed: seed}
	}
	if a, b := ending(first.err), ending(second.err); a != b {
		return &NondeterminismError{Seed: seed, FirstEnd: a, SecondEnd: b}
	}
	return nil
}

// ending describes how a run ended, to compare two runs of a seed: "passed",
// or the kind of its failure and its error's text. What differs between two
// runs of a deterministic program is blanked out of the text: the addresses
// and the goroutine numbers that errors and stacks show.
func ending(err error) string {
	if err == nil {
		return "passed"
	}
	msg := hexRE.ReplaceAllLiteralString(err.Error(), "0x…")
	return kindOf(err) + ": " + goroutineRE.ReplaceAllLiteralString(msg, "goroutine …")
}

var (
	hexRE       = regexp.MustCompile(`0x[0-9a-f]+\??`)
	goroutineRE = regexp.MustCompile(`goroutine [0-9]+`)
)
