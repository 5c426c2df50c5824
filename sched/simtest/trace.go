package simtest

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/weavert/weave/sched"
)

// tracer is the chooser and the sched.Tracer of a traced run: it counts the
// steps, so that each event carries the step it happened in, and writes the
// events as text, one a line:
//
//	step 12 +1.5s: task 3 (worker) parks: sched.Mutex #2 held by task 1 (main)
//
// The run has one thread, so the methods are never called at once.
type tracer struct {
	inner    sched.Chooser
	step     uint64
	start    time.Time
	started  bool
	failedAt uint64 // the step of the first task that failed; 0: none yet
	// clockMoves: the last step moved the clock while tasks could run;
	// the next event, which the timer causes, says so first.
	clockMoves bool
	b          strings.Builder
	// The objects tasks wait on are named #1, #2, ... in the order they
	// first appear, rather than by their addresses, so that the trace of a
	// replay is the same text: addresses change from run to run.
	numbers map[string]string // by address
}

// name is the stable name of obj, an object a task waits on.
func (tr *tracer) name(obj any) string {
	return fmt.Sprintf("%T %s", obj, tr.number(fmt.Sprintf("%p", obj)))
}

// number returns the stable number of the object at addr.
func (tr *tracer) number(addr string) string {
	if tr.numbers == nil {
		tr.numbers = map[string]string{}
	}
	n, ok := tr.numbers[addr]
	if !ok {
		n = fmt.Sprintf("#%d", len(tr.numbers)+1)
		tr.numbers[addr] = n
	}
	return n
}

// An error's text names objects by their addresses (a lock cycle's
// Mutexes): the same numbers replace them there.
var addrRE = regexp.MustCompile(`0x[0-9a-f]{6,}`)

func (tr *tracer) Choose(runnable []*sched.Task) int {
	tr.step++
	return tr.inner.Choose(runnable)
}

// AdvanceClock counts the clock's moves as steps, and writes them.
func (tr *tracer) AdvanceClock(runnable []*sched.Task, wait time.Duration) bool {
	cc, ok := tr.inner.(sched.ClockChooser)
	if !ok || !cc.AdvanceClock(runnable, wait) {
		return false
	}
	tr.step++
	tr.clockMoves = true
	return true
}

func (tr *tracer) event(t *sched.Task, format string, args ...any) {
	now := t.Now()
	if !tr.started {
		tr.start, tr.started = now, true
	}
	if tr.clockMoves {
		tr.clockMoves = false
		fmt.Fprintf(&tr.b, "step %d +%v: the clock moves to the next timer, while tasks could still run\n", tr.step, now.Sub(tr.start))
	}
	fmt.Fprintf(&tr.b, "step %d +%v: task %s ", tr.step, now.Sub(tr.start), label(t))
	fmt.Fprintf(&tr.b, format, args...)
	tr.b.WriteByte('\n')
}

// fault writes a fault of a simulated world, which happened at now.
func (tr *tracer) fault(now time.Time, line string) {
	if !tr.started {
		tr.start, tr.started = now, true
	}
	fmt.Fprintf(&tr.b, "step %d +%v: %s\n", tr.step, now.Sub(tr.start), line)
}

func label(t *sched.Task) string {
	if t.Name() == "" {
		return fmt.Sprint(t.ID())
	}
	return fmt.Sprintf("%d (%s)", t.ID(), t.Name())
}

func (tr *tracer) Spawn(t, parent *sched.Task) {
	if parent == nil {
		tr.event(t, "starts the run")
		return
	}
	tr.event(t, "spawned by task %s", label(parent))
}

func (tr *tracer) Resume(t *sched.Task, _ int) { tr.event(t, "runs") }

func (tr *tracer) Park(t *sched.Task, why sched.WaitReason) {
	tr.event(t, "parks: %s", why.Format(tr.name))
}

func (tr *tracer) Rewait(t *sched.Task, why sched.WaitReason) {
	tr.event(t, "waits now: %s", why.Format(tr.name))
}

func (tr *tracer) Wake(t, by *sched.Task) {
	if by == nil {
		tr.event(t, "wakes")
		return
	}
	tr.event(t, "wakes, woken by task %s", label(by))
}

func (tr *tracer) Done(t *sched.Task, err error) {
	if err == nil {
		tr.event(t, "ends")
		return
	}
	if tr.failedAt == 0 {
		tr.failedAt = max(tr.step, 1)
	}
	// The error without the stacks that follow a blank line, on one line.
	msg, _, _ := strings.Cut(err.Error(), "\n\n")
	msg = strings.NewReplacer(":\n\t", ": ", "\n\t", "; ", "\n", "; ").Replace(msg)
	tr.event(t, "fails: %s", addrRE.ReplaceAllStringFunc(msg, tr.number))
}
