package sched

import (
	"sync"
	"sync/atomic"
	"time"
)

// Notify lets a task wait for a change that is not a value: data that
// arrived, room that freed up, a state that moved on. Wait parks the task
// until Notify is called; a Notify with no task waiting is kept for the
// next Wait, once (a permit), as with Tokio's Notify, so that a change made
// between the waiter's look at its state and its Wait is not lost. It is
// made for one waiter at a time, as a socket has one reader: with several,
// a permit wakes only the first, and one that was about to Wait may miss a
// Notify that woke the others (use a Cond for them). A woken task must look
// at its state again, in a loop:
//
//	for !ready() {
//		if err := n.Wait(t); err != nil {
//			return err
//		}
//	}
//
// The zero Notify is ready to use; NewNotify names one for reports. A
// Notify is what to build a primitive of one's own on, as package socket's
// simulated network does.
type Notify struct {
	mu      sync.Mutex
	waiters taskList
	permit  bool
	name    string
	run     *state // the deterministic run that used it last (pointIn)
}

// NewNotify returns a Notify whose waits reports show as name.
func NewNotify(name string) *Notify { return &Notify{name: name} }

// Wait parks t until Notify is called, or returns at once if a Notify came
// while no task waited. If t's context ends first, it returns the context's
// error, unchanged.
func (n *Notify) Wait(t *Task) error {
	t.enter("Notify.Wait")
	if t.s.mode == modeSim {
		n.run = t.s
	}
	n.mu.Lock()
	if n.permit {
		n.permit = false
		n.mu.Unlock()
		return nil
	}
	n.waiters.push(t)
	switch t.park(WaitNotify, n, &n.mu) {
	case intrCancel:
		return t.ctx.Err()
	case intrUnwind:
		t.unwind()
	}
	return nil
}

// Notify wakes every task waiting, or, if none waits, lets the next Wait
// return at once. It may be called from any task or goroutine, and from an
// AfterFunc's function.
func (n *Notify) Notify() {
	pointIn(n.run)
	n.mu.Lock()
	var woken taskList
	if takeWakeable(&n.waiters, &woken) == 0 {
		n.permit = true
	}
	n.mu.Unlock()
	readyAll(&woken)
}

func (n *Notify) dequeueLocked(t *Task) taskList {
	n.waiters.remove(t)
	return taskList{}
}

func (n *Notify) appendWait(b []byte, name func(any) string, _ bool) []byte {
	b = append(b, name(n)...)
	if n.name != "" {
		b = append(b, " ("...)
		b = append(b, n.name...)
		b = append(b, ')')
	}
	return b
}

// FuncTimer calls a function once a duration has passed on the scheduler's
// clock. Make one with AfterFunc.
type FuncTimer struct {
	s   *state
	tm  timer
	seq atomic.Uint64
	f   func()
}

// AfterFunc calls f once d has passed on t's scheduler clock, on a worker
// and outside any task, as time.AfterFunc calls its function on a goroutine
// of its own; in a deterministic run, at the virtual time it falls due.
// f must not block or park: it may wake tasks (Notify, a Chan's TrySend, a
// Cond's Signal) and arm timers. A pending FuncTimer keeps the run going,
// as a sleeping task does.
func AfterFunc(t *Task, d time.Duration, f func()) *FuncTimer {
	t.running("AfterFunc")
	ft := &FuncTimer{s: t.s, f: f}
	ft.tm.owner = ft
	ft.s.addTimer(&ft.tm, ft.s.now()+int64(max(d, 0)))
	return ft
}

// Stop stops ft from calling its function, and reports whether it did: false
// if the function was called already, or ft was stopped.
func (ft *FuncTimer) Stop() bool {
	ft.seq.Add(1)
	return ft.s.timers.remove(&ft.tm)
}

// Reset makes ft call its function once d has passed from now, whether it
// was pending, stopped or done, and reports whether it was pending.
func (ft *FuncTimer) Reset(d time.Duration) bool {
	seq := ft.seq.Add(1)
	s := ft.s
	s.timers.mu.Lock()
	pending := s.timers.removeLocked(&ft.tm)
	ft.tm.seq = seq
	earliest := s.timers.addLocked(&ft.tm, s.now()+int64(max(d, 0)))
	s.timers.mu.Unlock()
	s.timerAdded(earliest, ft.tm.when)
	return pending
}

func (ft *FuncTimer) fire(_ *worker, _ int64, seq uint64) {
	if seq == ft.seq.Load() {
		ft.f()
	}
}

func (ft *FuncTimer) wakes() bool { return true }
