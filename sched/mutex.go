package sched

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Mutex is a mutual exclusion lock for tasks: Lock parks the task, not its
// worker, while another task holds it. The zero value is an unlocked mutex.
// A Mutex must not be copied after first use.
//
// A task that holds a Mutex may park or yield while holding it; that is the
// point of it. Unlock hands the lock straight to the longest waiter, so
// waiters are served in FIFO order and none starves. As with sync.Mutex, the
// n'th Unlock happens before the n+1'th Lock returns.
//
// Mutexes know who holds them and who waits for them. A Lock that would
// close a cycle of tasks each waiting for a Mutex the next one holds (the
// simplest: a task locking a Mutex it holds) can never return: it panics
// with a *LockCycleError naming every task and Mutex of the cycle, while the
// rest of the program goes on. The check costs nothing on the uncontended
// path; contended Locks and Unlocks take a lock of their Run for it.
//
// A Mutex belongs to the tasks of one Run at a time (see "Waking from
// outside" in the package doc): it may be used by one Run after another, but
// not by the tasks of two Runs at once.
type Mutex struct {
	// 0: unlocked; 1: locked; 2: locked, and tasks may be waiting.
	state   atomic.Int32
	wmu     sync.Mutex // guards waiters, and the move between 1 and 2
	waiters taskList
	// The task that holds it. Stable under its run's graph lock while
	// tasks wait for m (then only unlockSlow changes it); a hint otherwise.
	holder atomic.Pointer[Task]
}

// Lock locks m, parking t until m is free. It must be called by t while it
// runs. It panics with a *LockCycleError if waiting would close a cycle.
func (m *Mutex) Lock(t *Task) {
	t.enter("Mutex.Lock")
	if m.state.CompareAndSwap(0, 1) {
		m.holder.Store(t)
		return
	}
	m.lockSlow(t)
}

func (m *Mutex) lockSlow(t *Task) {
	m.wmu.Lock()
	for {
		switch m.state.Load() {
		case 0:
			if m.state.CompareAndSwap(0, 1) {
				m.holder.Store(t)
				m.wmu.Unlock()
				return
			}
			continue
		case 1:
			if !m.state.CompareAndSwap(1, 2) {
				continue
			}
		}
		break
	}
	g := &t.s.graph
	g.Lock()
	if err := t.waitForLock(m, false); err != nil {
		g.Unlock()
		if m.waiters.empty() {
			m.state.Store(1) // we set 2, and will not wait after all
		}
		m.wmu.Unlock()
		panic(err)
	}
	g.Unlock()
	m.waiters.push(t)
	if t.park(WaitLock, m, &m.wmu) != intrNone {
		t.unwind()
	}
	// Unlock handed us the lock, set holder and cleared waitLock.
}

// TryLock locks m if it is free and reports whether it did.
func (m *Mutex) TryLock(t *Task) bool {
	t.enter("Mutex.TryLock")
	if m.state.CompareAndSwap(0, 1) {
		m.holder.Store(t)
		return true
	}
	return false
}

// Unlock unlocks m, handing it to the longest-waiting task if there is one.
// It may be called by any task of the Run m belongs to, not only the one that
// locked m, as with sync.Mutex. It panics if m is not locked.
func (m *Mutex) Unlock() {
	if h := m.holder.Load(); h != nil {
		pointIn(h.s)
	}
	m.holder.Store(nil)
	if m.state.CompareAndSwap(1, 0) {
		return
	}
	m.unlockSlow()
}

func (m *Mutex) unlockSlow() {
	m.wmu.Lock()
	if m.state.Load() == 0 {
		m.wmu.Unlock()
		panic("sched: unlock of unlocked Mutex")
	}
	t := popWakeable(&m.waiters)
	if t == nil { // a Lock that found a cycle set 2, then withdrew; or every waiter gave up
		m.state.Store(0)
		m.wmu.Unlock()
		return
	}
	g := &t.s.graph
	g.Lock()
	t.stopWaitingForLock()
	m.holder.Store(t)
	g.Unlock()
	if m.waiters.empty() {
		m.state.Store(1) // held by t, nobody waiting
	}
	m.wmu.Unlock()
	t.s.ready(t, nil)
}

func (m *Mutex) dequeueLocked(t *Task) taskList {
	m.waiters.remove(t)
	g := &t.s.graph
	g.Lock()
	t.stopWaitingForLock()
	g.Unlock()
	if m.waiters.empty() && m.state.Load() == 2 {
		m.state.Store(1) // still held, now with nobody waiting
	}
	return taskList{}
}

func (m *Mutex) appendWait(b []byte, name func(any) string, live bool) []byte {
	b = append(b, name(m)...)
	if h := m.holder.Load(); live && h != nil {
		b = append(b, " held by task "...)
		b = append(b, taskLabel(h.id, h.name)...)
	}
	return b
}

// WaitGroup waits for a collection of tasks to finish, as sync.WaitGroup
// does, but Wait parks the task, not its worker. The zero value is ready to
// use. A WaitGroup must not be copied after first use.
type WaitGroup struct {
	n       atomic.Int64
	mu      sync.Mutex
	waiters taskList
	run     *state // the deterministic run that used it last (pointIn)
}

// Add adds delta, which may be negative, to the counter. When it reaches
// zero, the waiting tasks are woken. Add may be called by any task of the Run
// wg belongs to; it panics if the counter goes negative. Each Done happens
// before the Wait it releases returns.
func (wg *WaitGroup) Add(delta int) {
	pointIn(wg.run)
	v := wg.n.Add(int64(delta))
	if v < 0 {
		panic("sched: negative WaitGroup counter")
	}
	if v > 0 || delta == 0 {
		return
	}
	wg.mu.Lock()
	if wg.n.Load() != 0 {
		// An Add(1) came between our decrement and the lock, and a Wait
		// may have parked since: it waits for the next zero, not this one.
		wg.mu.Unlock()
		return
	}
	var woken taskList
	takeWakeable(&wg.waiters, &woken)
	wg.mu.Unlock()
	readyAll(&woken)
}

// Done decrements the counter by one.
func (wg *WaitGroup) Done() { wg.Add(-1) }

// Go runs f as a task started by t, with Add(1) before and Done after.
func (wg *WaitGroup) Go(t *Task, f func(t *Task) error) {
	if f == nil {
		panic("sched: WaitGroup.Go with a nil function")
	}
	if t.s.mode == modeSim {
		wg.run = t.s
	}
	wg.Add(1)
	t.spawn("", func(t *Task) error {
		defer wg.Done()
		return f(t)
	}, f)
}

// Wait parks t until the counter is zero. It must be called by t while it
// runs.
func (wg *WaitGroup) Wait(t *Task) {
	t.enter("WaitGroup.Wait")
	if t.s.mode == modeSim {
		wg.run = t.s
	}
	if wg.n.Load() == 0 {
		return
	}
	wg.mu.Lock()
	if wg.n.Load() == 0 {
		wg.mu.Unlock()
		return
	}
	wg.waiters.push(t)
	if t.park(WaitWaitGroup, wg, &wg.mu) != intrNone {
		t.unwind()
	}
}

func (wg *WaitGroup) dequeueLocked(t *Task) taskList {
	wg.waiters.remove(t)
	return taskList{}
}

func (wg *WaitGroup) appendWait(b []byte, name func(any) string, live bool) []byte {
	b = append(b, name(wg)...)
	if live {
		b = fmt.Appendf(b, " (counter %d)", wg.n.Load())
	}
	return b
}
