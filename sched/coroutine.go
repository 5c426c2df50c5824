package sched

import (
	"context"
	"runtime/pprof"

	"github.com/weavert/weave/coro"
	"github.com/weavert/weave/internal/engine"
)

// poolMax is how many free coroutines a worker keeps.
const poolMax = 64

// coroutine is an engine coroutine that runs tasks: a pooled one runs fresh
// tasks one after another; a task that parks keeps its coroutine until it
// ends.
type coroutine struct {
	e       engine.Coro
	s       *state
	home    *worker // the worker it was created on: with LockThreads, the only one that may resume it
	t       *Task   // the task it runs, nil while free
	closing bool    // the run's end is closing it: let the unwinding through
	retired bool    // leave the loop and end
	labeled bool    // its goroutine carries a task's pprof labels
	exited  bool    // its task called runtime.Goexit: dispose of it
}

func newCoroutine(w *worker) *coroutine {
	s := w.s
	c := &coroutine{s: s, home: w}
	c.e.Init(c)
	s.coMu.Lock()
	s.cos[c] = struct{}{}
	s.coMu.Unlock()
	return c
}

// Run is the coroutine's body (engine.Body): it runs tasks until the
// coroutine is retired. When a task ends, the coroutine takes the next task
// of its worker itself if that task is fresh, so a run of tasks that never
// park costs no switch at all; otherwise it hands the task to the worker,
// which must resume that task's own coroutine.
//
// Rejected: switching back to the worker after every task, as a plain
// worker loop would. It costs two coroutine switches per task, more than
// all the rest of a short task's life.
func (c *coroutine) Run() {
	for !c.retired {
		t := c.t
		for {
			how, err := c.runTask(t)
			w := t.w // read after: t may have moved to another worker
			w.end(t, err, how)
			next := w.next()
			if next == nil || next.co != nil {
				w.handoff = next
				break
			}
			c.begin(w, next)
			t = next
		}
		c.t = nil
		if !c.e.Yield() {
			c.e.Unwind()
		}
	}
}

// begin makes next, a task that has not started, c's task on w. Not
// inlined: Run's frame lies under that of every parked task, and a task
// parked in FD.Read fits in Go's smallest stack only while it stays small
// (TestFDParkedStack).
//
//go:noinline
func (c *coroutine) begin(w *worker, next *Task) {
	next.co, next.w, next.state, next.budget = c, w, stateRunning, budgetPerRun
	next.resumes++
	if w.s.mode == modeSim {
		w.s.sim.resume(next)
	}
	c.t = next
	if w.s.tracer != nil {
		w.s.tracer.Resume(next, w.id)
	}
}

// runTask runs t's function and returns how it ended, with its error: a
// *coro.PanicError if it panicked.
func (c *coroutine) runTask(t *Task) (how endHow, err error) {
	if t.name != "" || c.labeled {
		c.label(t)
	}
	returned := false
	defer func() {
		if returned {
			return
		}
		r := recover()
		if r == nil {
			// runtime.Goexit: the task ends here, and so does the
			// coroutine, whose goroutine is exiting.
			c.t = nil
			t.w.end(t, ErrGoexit, endGoexit)
			c.s.coMu.Lock()
			delete(c.s.cos, c)
			c.s.coMu.Unlock()
			c.goexit()
			return
		}
		if c.closing {
			panic(r) // the engine's unwinding: not the task's panic
		}
		if r == unwindToken {
			how, err = endUnwound, nil
			return
		}
		how, err = endPanicked, &coro.PanicError{Value: r, Stack: stack()}
	}()
	err = t.f(t)
	returned = true
	return endReturned, err
}

// goexit lets the resumer go on, from the Goexit of c's task, before c's
// goroutine exits. iter.Pull forwards a Goexit to the goroutine that resumed
// the coroutine, and that may be the goroutine of a task acting for its
// worker (Task.park), which would end with it, running that task's deferred
// calls. So c switches back first, as if it yielded, and its resumer
// disposes of it from a goroutine of its own, which the forwarded Goexit
// ends.
//
// Not under LockThreads, where no other goroutine may resume c: there the
// Goexit ends the worker's goroutine, which the worker survives (see
// worker.main), and its thread, which the package doc forbids.
func (c *coroutine) goexit() {
	if c.s.locked {
		return
	}
	c.exited = true
	c.e.Yield() // false while the run's end closes c: the Goexit goes on
}

// dispose ends c, whose task called runtime.Goexit and whose goroutine
// waits in goexit to finish exiting, on a goroutine that the Goexit ends
// in its turn.
func (c *coroutine) dispose() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.e.Close()
	}()
	<-done
}

// label gives the coroutine's goroutine the pprof label task=<name> of
// the named task t, so that CPU profiles split by task, or takes away the
// previous task's label. Unnamed tasks on an unlabeled coroutine, the common
// case, cost one branch.
func (c *coroutine) label(t *Task) {
	if t.name == "" {
		pprof.SetGoroutineLabels(context.Background())
		c.labeled = false
		return
	}
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("task", t.name)))
	c.labeled = true
}

// retire ends a free coroutine: one resume runs its loop to the end.
func (c *coroutine) retire() {
	c.retired = true
	c.e.Begin()
	if !c.e.Switch() {
		c.e.End() // its loop returned: nothing to record
	}
	c.s.coMu.Lock()
	delete(c.s.cos, c)
	c.s.coMu.Unlock()
}

// getCoroutine returns a free coroutine of w, pooled or new.
func (w *worker) getCoroutine() *coroutine {
	if n := len(w.pool); n > 0 {
		c := w.pool[n-1]
		w.pool = w.pool[:n-1]
		return c
	}
	return newCoroutine(w)
}

// putCoroutine gives c, free, back to w's pool, or retires it if the pool
// is full.
func (w *worker) putCoroutine(c *coroutine) {
	if len(w.pool) < poolMax {
		w.pool = append(w.pool, c)
		return
	}
	c.retire()
}
