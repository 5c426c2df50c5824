package simtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/weavert/weave/coro"
	"github.com/weavert/weave/sched"
)

// Option configures Explore and Run. A Strategy is an Option too.
type Option interface{ apply(*config) }

type config struct {
	seeds      int
	first      uint64
	strategy   Strategy
	maxSteps   uint64
	checkDet   bool
	tracePath  string
	traceLines int
	parkOnly   bool
	watchdog   time.Duration
	shard      int // Shard(shard, shards): the seeds to run
	shards     int
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

func (s Strategy) apply(c *config) { c.strategy = s }

// DefaultSeeds is how many seeds Explore and Run try when no Seeds option
// is given.
const DefaultSeeds = 100

// DefaultMaxSteps is the step limit of every run unless MaxSteps says
// otherwise: a run that takes more is reported as a livelock.
const DefaultMaxSteps = 1_000_000

// Seeds sets how many seeds to try: FirstSeed, FirstSeed+1, and so on. It
// panics if n < 1.
func Seeds(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("simtest: Seeds(%d): need at least one", n))
	}
	return optionFunc(func(c *config) { c.seeds = n })
}

// FirstSeed sets the first seed to try; the default is 1. FirstSeed(s) with
// Seeds(1) replays seed s.
func FirstSeed(s uint64) Option { return optionFunc(func(c *config) { c.first = s }) }

// MaxSteps ends a run that takes more than n steps, and reports it as a
// failure (sched.ErrStepLimit): a livelock, or a loop that never parks.
// The default is DefaultMaxSteps; 0 means no limit.
func MaxSteps(n uint64) Option { return optionFunc(func(c *config) { c.maxSteps = n }) }

// CheckDeterminism runs every seed twice and compares the two runs step by
// step: which tasks were runnable, in what order, and which one ran; then
// their checksums, and how they ended: passed, or failed with what kind of
// failure and what error. A difference is a failure with a
// *NondeterminismError naming the first step that differs, or both ends. It
// finds programs whose scheduling or result depends on something a seed
// does not fix: the real clock, map iteration order, a goroutine outside the
// run, state kept from one run to the next.
func CheckDeterminism() Option { return optionFunc(func(c *config) { c.checkDet = true }) }

// ParkPointsOnly makes the runs choose only where a task parks, yields or
// ends (sched.ParkPointsOnly), as before every operation on a primitive and
// every task start. It explores fewer interleavings, in fewer steps: two
// tasks that take two free locks in opposite orders, with no wait between
// them, then never deadlock.
func ParkPointsOnly() Option { return optionFunc(func(c *config) { c.parkOnly = true }) }

// TraceFile makes a failure write the trace of the failing run to path:
// the scheduler's events, one a line, each with its step and virtual time.
func TraceFile(path string) Option { return optionFunc(func(c *config) { c.tracePath = path }) }

// DefaultTraceLines is how many events the trace of a failing run keeps
// unless TraceLines says otherwise: about a megabyte of text.
const DefaultTraceLines = 10_000

// TraceLines makes the trace of a failing run (Failure.Trace, TraceFile)
// keep its last n events, after a line that counts those it dropped: a run
// stopped by its step limit has millions. 0 keeps them all. The default is
// DefaultTraceLines. It panics if n < 0.
func TraceLines(n int) Option {
	if n < 0 {
		panic(fmt.Sprintf("simtest: TraceLines(%d): need 0 or more", n))
	}
	return optionFunc(func(c *config) { c.traceLines = n })
}

func newConfig(opts []Option) config {
	c := config{seeds: DefaultSeeds, first: 1, maxSteps: DefaultMaxSteps, traceLines: DefaultTraceLines, watchdog: DefaultWatchdog, shards: 1}
	for _, o := range opts {
		o.apply(&c)
	}
	return c
}

// Stats describe the runs of an exploration.
type Stats struct {
	Runs    int           // runs made, the failing one included
	Steps   uint64        // scheduling steps, over all runs
	Virtual time.Duration // virtual time that passed, over all runs
}

// Failure is the first failing run of an exploration: enough to replay it.
type Failure struct {
	Seed     uint64
	Run      int      // the run's place in the exploration (or its shard), from 1
	Strategy Strategy // as the run chose: a PCT strategy has its run length fixed
	Step     uint64   // the step at which the first task failed, or the run ended
	Steps    uint64   // the steps of the whole run
	Checksum uint64   // sched.RunStats.Checksum of the run
	Virtual  time.Duration
	Err      error  // what sched.Scheduler.Run returned, or a *NondeterminismError
	Trace    string // the run's last events, one a line (see TraceFile, TraceLines)
	// Replayed is empty when a second run of the seed, made to trace it,
	// ended as the first did; otherwise it says how it differed: it passed,
	// failed another way, or made other choices.
	Replayed string
}

// Kind names what went wrong, from the most specific: "nondeterminism",
// "watchdog", "step limit", "lock cycle", "leak", "deadlock", "panic" or
// "error".
func (f *Failure) Kind() string { return kindOf(f.Err) }

func kindOf(err error) string {
	var (
		nd *NondeterminismError
		lc *sched.LockCycleError
		pe *coro.PanicError
	)
	switch {
	case errors.As(err, &nd):
		return "nondeterminism"
	case errors.Is(err, sched.ErrWatchdog):
		return "watchdog"
	case errors.Is(err, sched.ErrStepLimit):
		return "step limit"
	case errors.As(err, &lc):
		return "lock cycle"
	case errors.Is(err, sched.ErrLeak):
		return "leak"
	case errors.Is(err, sched.ErrDeadlock):
		return "deadlock"
	case errors.As(err, &pe):
		return "panic"
	}
	return "error"
}

// Flags returns the flags of `go test` that replay f in a test that uses
// Run: "-weave.seed=N -weave.strategy=S".
func (f *Failure) Flags() string {
	return fmt.Sprintf("-weave.seed=%d -weave.strategy=%s", f.Seed, f.Strategy)
}

// Error describes the failure on its first line, then gives the run's error.
func (f *Failure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "simtest: %s at step %d of %d, seed %d (run %d), strategy %s, virtual time +%v, checksum %#016x",
		f.Kind(), f.Step, f.Steps, f.Seed, f.Run, f.Strategy, f.Virtual, f.Checksum)
	if f.Replayed != "" {
		fmt.Fprintf(&b, "\nthe replay differed: %s", f.Replayed)
	}
	fmt.Fprintf(&b, "\n%v", f.Err)
	return b.String()
}

// Unwrap returns the run's error.
func (f *Failure) Unwrap() error { return f.Err }

// Explore runs body as the main task of a deterministic scheduler, once per
// seed, and returns the first failing run, or nil if every run succeeded. A
// run fails when sched.Scheduler.Run returns an error: body or a task it
// started returned an error or panicked, tasks deadlocked, a Lock closed a
// wait-for cycle, a Group's tasks left tasks parked behind them (a leak),
// the run exceeded MaxSteps, or a task kept its goroutine past the
// Watchdog's limit. With CheckDeterminism, a seed whose two runs differ is a
// failure too.
//
// Body must be deterministic apart from the scheduling: no real clock, no map
// order, no goroutines or I/O (Await refuses to run in a deterministic run).
// It must not keep state from one run to the next.
func Explore(body func(*sched.Task) error, opts ...Option) (*Failure, Stats) {
	c := newConfig(opts)
	var stats Stats
	var learned uint64 // the most steps of a run so far
	for i := c.shard; i < c.seeds; i += c.shards {
		seed := c.first + uint64(i)
		strat := c.strategy
		if strat.depth > 0 && strat.steps == 0 {
			strat = strat.WithSteps(cmp.Or(learned, defaultSteps))
		}
		var rec *recorder
		var wrap func(sched.Chooser) sched.Chooser
		if c.checkDet {
			rec = &recorder{}
			wrap = rec.wrap
		}
		r := c.run(body, strat, seed, wrap)
		stats.Runs++
		stats.Steps += r.stats.Steps
		stats.Virtual += r.stats.Virtual
		learned = max(learned, r.stats.Steps)
		var nd *NondeterminismError
		if c.checkDet && stalled(r.err) == nil { // a second run would stall again
			nd = c.compare(body, strat, seed, r, rec)
		}
		if r.err == nil && nd == nil {
			continue
		}
		f := &Failure{
			Seed: seed, Run: stats.Runs, Strategy: strat, Step: r.stats.Steps, Steps: r.stats.Steps,
			Checksum: r.stats.Checksum, Virtual: r.stats.Virtual, Err: r.err,
		}
		if nd != nil {
			f.Err = nd
			f.Step = cmp.Or(nd.Step, f.Step)
			return f, stats
		}
		c.trace(body, f)
		return f, stats
	}
	return nil, stats
}

// outcome is the end of one run.
type outcome struct {
	err   error
	stats sched.RunStats
}

// run runs body once with the chooser of strat and seed, wrapped by wrap if
// it is not nil, and with the given extra options.
func (c *config) run(body func(*sched.Task) error, strat Strategy, seed uint64, wrap func(sched.Chooser) sched.Chooser, extra ...sched.Option) outcome {
	ch := strat.Chooser(seed)
	if wrap != nil {
		ch = wrap(ch)
	}
	opts := []sched.Option{sched.Deterministic(ch), sched.MaxSteps(c.maxSteps), sched.Watchdog(c.watchdog)}
	if c.parkOnly {
		opts = append(opts, sched.ParkPointsOnly())
	}
	s := sched.New(append(opts, extra...)...)
	ri := &runInfo{seed: seed}
	if tr, ok := ch.(*tracer); ok {
		ri.log = tr.fault
	}
	err := s.RunContext(context.WithValue(context.Background(), runKey{}, ri), func(t *sched.Task) error {
		defer ri.stop(t) // the worlds the body made stop with it
		return body(t)
	})
	return outcome{err, s.LastRun()}
}

// trace runs f's seed again with a tracer, to find the step of the first
// failure and record the run's events, and checks that it ended the same;
// then writes the trace to its file, if asked to.
func (c *config) trace(body func(*sched.Task) error, f *Failure) {
	if we := stalled(f.Err); we != nil {
		c.traceStalled(body, f, we)
	} else {
		c.traceFailed(body, f)
	}
	if c.tracePath != "" {
		if err := os.WriteFile(c.tracePath, []byte(f.Trace), 0o644); err != nil {
			f.Err = errors.Join(f.Err, fmt.Errorf("simtest: writing the trace: %w", err))
		}
	}
}

// traceFailed traces f, a run that ended.
func (c *config) traceFailed(body func(*sched.Task) error, f *Failure) {
	tr := tracer{keep: c.traceLines}
	r := c.run(body, f.Strategy, f.Seed, tr.wrap, sched.WithTracer(&tr))
	f.Trace = tr.String()
	if tr.failedAt != 0 {
		f.Step = tr.failedAt
	}
	switch {
	case r.stats.Checksum != f.Checksum:
		f.Replayed = fmt.Sprintf("checksum %#016x after %d steps, against %#016x after %d: the program is not deterministic (try CheckDeterminism)",
			r.stats.Checksum, r.stats.Steps, f.Checksum, f.Steps)
	case r.err == nil:
		f.Replayed = "it passed: the failure depends on something the seed does not fix (the real clock, state kept from run to run, map order): the program is not deterministic (try CheckDeterminism)"
	case kindOf(r.err) != f.Kind():
		f.Replayed = fmt.Sprintf("it ended with a %s instead: %v", kindOf(r.err), r.err)
	case ending(r.err) != ending(f.Err):
		f.Replayed = fmt.Sprintf("it failed otherwise: %v", r.err)
	}
}
