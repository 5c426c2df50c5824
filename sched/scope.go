package sched

import (
	"context"
	"fmt"
	"sync"
)

// scope is a set of tasks that one cancellation ends and one Wait waits for:
// a Group's, or a Handle's. A task belongs to the scope of the task that
// started it, or of the Group whose Go started it, or to the new scope of
// its Handle; a scope made by a task of another scope is inside that one.
// So the scopes of a run make a tree, as Trio's nurseries and cancel scopes
// do, and:
//
//   - Wait waits for every task of the scope and of the scopes inside it
//     (live), wherever it was started from: structured concurrency.
//   - Cancelling a scope ends the context of all those tasks, and every
//     wait of theirs that its end may end (Task.park), at once, from the
//     canceller: no goroutine of the context package decides when.
//
// The tasks of no Group or Handle belong to no scope, unless the run's
// context can end (RunContext): then they belong to the run's root scope.
type scope struct {
	s      *state
	ctx    context.Context
	cancel context.CancelCauseFunc
	parent *scope
	depth  int // of nesting: 0 for a scope inside none

	mu      sync.Mutex
	tasks   map[*Task]struct{}  // its live tasks, not those of scopes inside
	kids    map[*scope]struct{} // the scopes inside it that have not ended
	live    int                 // live tasks in it and in the scopes inside it
	direct  int                 // live tasks of its own: the Group's Go, the Handle's task
	waiters taskList            // tasks parked until live is 0
	leak    *LeakError          // tasks it waited for that could never end (shutdown.go)
	owner   any                 // the *Group or *Handle, for reports
}

// init makes sc a scope inside t's, with a context derived from t's.
func (sc *scope) init(t *Task, owner any) {
	sc.s, sc.owner = t.s, owner
	sc.ctx, sc.cancel = context.WithCancelCause(t.ctx)
	if p := t.scope; p != nil {
		sc.parent, sc.depth = p, p.depth+1
		p.mu.Lock()
		if p.kids == nil {
			p.kids = make(map[*scope]struct{})
		}
		p.kids[sc] = struct{}{}
		p.mu.Unlock()
	}
}

// join makes t, new, a task of sc: one of its own if direct, for which the
// caller has counted it in direct already.
func (sc *scope) join(t *Task, direct bool) {
	t.scope, t.direct = sc, direct
	sc.mu.Lock()
	if sc.tasks == nil {
		sc.tasks = make(map[*Task]struct{})
	}
	sc.tasks[t] = struct{}{}
	sc.mu.Unlock()
	for p := sc; p != nil; p = p.parent {
		p.mu.Lock()
		p.live++
		p.mu.Unlock()
	}
}

// leave records the end of t, a task of sc, and wakes the tasks waiting for
// a scope that this leaves empty; t is running its last, on its worker.
func (sc *scope) leave(t *Task) {
	sc.mu.Lock()
	delete(sc.tasks, t)
	if t.direct {
		sc.direct--
	}
	sc.mu.Unlock()
	for p := sc; p != nil; p = p.parent {
		p.mu.Lock()
		p.live--
		var woken taskList
		if p.live == 0 {
			takeWakeable(&p.waiters, &woken)
		}
		p.mu.Unlock()
		for u := woken.pop(); u != nil; u = woken.pop() {
			t.wake(u)
		}
	}
}

// wait parks t until every task of sc and of the scopes inside it has ended,
// for a wait of kind; it returns why the wait ended otherwise (Task.park).
// When the tasks sc itself started have ended and those left can never end,
// the run's end of activity finds them leaked (shutdown.go).
func (sc *scope) wait(t *Task, kind WaitKind) intr {
	sc.mu.Lock()
	for sc.live > 0 {
		sc.waiters.push(t)
		if why := t.park(kind, sc, &sc.mu); why != intrNone {
			return why
		}
		sc.mu.Lock()
	}
	sc.mu.Unlock()
	return intrNone
}

// detach takes sc, ended, out of its parent's scopes.
func (sc *scope) detach() {
	if p := sc.parent; p != nil {
		p.mu.Lock()
		delete(p.kids, sc)
		p.mu.Unlock()
	}
}

// each calls f with every live task of sc and of the scopes inside it.
func (sc *scope) each(f func(*Task)) {
	sc.mu.Lock()
	tasks := make([]*Task, 0, len(sc.tasks))
	for t := range sc.tasks {
		tasks = append(tasks, t)
	}
	kids := make([]*scope, 0, len(sc.kids))
	for k := range sc.kids {
		kids = append(kids, k)
	}
	sc.mu.Unlock()
	for _, t := range tasks {
		f(t)
	}
	for _, k := range kids {
		k.each(f)
	}
}

// end cancels sc's context with cause, and ends every wait of its tasks, and
// of the tasks of the scopes inside it, that the end of their context may
// end (Task.park). by is the running task that cancels, or nil.
func (sc *scope) end(cause error, by *Task) {
	sc.cancel(cause)
	// After the context ended: a task that arms a wait from now on sees
	// it done; one that armed before is claimed here.
	sc.each(func(t *Task) {
		if t.claimCancelled() {
			sc.s.interrupt(t, intrCancel, by)
		}
	})
}

func (sc *scope) dequeueLocked(t *Task) taskList {
	sc.waiters.remove(t)
	return taskList{}
}

func (sc *scope) appendWait(b []byte, name func(any) string, live bool) []byte {
	b = append(b, name(sc.owner)...)
	if live && sc.mu.TryLock() {
		n := sc.live
		sc.mu.Unlock()
		b = fmt.Appendf(b, " (%d tasks left)", n)
	}
	return b
}
