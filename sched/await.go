package sched

import (
	"context"
	"fmt"
	"sync"

	"github.com/weavert/weave/coro"
)

// Await runs f on a goroutine of the scheduler's Await pool, parks t until f
// returns, and returns f's results. Await is for work that blocks a thread:
// files, cgo, CPU-heavy loops, blocking system calls, Go channels. For
// sockets, pipes and other pollable descriptors use package socket or FD,
// whose waits take no goroutine. f gets t's context, so cancelling t's group
// reaches it.
//
// At most AwaitLimit functions run at once; later calls wait for a free
// goroutine, in the order they came, and their tasks stay parked meanwhile:
// such a task waits for WaitAwaitQueued, then, once its f runs, for
// WaitAwait (Tracer.Rewait says when). A task parked in Await never counts
// as deadlocked. If f panics, Await panics in t with a *coro.PanicError
// holding the value and f's stack; if f calls runtime.Goexit, Await returns
// ErrGoexit. What f does happens before Await returns. Await must be called
// by t while it runs. In deterministic mode it returns ErrDeterministic
// without running f.
func Await[V any](t *Task, f func(ctx context.Context) (V, error)) (V, error) {
	t.running("Await")
	s := t.s
	if s.sim != nil {
		var zero V
		return zero, ErrDeterministic
	}
	ctx := t.ctx
	var (
		v      V
		err    error
		failed *coro.PanicError
		mu     sync.Mutex // held by t until it is suspended
	)
	mu.Lock()
	s.external.Add(1)
	queued := s.pool.submit(func(queued bool) {
		if queued {
			// Its turn came: once t has parked (its worker releases mu
			// then), t waits for f.
			mu.Lock()
			t.setWait(WaitAwait, awaitWait{})
			if s.tracer != nil {
				s.tracer.Rewait(t, t.waitReason())
			}
			mu.Unlock()
		}
		returned := false
		defer func() {
			if !returned {
				if r := recover(); r != nil {
					failed = &coro.PanicError{Value: r, Stack: stack()}
				} else {
					err = ErrGoexit
				}
			}
			// Wait until t has parked: its worker releases mu then.
			mu.Lock()
			//lint:ignore SA2001 the critical section is empty on purpose: a handshake
			mu.Unlock()
			s.readyFromOutside(t, s.dropExternal)
		}()
		v, err = f(ctx)
		returned = true
	})
	if queued {
		t.park(WaitAwaitQueued, &s.pool, &mu)
	} else {
		t.park(WaitAwait, awaitWait{}, &mu)
	}
	if failed != nil {
		panic(failed)
	}
	return v, err
}

// awaitWait is what a task in Await waits on: its function, which nothing
// interrupts (it gets the task's context, and must return).
type awaitWait struct{}

func (awaitWait) appendWait(b []byte, _ func(any) string, _ bool) []byte { return b }
func (awaitWait) dequeueLocked(*Task) taskList                           { return taskList{} }

// A task queued in Await waits on the pool, for one of its goroutines. It
// stays in the queue: its function will run.
func (p *awaitPool) appendWait(b []byte, _ func(any) string, _ bool) []byte {
	return fmt.Appendf(b, "the Await pool (AwaitLimit %d, all busy)", p.limit)
}
func (p *awaitPool) dequeueLocked(*Task) taskList { return taskList{} }

// readyFromOutside makes t runnable from outside any task (an Await's
// goroutine, a context's callback), after running under, which takes away
// the wait that kept the run from counting as deadlocked. Both happen under
// the same lock, so that an idle scheduler sees the wait or the woken task,
// never neither.
func (s *state) readyFromOutside(t *Task, under func()) {
	if s.mode == modeSim { // a watch, polled by the worker: not outside at all
		under()
		s.ready(t, nil)
		return
	}
	if s.tracer != nil {
		s.tracer.Wake(t, nil)
	}
	s.mu.Lock()
	// Under the lock, which the end of activity holds while it looks at
	// the parked tasks.
	t.state = stateRunnable
	t.setWait(WaitYield, nil)
	under()
	s.global.push(t)
	s.gsize.Add(1)
	s.mu.Unlock()
	s.wakep()
}

// endExternal ends a wait that something outside the run may end (Await, a
// context in a Select): see readyFromOutside.
// If that was the last, an idle worker must look again whether the run is
// over.
func (s *state) endExternal() {
	if s.external.Add(-1) == 0 {
		s.wakep()
	}
}

// dropExternal is endExternal for readyFromOutside, which holds state.mu and
// wakes a worker itself.
func (s *state) dropExternal() { s.external.Add(-1) }

// awaitPool runs jobs on at most limit goroutines, which exit when there is
// no job left. Run waits for them before it returns.
type awaitPool struct {
	limit   int
	mu      sync.Mutex
	jobs    []awaitJob
	running int
	wg      sync.WaitGroup
}

// awaitJob is a job of the pool, which it runs with queued.
type awaitJob struct {
	run    func(queued bool)
	queued bool
}

// submit adds job to the queue and reports whether it waits there for one
// of the goroutines, all busy (queued), rather than for one it starts.
// job gets the same answer.
func (p *awaitPool) submit(job func(queued bool)) (queued bool) {
	p.mu.Lock()
	queued = p.running == p.limit
	p.jobs = append(p.jobs, awaitJob{job, queued})
	if !queued {
		p.running++
		p.wg.Add(1)
	}
	p.mu.Unlock()
	if !queued {
		go p.work()
	}
	return queued
}

func (p *awaitPool) work() {
	defer func() {
		// A job that called runtime.Goexit ends this goroutine: it has
		// reported itself; a new goroutine takes over the queue.
		p.mu.Lock()
		restart := len(p.jobs) > 0
		if !restart {
			p.running--
		} else {
			p.wg.Add(1)
		}
		p.mu.Unlock()
		p.wg.Done()
		if restart {
			go p.work()
		}
	}()
	for {
		p.mu.Lock()
		if len(p.jobs) == 0 {
			p.mu.Unlock()
			return
		}
		job := p.jobs[0]
		p.jobs[0] = awaitJob{}
		p.jobs = p.jobs[1:]
		p.mu.Unlock()
		job.run(job.queued)
	}
}
