package sched

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Group is a set of tasks that work on one thing: Wait waits for them all,
// and the first of them to fail cancels the context of the others (as
// golang.org/x/sync/errgroup does, with tasks for goroutines). Create one
// with NewGroup.
//
// A task of a group that panics still fails Run with its panic, as any task
// does, and cancels the group first. The errors tasks return go to Wait, not
// to Run.
type Group struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     WaitGroup

	mu   sync.Mutex
	err  error
	live map[*Task]struct{} // tasks started by its tasks, not yet ended
}

// NewGroup returns a group whose context is derived from t's.
func NewGroup(t *Task) *Group {
	ctx, cancel := context.WithCancelCause(t.ctx)
	return &Group{ctx: ctx, cancel: cancel}
}

// Context returns the group's context: its tasks' context, cancelled when a
// task fails or Wait returns.
func (g *Group) Context() context.Context { return g.ctx }

// Go starts f as a task of the group, with the group's context. t is the
// running task that starts it, which need not belong to the group.
func (g *Group) Go(t *Task, f func(t *Task) error) { g.GoNamed(t, "", f) }

// GoNamed is Go with a name for reports.
func (g *Group) GoNamed(t *Task, name string, f func(t *Task) error) {
	if f == nil {
		panic("sched: Group.Go with a nil function")
	}
	w := t.running("Group.Go")
	g.wg.Add(1)
	nt := w.newTask(t, g.ctx, name, func(t *Task) error {
		defer g.wg.Done()
		ok := false
		defer func() {
			if !ok { // panicking, or runtime.Goexit
				g.fail(ErrGroupTaskAborted)
			}
		}()
		if err := f(t); err != nil {
			g.fail(&TaskError{ID: t.id, Name: t.name, Err: err})
		}
		ok = true
		return nil
	}, f)
	nt.grp = g
	w.push(nt)
	w.s.wakep()
}

func (g *Group) track(t *Task) {
	g.mu.Lock()
	if g.live == nil {
		g.live = make(map[*Task]struct{})
	}
	g.live[t] = struct{}{}
	g.mu.Unlock()
}

func (g *Group) forget(t *Task) {
	g.mu.Lock()
	delete(g.live, t)
	g.mu.Unlock()
}

// ErrGroupTaskAborted is the cause of a group's cancellation when one of its
// tasks panicked or called runtime.Goexit. Run reports the task itself.
var ErrGroupTaskAborted = errors.New("sched: a task of the group panicked or exited")

func (g *Group) fail(err error) {
	g.mu.Lock()
	if g.err == nil {
		g.err = err
		g.cancel(err)
	}
	g.mu.Unlock()
}

// Wait parks t until every task of the group has ended, cancels the group's
// context, and returns the first error a task returned (or nil). It must be
// called by t while it runs.
//
// A task that the group's tasks started (with Task.Go or WaitGroup.Go,
// directly or not) belongs to the group too: if one has not ended when the
// group's own tasks have, it leaked, as a goroutine does that an early
// return left blocked on a channel. Wait then also returns a *LeakError
// naming them (errors.Is(err, ErrLeak)), joined after the first error. The
// leaked tasks go on; the cancelled context may still end them.
func (g *Group) Wait(t *Task) error {
	g.wg.Wait(t)
	g.cancel(context.Canceled)
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.live) == 0 {
		return g.err
	}
	leak := &LeakError{}
	for u := range g.live {
		leak.Tasks = append(leak.Tasks, LeakedTask{ID: u.id, Name: u.name, Created: u.createdAt()})
	}
	slices.SortFunc(leak.Tasks, func(a, b LeakedTask) int { return cmp.Compare(a.ID, b.ID) })
	return errors.Join(g.err, leak)
}

// ErrLeak is what a *LeakError matches with errors.Is.
var ErrLeak = errors.New("sched: task leaked past its group")

// LeakError reports tasks started from a Group's tasks that had not ended
// when the group's own tasks had.
type LeakError struct {
	Tasks []LeakedTask // ordered by ID
}

// LeakedTask is a task of a LeakError.
type LeakedTask struct {
	ID      uint64
	Name    string
	Created string // the task's function and where it is defined
}

func (e *LeakError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sched: %d task(s) leaked past their group:", len(e.Tasks))
	for _, t := range e.Tasks {
		fmt.Fprintf(&b, "\n\ttask %s, running %s", taskLabel(t.ID, t.Name), t.Created)
	}
	return b.String()
}

// Is reports whether target is ErrLeak.
func (e *LeakError) Is(target error) bool { return target == ErrLeak }
