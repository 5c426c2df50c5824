package sched

import (
	"fmt"
	"sync"
)

// Cond is a condition variable for tasks, on a Mutex: Wait unlocks the
// Mutex and parks the task until Signal or Broadcast wakes it, then locks
// the Mutex again. Create one with NewCond.
//
// As with sync.Cond, a woken task must check its condition again, in a
// loop; and a Signal with no task waiting is lost.
type Cond struct {
	L       *Mutex
	mu      sync.Mutex
	waiters taskList
	run     *state // the deterministic run that used it last (pointIn)
}

// NewCond returns a Cond on m.
func NewCond(m *Mutex) *Cond { return &Cond{L: m} }

// Wait unlocks c.L, parks t until it is signalled, and locks c.L again
// before it returns. t must hold c.L.
func (c *Cond) Wait(t *Task) {
	t.enter("Cond.Wait")
	if t.s.mode == modeSim {
		c.run = t.s
	}
	if c.L.holder.Load() != t {
		// Checked before anything changes, so that the Cond stays usable.
		panic(fmt.Sprintf("sched: Cond.Wait by task %d, which does not hold the Cond's Mutex", t.id))
	}
	c.mu.Lock()
	c.waiters.push(t)
	c.L.Unlock()
	if t.park(WaitCond, c, &c.mu) != intrNone {
		// Give up the wait as sync.Cond.Wait returns: holding c.L, which
		// the caller's deferred Unlock expects.
		t.beginUnwind()
		c.L.Lock(t)
		panic(unwindToken)
	}
	c.L.Lock(t)
}

// Signal wakes the task that has waited longest, if any.
func (c *Cond) Signal() {
	pointIn(c.run)
	c.mu.Lock()
	t := popWakeable(&c.waiters)
	c.mu.Unlock()
	if t != nil {
		t.s.ready(t, nil)
	}
}

// Broadcast wakes every waiting task.
func (c *Cond) Broadcast() {
	pointIn(c.run)
	c.mu.Lock()
	var woken taskList
	takeWakeable(&c.waiters, &woken)
	c.mu.Unlock()
	readyAll(&woken)
}

func (c *Cond) dequeueLocked(t *Task) taskList {
	c.waiters.remove(t)
	return taskList{}
}

func (c *Cond) appendWait(b []byte, name func(any) string, _ bool) []byte {
	return append(b, name(c)...)
}
