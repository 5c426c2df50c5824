package simtest

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weavert/weave/sched"
)

// Strategy is how a run chooses the next task among the runnable ones, from
// a seed. Its zero value is Random(). A Strategy prints as the value that the
// -weave.strategy flag takes, and ParseStrategy reads it back.
type Strategy struct {
	depth int    // 0: uniform random; d >= 1: PCT of depth d
	steps uint64 // PCT: the expected length of a run; 0 to learn it
}

// Random returns the uniform random walk: at every step, each runnable task
// is equally likely to run next.
func Random() Strategy { return Strategy{} }

// PCT returns probabilistic concurrency testing of the given depth
// (Burckhardt, Kothari, Musuvathi and Nagarakatte, ASPLOS 2010). Each task
// gets a random priority when it is first seen runnable, and the runnable task
// of highest priority always runs. At depth-1 change points, chosen at random
// among the expected k steps of a run, the task about to run gets a priority
// below every other instead. A bug that needs d ordering constraints between
// n tasks is found with probability at least 1/(n·k^(d-1)) per run.
//
// Strict priorities never end a loop that yields until another task acts
// (a busy wait): a task that runs 16 times in a row while others are
// runnable drops below all of them, as a fair scheduler would let them run.
//
// Explore learns k: each run uses the most steps any earlier run of the same
// exploration took (100 for the first), and a Failure records the k its run
// used, so that a replay chooses exactly as the failing run did. PCT panics if
// depth < 1.
func PCT(depth int) Strategy {
	if depth < 1 {
		panic(fmt.Sprintf("simtest: PCT(%d): the depth must be at least 1", depth))
	}
	return Strategy{depth: depth}
}

// WithSteps returns s with its expected run length fixed at k steps, the k of
// PCT; it has no effect on Random. WithSteps(0) lets Explore learn k again.
func (s Strategy) WithSteps(k uint64) Strategy {
	if s.depth > 0 {
		s.steps = k
	}
	return s
}

// defaultSteps is PCT's k for a first run, before any run was measured.
const defaultSteps = 100

// String returns "random", "pct:D" or, with a fixed run length, "pct:D:K".
func (s Strategy) String() string {
	switch {
	case s.depth == 0:
		return "random"
	case s.steps == 0:
		return "pct:" + strconv.Itoa(s.depth)
	}
	return fmt.Sprintf("pct:%d:%d", s.depth, s.steps)
}

// ParseStrategy reads a Strategy as String prints it: "random", "pct:D" or
// "pct:D:K".
func ParseStrategy(text string) (Strategy, error) {
	if text == "random" {
		return Random(), nil
	}
	parts := strings.Split(text, ":")
	if parts[0] == "pct" && (len(parts) == 2 || len(parts) == 3) {
		d, err := strconv.Atoi(parts[1])
		if err == nil && d >= 1 {
			s := PCT(d)
			if len(parts) == 2 {
				return s, nil
			}
			if k, err := strconv.ParseUint(parts[2], 10, 64); err == nil {
				return s.WithSteps(k), nil
			}
		}
	}
	return Strategy{}, fmt.Errorf("simtest: strategy %q: want random, pct:DEPTH or pct:DEPTH:STEPS", text)
}

// Chooser returns the sched.Chooser of s for one run with the given seed,
// for use with sched.Deterministic. The same strategy and seed choose the
// same tasks for a program that is deterministic. A PCT strategy whose run
// length is not fixed assumes 100 steps.
func (s Strategy) Chooser(seed uint64) sched.Chooser {
	if s.depth == 0 {
		return &randomChooser{p: newPicker(seed)}
	}
	k := s.steps
	if k == 0 {
		k = defaultSteps
	}
	return &pctChooser{p: newPCT(seed, s.depth, k), clock: rand.NewPCG(seed, clockStream)}
}

// seedStream is the PCG stream of every strategy: a seed alone names a run.
// PCT's clock draws from clockStream.
const (
	seedStream  = 0x9e3779b97f4a7c15
	clockStream = 0xc2b2ae3d27d4eb4f
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seedStream)) }

// randomPicker is the uniform random walk, on the number of runnable tasks
// alone. Kept apart from sched's types so that tests can drive it.
type randomPicker struct{ pcg *rand.PCG }

func newPicker(seed uint64) randomPicker { return randomPicker{rand.NewPCG(seed, seedStream)} }

// pick returns a uniform index below n, by Lemire's multiply-and-reject.
func (r randomPicker) pick(n int) int {
	if n == 1 {
		return 0 // the step is still a decision: the stream need not move
	}
	bound := uint64(n)
	for {
		hi, lo := bits.Mul64(r.pcg.Uint64(), bound)
		if lo >= bound || lo >= -bound%bound {
			return int(hi)
		}
	}
}

type randomChooser struct{ p randomPicker }

func (c *randomChooser) Choose(runnable []*sched.Task) int { return c.p.pick(len(runnable)) }

// AdvanceClock: see clockMoves.
func (c *randomChooser) AdvanceClock(_ []*sched.Task, wait time.Duration) bool {
	return clockMoves(c.p.pcg, wait)
}

// quantum is the work a step stands for, in the model of time passing while
// tasks compute: every strategy moves the clock to a timer due in wait at a
// step with probability quantum/wait (always, for a timer due within a
// quantum). So a deadline of a millisecond passes in the middle of about a
// thousand steps of work, on average, and one of a nanosecond at the next
// step: a seed can place a timeout anywhere in the work it bounds, and
// does so about as often as a loaded machine would.
const quantum = time.Microsecond

func clockMoves(src rand.Source, wait time.Duration) bool {
	return wait <= quantum || src.Uint64()%uint64(wait) < uint64(quantum)
}

// pct is the state of one PCT run, on task IDs alone.
type pct struct {
	rng   *rand.Rand
	depth int
	step  uint64
	// change[i] is the step at which the task about to run drops to
	// priority changePriority+depth-2-i, below every first priority.
	change []uint64
	prio   []uint64 // by task ID; 0: not seen yet

	// A task run spin times in a row while others were runnable is a
	// task that yields in a loop, waiting for one of them: it drops below
	// every other task, to the priority sunk, which decreases.
	spin, streak int
	last, sunk   uint64
}

// Priorities: a task's first is at least firstPriority; the change points
// give changePriority+depth-2 down to changePriority; tasks dropped for
// spinning get sunkPriority-1, -2, and so on. 0 is "not seen yet".
const (
	firstPriority  = 1 << 62
	changePriority = 1 << 61
	sunkPriority   = 1 << 60
)

// spinLimit is how many times in a row PCT runs one task while others wait
// before it takes the task for a busy-waiting loop.
const spinLimit = 16

func newPCT(seed uint64, depth int, k uint64) *pct {
	p := &pct{rng: newRand(seed), depth: depth, spin: spinLimit, sunk: sunkPriority}
	// depth-1 distinct change points, uniform in [1, k]; fewer if k is
	// smaller than that.
	for len(p.change) < depth-1 && uint64(len(p.change)) < k {
		c := 1 + p.rng.Uint64N(k)
		if !slices.Contains(p.change, c) {
			p.change = append(p.change, c)
		}
	}
	return p
}

// priority returns the priority of task id, giving it a random one above
// every change-point priority on first sight. Ties (one chance in 2^62 per
// pair) go to the earlier runnable task.
func (p *pct) priority(id uint64) uint64 {
	for uint64(len(p.prio)) <= id {
		p.prio = append(p.prio, 0)
	}
	if p.prio[id] == 0 {
		p.prio[id] = firstPriority + p.rng.Uint64N(firstPriority)
	}
	return p.prio[id]
}

// pick returns the index in ids, the runnable tasks, of the one of highest
// priority, after lowering that task's priority if this step is a change
// point, or if it has run too many times in a row while others waited.
func (p *pct) pick(ids []uint64) int {
	p.step++
	best := p.highest(ids)
	for i, c := range p.change {
		if c == p.step {
			p.prio[ids[best]] = changePriority + uint64(p.depth-2-i)
			best = p.highest(ids)
		}
	}
	if b := ids[best]; b != p.last || len(ids) == 1 {
		p.last, p.streak = b, 1
	} else if p.streak++; p.streak > p.spin {
		p.sunk--
		p.prio[b] = p.sunk
		best = p.highest(ids)
		p.last, p.streak = ids[best], 1
	}
	return best
}

func (p *pct) highest(ids []uint64) int {
	best, bestPrio := 0, uint64(0)
	for i, id := range ids {
		if pr := p.priority(id); pr > bestPrio {
			best, bestPrio = i, pr
		}
	}
	return best
}

type pctChooser struct {
	p     *pct
	ids   []uint64  // the runnable tasks' IDs, reused from step to step
	clock *rand.PCG // for AdvanceClock
}

func (c *pctChooser) Choose(runnable []*sched.Task) int {
	c.ids = c.ids[:0]
	for _, t := range runnable {
		c.ids = append(c.ids, t.ID())
	}
	return c.p.pick(c.ids)
}

// AdvanceClock: see clockMoves. It draws from a stream of its own, so that
// the tasks' priorities and change points are those PCT would give without
// timers.
func (c *pctChooser) AdvanceClock(_ []*sched.Task, wait time.Duration) bool {
	return clockMoves(c.clock, wait)
}
