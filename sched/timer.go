package sched

// timer is a sleeping task's entry in its worker's heap. gen tells a live
// entry from one whose sleep a context ended early.
type timer struct {
	when int64
	t    *Task
	gen  uint64
	stop func() bool // stops the context callback; nil if there is none
}

// timerHeap is a worker's sleep timers, a binary min-heap on when. Only its
// worker touches it.
//
// Rejected: one heap for the whole scheduler. It would need a lock on every
// Sleep, and the worker that parks a sleeper is as good as any to wake it.
type timerHeap struct{ h []timer }

func (th *timerHeap) len() int    { return len(th.h) }
func (th *timerHeap) next() int64 { return th.h[0].when }

func (th *timerHeap) push(e timer) {
	th.h = append(th.h, e)
	i := len(th.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if th.h[p].when <= th.h[i].when {
			break
		}
		th.h[p], th.h[i] = th.h[i], th.h[p]
		i = p
	}
}

func (th *timerHeap) pop() timer {
	h := th.h
	e := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = timer{}
	h = h[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && h[l].when < h[m].when {
			m = l
		}
		if r := l + 1; r < n && h[r].when < h[m].when {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	th.h = h
	return e
}

// sleep registers t's timer, after t parked in Sleep, and, if its context
// can end, a callback that ends the sleep early. Whichever of the two claims
// the wake first makes t runnable; the other finds it claimed.
func (w *worker) sleep(t *Task) {
	s := w.s
	s.sleeping.Add(1)
	e := timer{when: t.wakeAt, t: t, gen: t.gen}
	if t.ctx.Done() != nil {
		e.stop = s.afterFunc(t.ctx, func() {
			if t.claimWake(e.gen) {
				t.sleepErr = t.ctx.Err()
				s.readyFromOutside(t, &s.sleeping)
			}
		})
	}
	w.timers.push(e)
}

// pruneTimers drops the entries at the top of w's timer heap whose sleep a
// context has already ended, and reports whether a live timer remains.
// Without it a cancelled Sleep would keep its entry until it fell due, and
// with it the worker's clock readings, timers armed for nothing, and Yields
// that switch although nothing else can run.
func (w *worker) pruneTimers() bool {
	for w.timers.len() > 0 {
		e := &w.timers.h[0]
		if e.t.waiting(e.gen) {
			return true
		}
		w.timers.pop()
	}
	return false
}

// runTimers makes the tasks whose sleep is over runnable on w.
func (w *worker) runTimers() {
	now := w.s.now()
	woke := false
	for w.timers.len() > 0 && w.timers.next() <= now {
		e := w.timers.pop()
		t := e.t
		if !t.claimWake(e.gen) {
			continue // its context ended the sleep
		}
		if e.stop != nil {
			e.stop()
		}
		w.s.sleeping.Add(-1)
		t.state = stateRunnable
		if w.s.tracer != nil {
			w.s.tracer.Wake(t, nil)
		}
		w.push(t)
		woke = true
	}
	if woke {
		w.s.wakep()
	}
}
