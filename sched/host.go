package sched

import (
	"context"

	"github.com/weavert/weave/internal/simhost"
)

// Simulated hosts (package simtest): a deterministic run's tasks may belong
// to a host, which a crash stops at once. A stopped task is frozen: it is
// taken off the runnable list and never chosen again, a wake finds it
// frozen and is lost, and the run does not wait for it nor count it as
// deadlocked. Its coroutine is closed with the others when the run ends
// (step 7 of the end of a run), so that its deferred calls run only when
// nothing of the run is left to run against, and their failures are not
// the run's.

func init() {
	simhost.Go = func(parent any, ctx context.Context, h *simhost.Host, name string, f any) {
		t := parent.(*Task)
		w := t.running("simhost.Go")
		if t.s.mode != modeSim {
			panic("sched: a simulated host outside a deterministic run")
		}
		fn := f.(func(*Task) error)
		nt := w.newTask(t, ctx, name, fn, nil)
		x := nt.extra()
		x.host, x.epoch = h, h.Epoch
		w.start(t, nt)
	}
	simhost.Crash = func(by any, h *simhost.Host) {
		t := by.(*Task)
		t.running("simhost.Crash")
		t.s.crash(t, h)
	}
	simhost.Of = func(t any) *simhost.Host {
		if x := t.(*Task).x.Load(); x != nil {
			return x.host
		}
		return nil
	}
}

// frozen reports whether t belongs to a host that crashed since t started.
func (t *Task) frozen() bool {
	x := t.x.Load()
	return x != nil && x.host != nil && x.host.Epoch != x.epoch
}

// inheritHost makes t, started by parent, belong to parent's host.
func (t *Task) inheritHost(parent *Task) {
	if px := parent.x.Load(); px != nil && px.host != nil {
		x := t.extra()
		x.host, x.epoch = px.host, px.epoch
	}
}

// crash stops h's tasks, for by, the running task.
func (s *state) crash(by *Task, h *simhost.Host) {
	h.Epoch++
	m := s.sim
	live := m.runnable[:0]
	for _, t := range m.runnable {
		if !t.frozen() {
			live = append(live, t)
		}
	}
	clear(m.runnable[len(live):])
	m.runnable = live
	if by.frozen() {
		// Its own host: it stops here, parked on nothing, for good.
		x := by.extra()
		x.parkMu.Lock()
		by.park(WaitCrashed, crashed{}, &x.parkMu)
		by.unwind()
	}
}

// crashed is what a task that crashed its own host waits on: nothing.
type crashed struct{}

func (crashed) appendWait(b []byte, _ func(any) string, _ bool) []byte {
	return append(b, "its host's crash"...)
}

func (crashed) dequeueLocked(*Task) taskList { return taskList{} }
