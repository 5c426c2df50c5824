package sched

import (
	"sync"
)

// RWMutex is a reader/writer lock for tasks: any number of readers or one
// writer. Lock and RLock park the task, not its worker. The zero value is
// unlocked. An RWMutex must not be copied after first use.
//
// As with sync.RWMutex, a writer waiting in Lock keeps new readers out, so
// that writers do not starve: a task that takes a read lock it already holds
// (a recursive read lock) waits forever if a writer came in between. An
// Unlock lets all waiting readers in before the next writer.
type RWMutex struct {
	mu      sync.Mutex
	readers int  // read locks held
	writer  bool // the write lock is held
	rq, wq  taskList
	nw      int // tasks waiting in Lock
}

// Lock locks rw for writing, parking t until no task holds it.
func (rw *RWMutex) Lock(t *Task) {
	t.enter("RWMutex.Lock")
	rw.mu.Lock()
	if !rw.writer && rw.readers == 0 {
		rw.writer = true
		rw.mu.Unlock()
		return
	}
	rw.nw++
	rw.wq.push(t)
	t.park(WaitRWLock, rw, &rw.mu) // Unlock or RUnlock handed us the lock
}

// TryLock locks rw for writing if it is free, and reports whether it did.
func (rw *RWMutex) TryLock(t *Task) bool {
	t.enter("RWMutex.TryLock")
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.writer || rw.readers > 0 {
		return false
	}
	rw.writer = true
	return true
}

// Unlock unlocks rw for writing: the waiting readers get it, or else the
// longest-waiting writer. It panics if rw is not locked for writing.
func (rw *RWMutex) Unlock() {
	rw.mu.Lock()
	if !rw.writer {
		rw.mu.Unlock()
		panic("sched: Unlock of unlocked RWMutex")
	}
	rw.writer = false
	var woken taskList
	if !rw.rq.empty() {
		for t := rw.rq.pop(); t != nil; t = rw.rq.pop() {
			rw.readers++
			woken.push(t)
		}
	} else if t := rw.wq.pop(); t != nil {
		rw.nw--
		rw.writer = true
		woken.push(t)
	}
	rw.mu.Unlock()
	for t := woken.pop(); t != nil; t = woken.pop() {
		t.s.ready(t, nil)
	}
}

// RLock locks rw for reading, parking t while a writer holds it or waits
// for it.
func (rw *RWMutex) RLock(t *Task) {
	t.enter("RWMutex.RLock")
	rw.mu.Lock()
	if !rw.writer && rw.nw == 0 {
		rw.readers++
		rw.mu.Unlock()
		return
	}
	rw.rq.push(t)
	t.park(WaitRWRLock, rw, &rw.mu)
}

// TryRLock locks rw for reading if it can without waiting, and reports
// whether it did.
func (rw *RWMutex) TryRLock(t *Task) bool {
	t.enter("RWMutex.TryRLock")
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.writer || rw.nw > 0 {
		return false
	}
	rw.readers++
	return true
}

// RUnlock undoes one RLock. The last reader out hands rw to the
// longest-waiting writer. It panics if rw is not locked for reading.
func (rw *RWMutex) RUnlock() {
	rw.mu.Lock()
	if rw.readers == 0 {
		rw.mu.Unlock()
		panic("sched: RUnlock of unlocked RWMutex")
	}
	rw.readers--
	var next *Task
	if rw.readers == 0 {
		if next = rw.wq.pop(); next != nil {
			rw.nw--
			rw.writer = true
		}
	}
	rw.mu.Unlock()
	if next != nil {
		next.s.ready(next, nil)
	}
}

func (rw *RWMutex) appendWait(b []byte, name func(any) string, _ bool) []byte {
	return append(b, name(rw)...)
}
