package sched

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Group is a set of tasks that work on one thing: golang.org/x/sync/errgroup
// for tasks, with the structure of a Trio nursery. Create one with NewGroup.
//
//   - Wait waits for every task of the group: those its Go started, and those
//     they start, directly or not (with Task.Go, WaitGroup.Go, or a Group or
//     Spawn of their own). Nothing the group started outlives its Wait.
//   - The first task started by Go that returns an error cancels the group:
//     its context ends, and so does every wait of the group's tasks that
//     the end of a context may end (see "Cancellation" in the package doc).
//     Wait returns that error, as a *TaskError that names the task.
//   - A task of the group that panics still fails Run with its panic, as any
//     task does, and cancels the group first (ErrGroupTaskAborted).
//   - If the group's own tasks have ended and tasks they started are parked
//     with nothing left that could ever wake them, those leaked: Wait takes
//     them out of their waits, unwinds them (their deferred calls run), and
//     returns a *LeakError naming each, what it waited on and where, joined
//     after the first error. Run does not report them again.
type Group struct {
	sc    scope
	err   error // the first error a task of Go returned; under sc.mu
	limit int   // most tasks of Go at once, or -1; under sc.mu
	slots taskList
}

// NewGroup returns a group whose context is derived from t's. Its scope is
// inside t's: cancelling t's group cancels this one too.
func NewGroup(t *Task) *Group {
	t.running("NewGroup")
	g := &Group{limit: -1}
	g.sc.init(t, g)
	return g
}

// Context returns the group's context: its tasks' context, cancelled when a
// task fails or Wait returns.
func (g *Group) Context() context.Context { return g.sc.ctx }

// Go starts f as a task of the group, with the group's context. t is the
// running task that starts it, which need not belong to the group. Under a
// limit (SetLimit), Go parks t until a task of the group's Go ends, if as
// many as the limit run.
func (g *Group) Go(t *Task, f func(t *Task) error) { g.GoNamed(t, "", f) }

// GoNamed is Go with a name for reports.
func (g *Group) GoNamed(t *Task, name string, f func(t *Task) error) {
	if f == nil {
		panic("sched: Group.Go with a nil function")
	}
	w := t.running("Group.Go")
	g.takeSlot(t, true)
	g.start(w, t, name, f)
}

// TryGo starts f as a task of the group if the group's limit allows it now,
// and reports whether it did.
func (g *Group) TryGo(t *Task, f func(t *Task) error) bool {
	if f == nil {
		panic("sched: Group.TryGo with a nil function")
	}
	w := t.running("Group.TryGo")
	if !g.takeSlot(t, false) {
		return false
	}
	g.start(w, t, "", f)
	return true
}

// takeSlot counts a new task of the group's Go, under its limit: if as many
// as the limit run, it parks t until one ends if wait, or reports false.
func (g *Group) takeSlot(t *Task, wait bool) bool {
	sc := &g.sc
	sc.mu.Lock()
	for g.limit >= 0 && sc.direct >= g.limit {
		if !wait {
			sc.mu.Unlock()
			return false
		}
		g.slots.push(t)
		if t.park(WaitGroupGo, g, &sc.mu) != intrNone {
			t.unwind()
		}
		sc.mu.Lock()
	}
	sc.direct++
	sc.mu.Unlock()
	return true
}

// start starts f as a task of the group's Go, whose slot is taken.
func (g *Group) start(w *worker, t *Task, name string, f func(t *Task) error) {
	nt := w.newTask(t, g.sc.ctx, name, f, nil)
	g.sc.join(nt, true)
	w.start(t, nt)
}

// SetLimit makes at most n tasks started by Go run at once; n < 0 means no
// limit, as in errgroup. A Go past the limit parks its task until one ends.
// Change the limit only while no task of the group's Go runs.
func (g *Group) SetLimit(n int) {
	g.sc.mu.Lock()
	defer g.sc.mu.Unlock()
	if g.sc.direct > 0 {
		panic(fmt.Sprintf("sched: Group.SetLimit while %d of its tasks run", g.sc.direct))
	}
	g.limit = n
}

// ended records the end of t, a task of the group's Go that failed with err
// (nil if it returned nil), before the group counts it gone: a Wait that
// this end releases sees the error.
func (g *Group) ended(t *Task, err error, how endHow) {
	switch {
	case how == endPanicked || how == endGoexit:
		err = ErrGroupTaskAborted
	case how == endUnwound && t.x.Load().cause == intrCancel:
		err = t.ctx.Err()
	case how == endUnwound:
		err = nil // the run unwinds it: reported there
	}
	sc := &g.sc
	sc.mu.Lock()
	first := err != nil && g.err == nil
	if first {
		g.err = &TaskError{ID: t.id, Name: t.name, Err: err}
	}
	var slot *Task
	if g.limit >= 0 {
		slot = popWakeable(&g.slots)
	}
	cause := g.err
	sc.mu.Unlock()
	if slot != nil {
		t.wake(slot)
	}
	if first {
		sc.end(cause, t)
	}
}

// ErrGroupTaskAborted is the cause of a group's cancellation when one of its
// tasks panicked or called runtime.Goexit. Run reports the task itself.
var ErrGroupTaskAborted = errors.New("sched: a task of the group panicked or exited")

// Wait parks t until every task of the group has ended (see Group), cancels
// the group's context, and returns the first error a task of Go returned,
// joined with a *LeakError if tasks leaked. It must be called by t while it
// runs. The end of t's context does not end the wait: the group's tasks
// are cancelled with it, and Wait waits for them to end, as a nursery does.
func (g *Group) Wait(t *Task) error {
	t.enter("Group.Wait")
	sc := &g.sc
	if sc.wait(t, WaitGroupWait) != intrNone {
		t.unwind()
	}
	sc.end(context.Canceled, t)
	sc.detach()
	sc.mu.Lock()
	err, leak := g.err, sc.leak
	sc.mu.Unlock()
	if leak != nil {
		return errors.Join(err, leak)
	}
	return err
}

// What a task waits on in Go, for a slot under the group's limit.

func (g *Group) dequeueLocked(t *Task) taskList {
	g.slots.remove(t)
	return taskList{}
}

func (g *Group) appendWait(b []byte, name func(any) string, live bool) []byte {
	b = append(b, name(g)...)
	if live && g.sc.mu.TryLock() {
		b = fmt.Appendf(b, " (%d tasks of its Go running, limit %d)", g.sc.direct, g.limit)
		g.sc.mu.Unlock()
	}
	return b
}

// ErrLeak is what a *LeakError matches with errors.Is.
var ErrLeak = errors.New("sched: task leaked past its group")

// LeakError reports the tasks that a Group's Wait, or a Handle's, waited for
// in vain: the tasks it started itself had ended, and those were parked with
// nothing left that could ever wake them. They were unwound.
type LeakError struct {
	Tasks []LeakedTask // ordered by ID
}

// LeakedTask is a task of a LeakError.
type LeakedTask = ParkedTask

// Error names each leaked task and what it waits on; the stacks are in the
// Tasks.
func (e *LeakError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sched: %d task(s) leaked past their group, parked with nothing left to wake them:", len(e.Tasks))
	writeParked(&b, e.Tasks, false)
	return b.String()
}

// Is reports whether target is ErrLeak.
func (e *LeakError) Is(target error) bool { return target == ErrLeak }
