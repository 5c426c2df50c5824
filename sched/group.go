package sched

import (
	"context"
	"errors"
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

	mu  sync.Mutex
	err error
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
			g.fail(err)
		}
		ok = true
		return nil
	})
	nt.origin = f
	w.push(nt)
	w.s.wakep()
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
func (g *Group) Wait(t *Task) error {
	g.wg.Wait(t)
	g.cancel(context.Canceled)
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}
