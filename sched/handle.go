package sched

import (
	"context"
	"errors"
	"sync/atomic"
)

// Handle is a task started by Spawn: wait for its result, or cancel it, as
// Tokio's JoinHandle and abort do. The task has a context of its own,
// derived from its starter's; it and the tasks it starts make a scope inside
// its starter's (see Group), so that Wait waits for all of them, and Cancel
// reaches all of them.
type Handle[V any] struct {
	sc   scope
	id   uint64
	name string
	v    V
	err  error // the task's, once it ended; under sc.mu
	// taken: Wait returned the task's error, which Run then does not
	// report; under sc.mu.
	taken atomic.Bool
}

// Spawn starts f as a task and returns its Handle. It must be called by t
// while it runs. A plain Task.Go costs less: use Spawn for a task whose
// result or cancellation someone needs.
func Spawn[V any](t *Task, f func(t *Task) (V, error)) *Handle[V] {
	return SpawnNamed(t, "", f)
}

// SpawnNamed is Spawn with a name, which reports and errors show beside the
// task's ID.
func SpawnNamed[V any](t *Task, name string, f func(t *Task) (V, error)) *Handle[V] {
	if f == nil {
		panic("sched: Spawn with a nil function")
	}
	w := t.running("Spawn")
	h := &Handle[V]{name: name}
	h.sc.init(t, h)
	nt := w.newTask(t, h.sc.ctx, name, func(t *Task) error {
		v, err := f(t)
		h.v = v
		return err
	}, f)
	h.id = nt.id
	h.sc.direct = 1
	h.sc.join(nt, true)
	w.start(t, nt)
	return h
}

// ID returns the ID of h's task.
func (h *Handle[V]) ID() uint64 { return h.id }

// Cancel cancels h's task: its context ends, with context.Canceled, and so
// does every wait of it and of the tasks it started that the end of a
// context may end. Cancel may be called by any task or goroutine, at any
// time, more than once; it does not wait for the task to end.
func (h *Handle[V]) Cancel() { h.sc.end(context.Canceled, nil) }

// Wait parks t until h's task, and every task it started, has ended, and
// returns what the task returned: its value and error, a *coro.PanicError if
// it panicked, its context's error if it was cancelled, joined with a
// *LeakError if tasks it started leaked (see Group). Then Run does not report
// the task's failure: Wait did. If t's context ends first, Wait returns that
// context's error, and h's task goes on. Wait may be called by several
// tasks, each as often as it likes.
func (h *Handle[V]) Wait(t *Task) (V, error) {
	t.enter("Handle.Wait")
	sc := &h.sc
	switch sc.wait(t, WaitHandle) {
	case intrCancel:
		var zero V
		return zero, t.ctx.Err()
	case intrUnwind:
		t.unwind()
	}
	sc.mu.Lock()
	v, err, leak := h.v, h.err, sc.leak
	sc.mu.Unlock()
	h.taken.Store(true)
	if leak != nil {
		err = errors.Join(err, leak)
	}
	return v, err
}

// ended records the end of h's task, failed with err, before the scope
// counts it gone: a Wait that this end releases sees it.
func (h *Handle[V]) ended(t *Task, err error) {
	h.sc.mu.Lock()
	h.err = err
	h.sc.mu.Unlock()
}

// untaken reports whether no Wait has returned the task's error.
func (h *Handle[V]) untaken() bool { return !h.taken.Load() }
