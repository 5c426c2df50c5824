package sched

import (
	"fmt"
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
//
// Unlike sync.RWMutex, RUnlock takes the task that releases its read lock:
// an RWMutex knows which tasks hold it, for reading or for writing, so that
// reports name them, and a wait that can never end (a task waiting to write
// while it holds a read lock) is found as a Mutex's is.
type RWMutex struct {
	mu      sync.Mutex
	writer  *Task      // the task holding it for writing, or nil
	readers []readHold // the tasks holding it for reading
	nread   int        // read locks held, over all readers
	rq, wq  taskList   // tasks waiting in RLock, in Lock
	nw      int        // tasks in wq
	run     *state     // the deterministic run that used it last (pointIn)
}

// readHold is a task's read locks of an RWMutex.
type readHold struct {
	t *Task
	n int
}

// Lock locks rw for writing, parking t until no task holds it.
func (rw *RWMutex) Lock(t *Task) {
	t.enter("RWMutex.Lock")
	rw.lock(t, false)
}

// TryLock locks rw for writing if it is free, and reports whether it did.
func (rw *RWMutex) TryLock(t *Task) bool {
	t.enter("RWMutex.TryLock")
	return rw.tryLock(t, false)
}

// Unlock unlocks rw for writing: the waiting readers get it, or else the
// longest-waiting writer. It may be called by any task of the Run rw belongs
// to. It panics if rw is not locked for writing.
func (rw *RWMutex) Unlock() {
	pointIn(rw.run)
	rw.mu.Lock()
	if rw.writer == nil {
		rw.mu.Unlock()
		panic("sched: Unlock of unlocked RWMutex")
	}
	g := rw.lockGraph()
	rw.writer = nil
	woken := rw.handOffLocked()
	unlockGraph(g)
	rw.mu.Unlock()
	readyAll(&woken)
}

// RLock locks rw for reading, parking t while a writer holds it or waits
// for it.
func (rw *RWMutex) RLock(t *Task) {
	t.enter("RWMutex.RLock")
	rw.lock(t, true)
}

// TryRLock locks rw for reading if it can without waiting, and reports
// whether it did.
func (rw *RWMutex) TryRLock(t *Task) bool {
	t.enter("RWMutex.TryRLock")
	return rw.tryLock(t, true)
}

// lock locks rw for t, to read if read, parking t until it may.
func (rw *RWMutex) lock(t *Task, read bool) {
	if t.s.mode == modeSim {
		rw.run = t.s
	}
	rw.mu.Lock()
	if rw.grantLocked(t, read) {
		rw.mu.Unlock()
		return
	}
	g := &t.s.graph
	g.Lock()
	if err := t.waitForLock(rw, read); err != nil {
		g.Unlock()
		rw.mu.Unlock()
		panic(err)
	}
	kind := WaitRWRLock
	if read {
		rw.rq.push(t)
	} else {
		kind = WaitRWLock
		rw.nw++
		rw.wq.push(t)
	}
	g.Unlock()
	if t.park(kind, rw, &rw.mu) != intrNone {
		t.unwind()
	}
	// Unlock, RUnlock or a writer's leaving handed us the lock.
}

func (rw *RWMutex) tryLock(t *Task, read bool) bool {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return rw.grantLocked(t, read)
}

// grantLocked gives t the lock, to read if read, if t may have it at once: a
// writer if nobody holds rw, a reader if no writer holds it or waits for it.
func (rw *RWMutex) grantLocked(t *Task, read bool) bool {
	switch {
	case read && rw.writer == nil && rw.nw == 0:
		rw.addReaderLocked(t)
		return true
	case !read && rw.writer == nil && rw.nread == 0:
		rw.writer = t
		return true
	}
	return false
}

// RUnlock undoes one RLock of t. The last reader out hands rw to the
// longest-waiting writer. It panics if t holds no read lock of rw.
func (rw *RWMutex) RUnlock(t *Task) {
	if t.s.mode == modeSim {
		t.s.sim.point(t)
	}
	rw.mu.Lock()
	i := rw.readerLocked(t)
	if i < 0 {
		rw.mu.Unlock()
		panic(fmt.Sprintf("sched: RUnlock by task %d, which holds no read lock of the RWMutex", t.id))
	}
	g := rw.lockGraph()
	if rw.readers[i].n--; rw.readers[i].n == 0 {
		last := len(rw.readers) - 1
		rw.readers[i] = rw.readers[last]
		rw.readers[last] = readHold{}
		rw.readers = rw.readers[:last]
	}
	rw.nread--
	var woken taskList
	if rw.nread == 0 {
		woken = rw.handOffLocked()
	}
	unlockGraph(g)
	rw.mu.Unlock()
	readyAll(&woken)
}

// handOffLocked gives rw, free, to the waiting readers, or else to the
// longest-waiting writer, and returns the tasks to wake. Called with rw.mu
// held, and the run's graph lock if rw is contended.
func (rw *RWMutex) handOffLocked() (woken taskList) {
	if woken = rw.admitReadersLocked(); !woken.empty() {
		return woken
	}
	if t := popWakeable(&rw.wq); t != nil {
		rw.nw--
		rw.writer = t
		t.stopWaitingForLock()
		woken.push(t)
	}
	return woken
}

// admitReadersLocked gives every waiting reader its read lock, and returns
// them to wake. Called as handOffLocked is.
func (rw *RWMutex) admitReadersLocked() (woken taskList) {
	for t := popWakeable(&rw.rq); t != nil; t = popWakeable(&rw.rq) {
		rw.addReaderLocked(t)
		t.stopWaitingForLock()
		woken.push(t)
	}
	return woken
}

// lockGraph takes the run's graph lock if rw is contended, and returns it,
// or nil: the holders of a lock that tasks wait for change under it. Called
// with rw.mu held.
func (rw *RWMutex) lockGraph() *graph {
	if !rw.contended() {
		return nil
	}
	// A waiter's run is the run of the lock.
	var t *Task
	if t = rw.wq.head; t == nil {
		t = rw.rq.head
	}
	g := &t.s.graph
	g.Lock()
	return g
}

func unlockGraph(g *graph) {
	if g != nil {
		g.Unlock()
	}
}

// readerLocked returns the index of t's read locks in readers, or -1.
func (rw *RWMutex) readerLocked(t *Task) int {
	for i := len(rw.readers) - 1; i >= 0; i-- {
		if rw.readers[i].t == t {
			return i
		}
	}
	return -1
}

func (rw *RWMutex) addReaderLocked(t *Task) {
	rw.nread++
	if i := rw.readerLocked(t); i >= 0 {
		rw.readers[i].n++
		return
	}
	rw.readers = append(rw.readers, readHold{t, 1})
}

func (rw *RWMutex) dequeueLocked(t *Task) (woken taskList) {
	g := &t.s.graph
	g.Lock()
	defer g.Unlock()
	t.stopWaitingForLock()
	if t.waitKind != WaitRWLock {
		rw.rq.remove(t)
		return woken
	}
	rw.wq.remove(t)
	rw.nw--
	// A writer that gave up no longer keeps the readers out.
	if rw.writer == nil && rw.nw == 0 {
		woken = rw.admitReadersLocked()
	}
	return woken
}

func (rw *RWMutex) appendWait(b []byte, name func(any) string, live bool) []byte {
	b = append(b, name(rw)...)
	if !live || !rw.mu.TryLock() {
		return b
	}
	defer rw.mu.Unlock()
	if w := rw.writer; w != nil {
		return append(append(b, " write-locked by task "...), taskLabel(w.id, w.name)...)
	}
	for i, r := range rw.readers {
		if i == 0 {
			b = append(b, " read-locked by task"...)
			if len(rw.readers) > 1 {
				b = append(b, 's')
			}
			b = append(b, ' ')
		} else {
			b = append(b, ", "...)
		}
		b = append(b, taskLabel(r.t.id, r.t.name)...)
	}
	return b
}

// readyAll makes the tasks of l runnable, woken by no task.
func readyAll(l *taskList) {
	for t := l.pop(); t != nil; t = l.pop() {
		t.s.ready(t, nil)
	}
}
