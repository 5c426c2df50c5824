package simtest

import (
	"errors"
	"flag"
	"fmt"
	"hash/maphash"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/weavert/weave/sched"
)

// ErrNotLinearizable is the error of CheckLinearizable, wrapped with its
// explanation, when no order of the operations fits both the model and the
// order of the events.
var ErrNotLinearizable = errors.New("simtest: history not linearizable")

// ErrUndecided is the error of CheckLinearizable, wrapped with the part of
// the history it stopped at, when the check ran out of steps before it
// reached a verdict: the history may or may not be linearizable.
var ErrUndecided = errors.New("simtest: linearizability undecided")

// DefaultCheckSteps bounds CheckLinearizable unless CheckSteps says
// otherwise: a million calls of the model's Step, about half a second for
// KV.
const DefaultCheckSteps = 1_000_000

// A Model is the sequential specification that CheckLinearizable judges a
// History against: a state machine whose states are values of S, fed inputs
// of type I, answering outputs of type O. KV is one, for a key-value store.
//
// States and outputs are compared with ==, and states hashed as map keys
// are. A state that holds a slice or a map is encoded instead, as a string
// or as a pointer to data that never changes (== then compares pointers:
// the check is still right, only slower).
type Model[S comparable, I any, O comparable] struct {
	// Init is the state before any operation.
	Init S
	// Step applies the input in to state, as the object would if it ran
	// one operation at a time, and returns the new state and the output it
	// would give. The output of an operation that returned must be this
	// one, by ==. Step must be a function of its arguments and must not
	// change what state refers to: the check keeps states, to come back to
	// them. Required.
	Step func(state S, in I) (S, O)
	// Partition, if not nil, names the independent part of the object that
	// an input touches, such as a key of a key-value store. The operations
	// of each part are then checked apart, each from Init: a history is
	// linearizable if and only if the history of each part is, and the
	// check is much faster for it. Only for objects whose parts share
	// nothing (no operation that reads or writes two keys).
	Partition func(in I) string
	// Describe, if not nil, shows an operation that returned out in
	// reports, as `Get("x") -> "1"`. The default is "in -> out", with
	// strings quoted.
	Describe func(in I, out O) string
}

// A CheckOption configures CheckLinearizable.
type CheckOption func(*checkConfig)

type checkConfig struct {
	steps int
	file  string
}

// CheckSteps bounds CheckLinearizable to n calls of the model's Step, over
// all the partitions; past it, the check returns ErrUndecided. The default
// is DefaultCheckSteps. It panics if n < 1.
//
// Deciding linearizability is NP-complete, and a history with many
// concurrent operations on one part of the object can take the checker
// very long. A bound in steps rather than in time keeps the verdict a
// function of the history: a seed replays to the same verdict, on any
// machine, under the race detector too.
func CheckSteps(n int) CheckOption {
	if n < 1 {
		panic(fmt.Sprintf("simtest: CheckSteps(%d): need at least one", n))
	}
	return func(c *checkConfig) { c.steps = n }
}

// HistoryFile makes a failing CheckLinearizable write the part of the
// history that is not linearizable to path, as a web page (porcupine's
// visualization): each client's operations on a time line, the longest
// linearizable prefix, and the operations that cannot come next. The flag
// -weave.history=FILE of `go test` overrides it.
func HistoryFile(path string) CheckOption {
	return func(c *checkConfig) { c.file = path }
}

var flagHistory = flag.String("weave.history", "", "simtest: write the history of a failing linearizability check to `file`, as a web page")

// CheckLinearizable reports whether the operations recorded in h are
// linearizable with respect to the model m: whether they could have taken
// effect one at a time, each at some instant between its call and its
// return, in an order in which m gives every returned operation the output
// it returned. Pending operations may take effect at any instant after
// their call, or not at all; failed ones are left out (see History).
//
// It returns nil if they are, an error wrapping ErrNotLinearizable if not,
// and one wrapping ErrUndecided if the check ran out of steps (CheckSteps).
// The first names the part of the object (m.Partition) whose operations no
// order explains, the longest order of them that m accepts, the state it
// leaves, and each operation that could come next with the output m would
// give it instead. The verdict and the error are functions of the history.
//
// The checker is porcupine (github.com/anishathalye/porcupine), after
// Lowe's and Horn and Kroening's algorithms. CheckLinearizable may be
// called at any time, usually once the clients are done, from a task or
// not; it checks the operations recorded until then, and starts a
// goroutine for each part while it runs. A panic of m.Step there comes back
// as a panic of CheckLinearizable, with the value and the stack.
func CheckLinearizable[S comparable, I any, O comparable](h *History[I, O], m Model[S, I, O], opts ...CheckOption) error {
	if m.Step == nil {
		panic("simtest: CheckLinearizable: the Model has no Step")
	}
	c := checkConfig{steps: DefaultCheckSteps}
	for _, o := range opts {
		o(&c)
	}
	if *flagHistory != "" {
		c.file = *flagHistory
	}
	recs, last := h.snapshot()
	ch := checker[S, I, O]{m: m, recs: recs, budget: c.steps}
	ch.seed = maphash.MakeSeed()
	for _, p := range ch.partition(last) {
		res, _ := ch.check(p, false)
		switch {
		case ch.panicked != nil:
			panic(fmt.Sprintf("simtest: CheckLinearizable: the Model's Step panicked: %v\n\n%s", ch.panicked, ch.stack))
		case res == porcupine.Ok:
			continue
		case ch.spent:
			return fmt.Errorf("%w: %s: the check stopped after %d steps of the model (CheckSteps)",
				ErrUndecided, ch.describePart(p), c.steps)
		}
		// Check again, keeping what the visualization and the explanation
		// need; the search is the same, in as many steps.
		ch.budget = c.steps
		_, info := ch.check(p, true)
		err := fmt.Errorf("%w: %s", ErrNotLinearizable, ch.explain(p, info, c.file))
		if c.file != "" {
			if werr := porcupine.VisualizePath(ch.model(false), info, c.file); werr != nil {
				err = errors.Join(err, fmt.Errorf("simtest: writing the history: %w", werr))
			}
		}
		return err
	}
	return nil
}

// checker checks a History's operations against a Model.
type checker[S comparable, I any, O comparable] struct {
	m      Model[S, I, O]
	recs   []record[I, O]
	seed   maphash.Seed
	budget int  // the steps of the model left
	spent  bool // the last check ran out of steps
	// A panic of the model, on porcupine's goroutine, and its stack.
	panicked any
	stack    []byte
}

// part is the operations of one partition, as porcupine takes them, in the
// order of their calls; ops[i].Metadata is the index of its record.
type part struct {
	key    string
	ops    []porcupine.Operation
	failed int // operations that failed, left out
}

// answer is the output of an operation, as porcupine sees it: a pending
// operation's output is unknown.
type answer[O any] struct {
	out   O
	known bool
}

// partition groups the operations that did not fail by partition, in the
// order of the partitions' first calls. A pending operation returns after
// the last event, at last+1, last+2, ..., in the order of the calls, so
// that no two events share a number.
func (ch *checker[S, I, O]) partition(last int64) []part {
	var parts []part
	index := map[string]int{}
	clients := map[uint64]int{} // task IDs, numbered from 0 for the visualization
	for i, r := range ch.recs {
		key := ""
		if ch.m.Partition != nil {
			key = ch.m.Partition(r.in)
		}
		p, ok := index[key]
		if !ok {
			p = len(parts)
			index[key] = p
			parts = append(parts, part{key: key})
		}
		if r.failed {
			parts[p].failed++
			continue
		}
		client, ok := clients[r.task]
		if !ok {
			client = len(clients)
			clients[r.task] = client
		}
		ret := r.ret
		if ret == 0 {
			last++
			ret = last
		}
		parts[p].ops = append(parts[p].ops, porcupine.Operation{
			ClientId: client, Input: r.in, Call: r.call,
			Output: answer[O]{r.out, r.ret != 0}, Return: ret, Metadata: i,
		})
	}
	return parts
}

// check checks p, within the budget, and with the information the
// visualization takes if verbose.
func (ch *checker[S, I, O]) check(p part, verbose bool) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	ch.spent = false
	model := ch.model(true)
	if verbose {
		return porcupine.CheckOperationsVerbose(model, p.ops, 0)
	}
	return porcupine.CheckOperationsTimeout(model, p.ops, 0), porcupine.LinearizationInfo{}
}

// model returns m as a porcupine model. If bounded, each
// step spends one of the budget, and once it is spent every step fails, so
// that the search ends at once: porcupine then reports Illegal, which spent
// says not to trust. An Ok never rests on a failed step.
//
// Porcupine runs the steps on a goroutine of its own, and returns after that
// goroutine has sent its verdict, so that budget, spent and panicked need no
// lock. A panic there would end the program: it fails the step instead, and
// CheckLinearizable raises it again in its caller.
func (ch *checker[S, I, O]) model(bounded bool) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return ch.m.Init },
		Step: func(state, input, output any) (ok bool, next any) {
			if bounded {
				if ch.budget == 0 || ch.panicked != nil {
					ch.spent = true
					return false, state
				}
				ch.budget--
			}
			defer ch.recover(&ok)
			next, want := ch.m.Step(state.(S), input.(I))
			o := output.(answer[O])
			return !o.known || o.out == want, next
		},
		Hash: func(state any) (h uint64) {
			defer ch.recover(nil)
			return maphash.Comparable(ch.seed, state.(S))
		},
		DescribeOperation: func(input, output any) string {
			o := output.(answer[O])
			if !o.known {
				return ch.describePending(input.(I))
			}
			return ch.describe(input.(I), o.out)
		},
		DescribeState: func(state any) string { return show(state) },
		DescribeOperationMetadata: func(info any) string {
			return ch.describeTimes(info.(int), true)
		},
	}
}

// recover records a panic of the model, and fails the step if ok is not nil.
func (ch *checker[S, I, O]) recover(ok *bool) {
	r := recover()
	if r == nil {
		return
	}
	if ch.panicked == nil {
		ch.panicked, ch.stack = r, debug.Stack()
	}
	if ok != nil {
		*ok = false
	}
}

// explain says why p is not linearizable, from the partial linearizations
// in info: the longest one, the state it leads to, and the operations that
// could come next, none of which the model accepts.
func (ch *checker[S, I, O]) explain(p part, info porcupine.LinearizationInfo, file string) string {
	var prefix []int // indices in p.ops
	// The longest, and of those the first in the order of the ids: the
	// partial linearizations come from a map.
	for _, l := range info.PartialLinearizations()[0] {
		if len(l) > len(prefix) || len(l) == len(prefix) && slices.Compare(l, prefix) < 0 {
			prefix = l
		}
	}
	state := ch.m.Init
	done := make([]bool, len(p.ops))
	for _, i := range prefix {
		state, _ = ch.m.Step(state, p.ops[i].Input.(I))
		done[i] = true
	}
	// An operation can come next if it was called before every other
	// operation left returned.
	first := int64(-1)
	for i, op := range p.ops {
		if !done[i] && (first < 0 || op.Return < first) {
			first = op.Return
		}
	}
	var next, rest []int
	for i, op := range p.ops {
		switch {
		case done[i]:
		case op.Call < first:
			next = append(next, i)
		default:
			rest = append(rest, i)
		}
	}

	// Times are shown if any passed.
	timed := false
	for _, op := range p.ops {
		r := ch.recs[op.Metadata.(int)]
		timed = timed || r.callAt != ch.recs[p.ops[0].Metadata.(int)].callAt || r.ret != 0 && r.retAt != r.callAt
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%s: no order of them fits the model and the order of events", ch.describePart(p))
	const most = 10 // operations shown in each list
	if len(prefix) == 0 {
		fmt.Fprintf(&b, "\nno operation fits first, from the initial state %s:", show(state))
	} else {
		fmt.Fprintf(&b, "\nthe longest order that fits takes %d of them, and leaves the state %s", len(prefix), show(state))
		if len(prefix) > most {
			fmt.Fprintf(&b, "; its last %d:", most)
		} else {
			b.WriteString(":")
		}
		for _, i := range prefix[max(0, len(prefix)-most):] {
			fmt.Fprintf(&b, "\n\t%s", ch.line(p, i, timed))
		}
		b.WriteString("\nnone of the operations that could come next fits:")
	}
	for _, i := range next {
		fmt.Fprintf(&b, "\n\t%s", ch.line(p, i, timed))
		_, want := ch.m.Step(state, p.ops[i].Input.(I))
		if o := p.ops[i].Output.(answer[O]); !o.known || o.out == want {
			b.WriteString("\n\t\tthe model accepts it, but no order goes on from there")
		} else {
			fmt.Fprintf(&b, "\n\t\tthe model answers %s", ch.describe(p.ops[i].Input.(I), want))
		}
	}
	if len(rest) > 0 {
		fmt.Fprintf(&b, "\nthe %d other operations, by call:", len(rest))
		for _, i := range rest[:min(len(rest), most)] {
			fmt.Fprintf(&b, "\n\t%s", ch.line(p, i, timed))
		}
		if len(rest) > most {
			fmt.Fprintf(&b, "\n\t... and %d more", len(rest)-most)
		}
	}
	if file != "" {
		fmt.Fprintf(&b, "\nhistory: %s", file)
	} else {
		b.WriteString("\nadd -weave.history=FILE to see this history in a browser")
	}
	return b.String()
}

// describePart names p, and counts its operations.
func (ch *checker[S, I, O]) describePart(p part) string {
	pending := 0
	for _, op := range p.ops {
		if !op.Output.(answer[O]).known {
			pending++
		}
	}
	var b strings.Builder
	if ch.m.Partition != nil {
		fmt.Fprintf(&b, "partition %q: ", p.key)
	}
	fmt.Fprintf(&b, "%d operation", len(p.ops))
	if len(p.ops) != 1 {
		b.WriteString("s")
	}
	switch {
	case pending > 0 && p.failed > 0:
		fmt.Fprintf(&b, " (%d never returned), and %d that failed, left out", pending, p.failed)
	case pending > 0:
		fmt.Fprintf(&b, " (%d never returned)", pending)
	case p.failed > 0:
		fmt.Fprintf(&b, ", and %d that failed, left out", p.failed)
	}
	return b.String()
}

// line describes the operation p.ops[i] on one line: its events, its task,
// its times if timed, and what it did.
func (ch *checker[S, I, O]) line(p part, i int, timed bool) string {
	op := p.ops[i]
	r := ch.recs[op.Metadata.(int)]
	who := ch.describeTimes(op.Metadata.(int), timed)
	if r.ret == 0 {
		return fmt.Sprintf("events %d-: %s: %s", r.call, who, ch.describePending(r.in))
	}
	return fmt.Sprintf("events %d-%d: %s: %s", r.call, r.ret, who, ch.describe(r.in, r.out))
}

// describeTimes names the task of the operation recs[i], and gives its
// times if timed.
func (ch *checker[S, I, O]) describeTimes(i int, timed bool) string {
	r := ch.recs[i]
	who := fmt.Sprintf("task %d", r.task)
	if r.name != "" {
		who += " (" + r.name + ")"
	}
	switch {
	case !timed:
		return who
	case r.ret == 0 || r.retAt == r.callAt:
		return fmt.Sprintf("%s, %s", who, at(r.callAt))
	}
	return fmt.Sprintf("%s, %s to %s", who, at(r.callAt), at(r.retAt))
}

func (ch *checker[S, I, O]) describe(in I, out O) string {
	if ch.m.Describe != nil {
		return ch.m.Describe(in, out)
	}
	return show(in) + " -> " + show(out)
}

func (ch *checker[S, I, O]) describePending(in I) string {
	return show(in) + ", never returned"
}

// show formats v for a report: strings quoted, other values with %v.
func show(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

// at formats an instant of a task's clock, given since sched.SimEpoch: in a
// deterministic run, as the time since the run began, as the trace shows it.
func at(d time.Duration) string {
	if d >= 0 && d < 1000*time.Hour {
		return fmt.Sprintf("+%v", d)
	}
	return sched.SimEpoch().Add(d).Format("15:04:05.000000")
}
