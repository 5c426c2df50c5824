package sched

import (
	"fmt"
	"slices"
	"sync"
)

// The wait-for graph of a run's locks: which task waits for which lock
// (Task.waitLock), and which tasks that lock makes it wait for (a Mutex's
// holder; an RWMutex's writer and readers, or the writers queued ahead of a
// reader). A Lock or RLock that would close a cycle in it can never be
// granted: it panics with a *LockCycleError instead of waiting, while the
// rest of the program goes on.
//
// The graph is guarded by state.graph, which only contended paths take. A
// lock that tasks wait for changes its holders under that lock (Mutex's
// unlockSlow; RWMutex's Unlock, RUnlock and dequeue while it has waiters), so
// a search under it sees every lock on its path still. Every cycle is found
// when it closes, so the graph has none, and a search ends.

// stopWaitingForLock records that t, which waited for a lock, no longer
// does: it got the lock, or gave up. Called with the run's graph lock held.
func (t *Task) stopWaitingForLock() {
	if x := t.x.Load(); x != nil {
		x.waitLock = nil
	}
}

// graphLock is a lock of the wait-for graph: a *Mutex or an *RWMutex.
type graphLock interface {
	// appendBlockers appends the tasks that a task waiting for the lock,
	// to read if read, waits for. Called with the run's graph lock held.
	appendBlockers(dst []*Task, read bool) []*Task
	fmt.Stringer
}

// graph is the run's wait-for graph of locks, and the scratch space of its
// searches, reused so that a contended Lock allocates nothing.
type graph struct {
	sync.Mutex
	epoch uint64      // of the current search: taskExtra.mark holds the last search that saw it
	nodes []graphNode // the tasks a search reached, each with how
	todo  []int       // indexes in nodes still to look at
	found []*Task     // scratch for appendBlockers
}

// graphNode is a task a search reached: it holds lock, for which the task
// of nodes[from] waits (the searching task if from is -1).
type graphNode struct {
	t    *Task
	from int
	lock graphLock
}

// waitForLock records that t waits for l, to read if read, unless that
// would close a cycle: then it returns the cycle, and records nothing.
// Called with l's own lock and the run's graph lock held.
func (t *Task) waitForLock(l graphLock, read bool) *LockCycleError {
	g := &t.s.graph
	g.epoch++
	g.nodes, g.todo = g.nodes[:0], g.todo[:0]
	g.reach(l, read, -1)
	for len(g.todo) > 0 {
		i := g.todo[len(g.todo)-1]
		g.todo = g.todo[:len(g.todo)-1]
		n := g.nodes[i]
		if n.t == t {
			return g.cycle(t, i)
		}
		x := n.t.extra()
		if x.mark == g.epoch {
			continue
		}
		x.mark = g.epoch
		if next := x.waitLock; next != nil {
			g.reach(next, x.waitRead, i)
		}
	}
	clear(g.nodes) // keep no task alive
	x := t.extra()
	x.waitLock, x.waitRead = l, read
	return nil
}

// reach adds the tasks that a waiter for l makes it wait for, reached from
// nodes[from].
func (g *graph) reach(l graphLock, read bool, from int) {
	g.found = l.appendBlockers(g.found[:0], read)
	for _, b := range g.found {
		g.nodes = append(g.nodes, graphNode{b, from, l})
		g.todo = append(g.todo, len(g.nodes)-1)
	}
	clear(g.found)
}

// cycle describes the cycle that ends at nodes[i], whose task is t.
func (g *graph) cycle(t *Task, i int) *LockCycleError {
	var edges []LockWait
	for ; i >= 0; i = g.nodes[i].from {
		n := g.nodes[i]
		who := t
		if n.from >= 0 {
			who = g.nodes[n.from].t
		}
		edges = append(edges, LockWait{Task: taskLabel(who.id, who.name), Mutex: n.lock.String(), Holder: taskLabel(n.t.id, n.t.name)})
	}
	slices.Reverse(edges)
	clear(g.nodes)
	return &LockCycleError{Cycle: edges}
}

func (m *Mutex) appendBlockers(dst []*Task, _ bool) []*Task {
	if h := m.holder.Load(); h != nil {
		dst = append(dst, h)
	}
	return dst
}

func (m *Mutex) String() string { return fmt.Sprintf("sched.Mutex %p", m) }

// appendBlockers: a writer waits for the writer and the readers; a reader
// for the writer, or else for the writers queued ahead of it, which keep
// readers out.
func (rw *RWMutex) appendBlockers(dst []*Task, read bool) []*Task {
	if w := rw.writer; w != nil {
		return append(dst, w)
	}
	if read {
		for w := rw.wq.head; w != nil; w = w.next {
			dst = append(dst, w)
		}
		return dst
	}
	for _, r := range rw.readers {
		dst = append(dst, r.t)
	}
	return dst
}

func (rw *RWMutex) String() string { return fmt.Sprintf("sched.RWMutex %p", rw) }

// contended reports whether tasks wait for rw: then its holders and queue
// change under the run's graph lock too. Called with rw.mu held.
func (rw *RWMutex) contended() bool { return rw.nw > 0 || !rw.rq.empty() }
