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
// It keeps the last events only (keep of them, or all if keep is 0): a run
// stopped by its step limit has millions.
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
	keep       int
	lines      [][]byte // a ring of the last events once it holds keep
	events     int      // events written, the dropped ones included
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
		line := fmt.Appendf(tr.line(), "step %d +%v: the clock moves to the next timer, while tasks could still run\n", tr.step, now.Sub(tr.start))
		tr.add(line)
	}
	line := fmt.Appendf(tr.line(), "step %d +%v: task %s ", tr.step, now.Sub(tr.start), label(t))
	line = fmt.Appendf(line, format, args...)
	tr.add(append(line, '\n'))
}

// line returns an empty buffer for the next event: the one of the event it
// will push out of the ring, if any, so that a long run allocates no more.
func (tr *tracer) line() []byte {
	if tr.keep > 0 && len(tr.lines) == tr.keep {
		return tr.lines[tr.events%tr.keep][:0]
	}
	return nil
}

// fault writes a fault of a simulated world, which happened at now.
func (tr *tracer) fault(now time.Time, text string) {
	if !tr.started {
		tr.start, tr.started = now, true
	}
	tr.add(fmt.Appendf(tr.line(), "step %d +%v: %s\n", tr.step, now.Sub(tr.start), text))
}

// add appends the event line, made by line, to the ring.
func (tr *tracer) add(line []byte) {
	if tr.keep > 0 && len(tr.lines) == tr.keep {
		tr.lines[tr.events%tr.keep] = line
	} else {
		tr.lines = append(tr.lines, line)
	}
	tr.events++
}

// String returns the events kept, one a line, after a line that counts
// those dropped, if any.
func (tr *tracer) String() string {
	var b strings.Builder
	first := 0
	if dropped := tr.events - len(tr.lines); dropped > 0 {
		fmt.Fprintf(&b, "… %d earlier events dropped: the trace keeps the last %d (simtest.TraceLines)\n", dropped, tr.keep)
		first = tr.events % tr.keep
	}
	for i := range tr.lines {
		b.Write(tr.lines[(first+i)%len(tr.lines)])
	}
	return b.String()
}

func label(t *sched.Task) string { return taskLabel(t.ID(), t.Name()) }

func taskLabel(id uint64, name string) string {
	if name == "" {
		return fmt.Sprint(id)
	}
	return fmt.Sprintf("%d (%s)", id, name)
}

// wrap makes tr the chooser of a run that ch would choose for.
func (tr *tracer) wrap(ch sched.Chooser) sched.Chooser {
	tr.inner = ch
	return tr
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
