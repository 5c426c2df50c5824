package sched

import (
	"fmt"
	"sync"
)

// Semaphore is a weighted semaphore for tasks, as
// golang.org/x/sync/semaphore is for goroutines: Acquire parks the task, not
// its worker, until the weight it asks for is free. Waiters are served in
// the order they came: one that asks for more than is free holds up those
// behind it, so that a large request does not starve. Create one with
// NewSemaphore.
type Semaphore struct {
	mu      sync.Mutex
	size    int64
	cur     int64
	waiters []semWaiter // in the order they came
	run     *state      // the deterministic run that used it last (pointIn)
}

type semWaiter struct {
	t *Task
	n int64
}

// NewSemaphore returns a semaphore of total weight n.
func NewSemaphore(n int64) *Semaphore {
	if n < 0 {
		panic("sched: NewSemaphore with a negative weight")
	}
	return &Semaphore{size: n}
}

// Acquire takes weight n, parking t until it is free. If t's context ends
// first, it takes nothing and returns the context's error, unchanged. It
// must be called by t while it runs. It panics if n is negative or more than
// the semaphore's size, which no wait could give.
func (s *Semaphore) Acquire(t *Task, n int64) error {
	t.enter("Semaphore.Acquire")
	if t.s.mode == modeSim {
		s.run = t.s
	}
	if n < 0 || n > s.size {
		panic(fmt.Sprintf("sched: Semaphore.Acquire of %d, on a semaphore of %d", n, s.size))
	}
	s.mu.Lock()
	if s.size-s.cur >= n && len(s.waiters) == 0 {
		s.cur += n
		s.mu.Unlock()
		return nil
	}
	s.waiters = append(s.waiters, semWaiter{t, n})
	switch t.park(WaitSemaphore, s, &s.mu) {
	case intrCancel:
		return t.ctx.Err()
	case intrUnwind:
		t.unwind()
	}
	return nil // Release gave us n
}

// TryAcquire takes weight n if it is free and no task waits, and reports
// whether it did.
func (s *Semaphore) TryAcquire(n int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.size-s.cur >= n && len(s.waiters) == 0 {
		s.cur += n
		return true
	}
	return false
}

// Release gives back weight n, and lets in the waiters it makes room for.
// It may be called by any task of the Run s belongs to. It panics if it
// gives back more than was taken.
func (s *Semaphore) Release(n int64) {
	pointIn(s.run)
	s.mu.Lock()
	s.cur -= n
	if s.cur < 0 {
		s.cur += n
		s.mu.Unlock()
		panic("sched: Semaphore.Release of more than was acquired")
	}
	woken := s.grantLocked()
	s.mu.Unlock()
	readyAll(&woken)
}

// grantLocked gives their weight to the waiters at the front that it fits,
// and returns them to wake.
func (s *Semaphore) grantLocked() (woken taskList) {
	for len(s.waiters) > 0 {
		w := s.waiters[0]
		if s.size-s.cur < w.n {
			// Not yet: and if its context ended the wait, the
			// interrupter's dequeue lets the others in.
			break
		}
		if !w.t.wakeable() {
			s.drop(0) // its context ended the wait
			continue
		}
		s.cur += w.n
		s.drop(0)
		woken.push(w.t)
	}
	return woken
}

func (s *Semaphore) drop(i int) {
	copy(s.waiters[i:], s.waiters[i+1:])
	s.waiters[len(s.waiters)-1] = semWaiter{}
	s.waiters = s.waiters[:len(s.waiters)-1]
}

func (s *Semaphore) dequeueLocked(t *Task) taskList {
	for i, w := range s.waiters {
		if w.t == t {
			s.drop(i)
			// It no longer holds up those behind it.
			return s.grantLocked()
		}
	}
	return taskList{}
}

func (s *Semaphore) appendWait(b []byte, name func(any) string, live bool) []byte {
	b = append(b, name(s)...)
	if live && s.mu.TryLock() {
		b = fmt.Appendf(b, " (%d of %d taken)", s.cur, s.size)
		s.mu.Unlock()
	}
	return b
}
