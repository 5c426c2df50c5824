package sched

import (
	"context"
	"sync"

	"github.com/weavert/weave/coro"
)

// Await runs f on a goroutine of the scheduler's Await pool, parks t until f
// returns, and returns f's results. Use it for work that would block the
// thread: system calls, Go channels, cgo, time.Sleep, CPU-heavy loops. f gets
// t's context, so cancelling t's group reaches it.
//
// At most AwaitLimit functions run at once; later calls wait for a free
// goroutine, and their tasks stay parked meanwhile. A task parked in Await
// never counts as deadlocked. If f panics, Await panics in t with a
// *coro.PanicError holding the value and f's stack; if f calls
// runtime.Goexit, Await returns ErrGoexit. What f does happens before Await
// returns. Await must be called by t while it runs. In deterministic mode
// it returns ErrDeterministic without running f.
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
	s.pool.submit(func() {
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
	t.park(WaitAwait, awaitWait{}, &mu)
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
	jobs    []func()
	running int
	wg      sync.WaitGroup
}

func (p *awaitPool) submit(job func()) {
	p.mu.Lock()
	p.jobs = append(p.jobs, job)
	start := p.running < p.limit
	if start {
		p.running++
		p.wg.Add(1)
	}
	p.mu.Unlock()
	if start {
		go p.work()
	}
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
		p.jobs[0] = nil
		p.jobs = p.jobs[1:]
		p.mu.Unlock()
		job()
	}
}
