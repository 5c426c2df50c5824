package sched_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
)

// recorder is a Tracer that logs events as text.
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.log = append(r.log, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func id(t *sched.Task) any {
	if t == nil {
		return "-"
	}
	return t.ID()
}

func (r *recorder) Spawn(t, parent *sched.Task)  { r.add("spawn %v by %v", id(t), id(parent)) }
func (r *recorder) Resume(t *sched.Task, th int) { r.add("resume %v on %d", id(t), th) }
func (r *recorder) Park(t *sched.Task, why sched.WaitReason) {
	r.add("park %v: %v", id(t), why.Kind)
}
func (r *recorder) Rewait(t *sched.Task, why sched.WaitReason) {
	r.add("rewait %v: %v", id(t), why.Kind)
}
func (r *recorder) Wake(t, by *sched.Task)      { r.add("wake %v by %v", id(t), id(by)) }
func (r *recorder) Done(t *sched.Task, _ error) { r.add("done %v", id(t)) }

func TestTracer(t *testing.T) {
	var r recorder
	err := sched.New(sched.Threads(1), sched.WithTracer(&r)).Run(func(task *sched.Task) error {
		ch := sched.NewChan[int](0)
		task.Go(func(task *sched.Task) error {
			ch.Send(task, 1)
			return nil
		})
		ch.Recv(task)
		task.Go(func(*sched.Task) error { return nil })
		task.Yield() // not alone: task 3 runs
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"spawn 1 by -",
		"resume 1 on 0",
		"spawn 2 by 1",
		"park 1: chan receive",
		"resume 2 on 0",
		"wake 1 by 2",
		"done 2",
		"resume 1 on 0",
		"spawn 3 by 1",
		"park 1: yield",
		"resume 3 on 0",
		"done 3",
		"resume 1 on 0",
		"done 1",
	}
	if !slices.Equal(r.log, want) {
		t.Fatalf("events:\n%q\nwant:\n%q", r.log, want)
	}
}

// A Yield with nothing else to run returns without a switch: the task is
// resumed once, however often it yields.
func TestYieldAloneDoesNotSwitch(t *testing.T) {
	var r recorder
	err := sched.New(sched.Threads(1), sched.WithTracer(&r)).Run(func(task *sched.Task) error {
		for range 1000 {
			task.Yield()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"spawn 1 by -", "resume 1 on 0", "done 1"}; !slices.Equal(r.log, want) {
		t.Fatalf("events %q, want %q", r.log, want)
	}
}

// A tracer on several threads, with tasks parking on every primitive: its
// reasons are built while other tasks use the primitives (run with -race).
func TestTracerConcurrent(t *testing.T) {
	var r recorder
	err := sched.New(sched.Threads(4), sched.WithTracer(&r)).Run(func(task *sched.Task) error {
		ch := sched.NewChan[int](2)
		var mu sched.Mutex
		var wg sched.WaitGroup
		for i := range 20 {
			wg.Go(task, func(task *sched.Task) error {
				for j := range 50 {
					if i%2 == 0 {
						ch.Send(task, j)
					} else {
						ch.Recv(task)
					}
					mu.Lock(task)
					task.Yield()
					mu.Unlock()
				}
				return nil
			})
		}
		wg.Wait(task)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A Sleep ended by its context leaves no timer behind: a task alone on its
// thread then yields without a switch, as it did before the sleep.
func TestCancelledSleepLeavesNoTimer(t *testing.T) {
	var r recorder
	err := sched.New(sched.Threads(1), sched.WithTracer(&r)).Run(func(task *sched.Task) error {
		g := sched.NewGroup(task)
		g.Go(task, func(task *sched.Task) error { return task.Sleep(time.Hour) })
		g.Go(task, func(task *sched.Task) error { return errStop })
		if err := g.Wait(task); !errors.Is(err, errStop) {
			t.Errorf("Wait = %v", err)
		}
		r.add("mark")
		for range 10 {
			task.Yield()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after := r.log[slices.Index(r.log, "mark"):]
	for _, e := range after {
		if strings.HasPrefix(e, "park 1: yield") {
			t.Fatalf("the main task switched on a Yield with nothing else to run: %q", after)
		}
	}
}

var errStop = errors.New("stop")

// reasons is a Tracer that keeps what each task, by name, waits for as of
// its last park or rewait.
type reasons struct {
	mu sync.Mutex
	by map[string]sched.WaitReason
}

func (r *reasons) Spawn(t, parent *sched.Task)  {}
func (r *reasons) Resume(t *sched.Task, th int) {}
func (r *reasons) Wake(t, by *sched.Task)       {}
func (r *reasons) Done(t *sched.Task, _ error)  {}
func (r *reasons) Park(t *sched.Task, why sched.WaitReason) {
	r.mu.Lock()
	r.by[t.Name()] = why
	r.mu.Unlock()
}
func (r *reasons) Rewait(t *sched.Task, why sched.WaitReason) { r.Park(t, why) }

func (r *reasons) of(name string) sched.WaitReason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.by[name]
}

// Every kind of wait reaches the tracer as a typed reason, which prints what
// the task waits on: String with what does not change, Detail with the state
// at the moment, Format with the names the caller chose.
func TestWaitReasons(t *testing.T) {
	r := &reasons{by: map[string]sched.WaitReason{}}
	var (
		recv, send, sel = sched.NewChan[int](0), sched.NewChan[string](1), sched.NewChan[int](0)
		mu              sched.Mutex
		rw              sched.RWMutex
		cond            = sched.NewCond(new(sched.Mutex))
		wg              sched.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type want struct {
		kind sched.WaitKind
		str  string
		f    func(*sched.Task)
	}
	wants := map[string]want{
		"recv": {sched.WaitRecv, fmt.Sprintf("chan receive on *sched.Chan[int] %p (cap 0)", recv),
			func(t *sched.Task) { recv.Recv(t) }},
		"send": {sched.WaitSend, fmt.Sprintf("chan send on *sched.Chan[string] %p (cap 1)", send),
			func(t *sched.Task) { send.Send(t, "a"); send.Send(t, "b") }},
		"lock": {sched.WaitLock, fmt.Sprintf("Mutex.Lock on *sched.Mutex %p", &mu),
			func(t *sched.Task) { mu.Lock(t); mu.Unlock() }},
		"rlock": {sched.WaitRWRLock, fmt.Sprintf("RWMutex.RLock on *sched.RWMutex %p", &rw),
			func(t *sched.Task) { rw.RLock(t); rw.RUnlock(t) }},
		"cond": {sched.WaitCond, fmt.Sprintf("Cond.Wait on *sched.Cond %p", cond),
			func(t *sched.Task) { cond.L.Lock(t); cond.Wait(t); cond.L.Unlock() }},
		"wg": {sched.WaitWaitGroup, fmt.Sprintf("WaitGroup.Wait on *sched.WaitGroup %p", &wg),
			func(t *sched.Task) { wg.Wait(t) }},
		"select": {sched.WaitSelect, fmt.Sprintf("select on receive from *sched.Chan[int] %p (cap 0), context", sel),
			func(t *sched.Task) { sched.Select(t, sched.OnRecv(sel, nil), sched.OnDone(ctx, nil)) }},
		"sleep": {sched.WaitSleep, "sleep",
			func(t *sched.Task) { t.Sleep(time.Nanosecond) }},
	}
	err := sched.New(sched.Threads(1), sched.WithTracer(r)).Run(func(task *sched.Task) error {
		mu.Lock(task)
		rw.Lock(task)
		wg.Add(1)
		for name, w := range wants {
			task.GoNamed(name, func(t *sched.Task) error { w.f(t); return nil })
		}
		task.Yield() // every task runs up to its wait

		// Detail reads the state now; Format names objects as asked.
		if got, want := r.of("lock").Detail(), fmt.Sprintf("Mutex.Lock on *sched.Mutex %p held by task 1 (main)", &mu); got != want {
			t.Errorf("Detail() = %q, want %q", got, want)
		}
		if got, want := r.of("wg").Detail(), fmt.Sprintf("WaitGroup.Wait on *sched.WaitGroup %p (counter 1)", &wg); got != want {
			t.Errorf("Detail() = %q, want %q", got, want)
		}
		name := func(obj any) string { return fmt.Sprintf("%T", obj) }
		if got, want := r.of("select").Format(name), "select on receive from *sched.Chan[int] (cap 0), context"; got != want {
			t.Errorf("Format = %q, want %q", got, want)
		}

		recv.Send(task, 1)
		send.Recv(task)
		send.Recv(task)
		mu.Unlock()
		rw.Unlock()
		cond.L.Lock(task)
		cond.Broadcast()
		cond.L.Unlock()
		wg.Done()
		sel.Send(task, 1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range wants {
		if why := r.of(name); why.Kind != w.kind || why.String() != w.str {
			t.Errorf("%s: reason %v %q, want %v %q", name, why.Kind, why.String(), w.kind, w.str)
		}
	}
	if got := (sched.WaitReason{}).String(); got != "yield" {
		t.Errorf("the zero WaitReason prints %q, want yield", got)
	}
}
