package inspect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/weavert/weave/inspect"
	"github.com/weavert/weave/sched"
)

// traceFacts is what checkTrace found in a trace.
type traceFacts struct {
	segments int
	parks    int
	flows    map[string]int // complete arrows by category
	pids     map[int]bool
	names    map[int]string // process names
	tasks    map[uint64]int // segments per task of this process
}

// checkTrace checks the structure and invariants of a trace file: every
// event has a known phase and a pid; complete events have a duration and
// never overlap on one thread; every thread with events is named; every
// arrow has exactly one start and one end, each inside a run segment (or a
// message slice) of its thread; instants of parks say why.
func checkTrace(t *testing.T, b []byte) traceFacts {
	t.Helper()
	var tr inspect.Trace
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tr); err != nil {
		t.Fatalf("trace does not decode: %v", err)
	}
	if v, _ := tr.OtherData["version"].(float64); int(v) != inspect.Version {
		t.Errorf("otherData.version = %v, want %d", tr.OtherData["version"], inspect.Version)
	}
	f := traceFacts{flows: map[string]int{}, pids: map[int]bool{}, names: map[int]string{}, tasks: map[uint64]int{}}
	type lane struct{ pid, tid int }
	type span struct{ from, to float64 }
	slicesOf := map[lane][]span{}
	named := map[lane]bool{}
	type end struct {
		lane lane
		ts   float64
	}
	starts, ends := map[string][]end{}, map[string][]end{}
	for _, e := range tr.TraceEvents {
		if e.Pid == 0 {
			t.Fatalf("event without pid: %+v", e)
		}
		f.pids[e.Pid] = true
		l := lane{e.Pid, e.Tid}
		switch e.Ph {
		case "M":
			switch e.Name {
			case "process_name":
				f.names[e.Pid], _ = e.Args["name"].(string)
			case "thread_name":
				named[l] = true
			case "thread_sort_index":
			default:
				t.Errorf("unknown metadata %q", e.Name)
			}
		case "X":
			if e.Dur == nil || *e.Dur < 0 || e.Name == "" {
				t.Fatalf("complete event without a duration or name: %+v", e)
			}
			slicesOf[l] = append(slicesOf[l], span{e.Ts, e.Ts + *e.Dur})
			if e.Cat == "task" {
				f.segments++
				if e.Pid == os.Getpid() {
					id, _ := e.Args["task"].(float64)
					f.tasks[uint64(id)]++
				}
			}
		case "i":
			if e.Name == "park" {
				if r, _ := e.Args["reason"].(string); r == "" {
					t.Errorf("park without a reason: %+v", e)
				}
				f.parks++
			}
		case "s":
			starts[e.Cat+" "+e.ID] = append(starts[e.Cat+" "+e.ID], end{l, e.Ts})
		case "f":
			if e.Bp != "e" {
				t.Errorf("arrow end not bound to its enclosing slice: %+v", e)
			}
			ends[e.Cat+" "+e.ID] = append(ends[e.Cat+" "+e.ID], end{l, e.Ts})
		default:
			t.Fatalf("unknown phase %q in %+v", e.Ph, e)
		}
	}
	for l, ss := range slicesOf {
		if !named[l] {
			t.Errorf("thread %d of process %d has events but no name", l.tid, l.pid)
		}
		slices.SortFunc(ss, func(a, b span) int { return cmpF(a.from, b.from) })
		for i := 1; i < len(ss); i++ {
			if ss[i].from < ss[i-1].to {
				t.Fatalf("segments overlap on thread %d of process %d: %v and %v", l.tid, l.pid, ss[i-1], ss[i])
			}
		}
	}
	inside := func(e end) bool {
		for _, s := range slicesOf[e.lane] {
			if s.from <= e.ts && e.ts <= s.to {
				return true
			}
		}
		return false
	}
	for id, s := range starts {
		fs := ends[id]
		if len(s) != 1 || len(fs) != 1 {
			t.Fatalf("arrow %s has %d starts and %d ends", id, len(s), len(fs))
		}
		if !inside(s[0]) || !inside(fs[0]) {
			t.Errorf("arrow %s: an end is outside every slice of its thread", id)
		}
		if fs[0].ts < s[0].ts {
			t.Errorf("arrow %s ends before it starts", id)
		}
		var cat string
		for i := range id {
			if id[i] == ' ' {
				cat = id[:i]
				break
			}
		}
		f.flows[cat]++
	}
	for id := range ends {
		if len(starts[id]) == 0 {
			t.Fatalf("arrow %s ends but never starts", id)
		}
	}
	return f
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// A run of tasks that wake each other over channels, on two threads:
// every resume is a segment, every wake by a task an arrow.
func TestTrace(t *testing.T) {
	rec := inspect.NewRecorder(inspect.Config{Name: "traced", Timeline: true})
	defer rec.Close()
	s := sched.New(sched.Threads(2), sched.WithTracer(rec))
	const rounds = 200
	err := s.Run(func(tk *sched.Task) error {
		ping, pong := sched.NewChan[int](0), sched.NewChan[int](0)
		tk.GoNamed("ponger", func(tk *sched.Task) error {
			for {
				v, ok := ping.Recv(tk)
				if !ok {
					return nil
				}
				pong.Send(tk, v+1)
			}
		})
		for i := range rounds {
			ping.Send(tk, i)
			pong.Recv(tk)
		}
		ping.Close()
		return tk.Sleep(1) // one park by the clock: a wake with no waker
	})
	if err != nil {
		t.Fatal(err)
	}
	sc := ownScheduler(t, inspect.Snapshot(context.Background(), inspect.Options{}), "traced")
	var buf bytes.Buffer
	if err := inspect.WriteTrace(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	f := checkTrace(t, buf.Bytes())
	if uint64(f.segments) != sc.Switches {
		t.Errorf("%d segments for %d resumes", f.segments, sc.Switches)
	}
	if f.parks < rounds {
		t.Errorf("%d parks, want at least %d", f.parks, rounds)
	}
	if f.flows["wake"] < rounds {
		t.Errorf("%d wake arrows, want at least %d", f.flows["wake"], rounds)
	}
	if f.names[os.Getpid()] == "" {
		t.Errorf("this process is not named")
	}
}

// A full timeline drops its oldest events, and says so; arrows with a
// dropped end are left out.
func TestTraceMaxEvents(t *testing.T) {
	rec := inspect.NewRecorder(inspect.Config{Name: "small", Timeline: true, MaxEvents: 50})
	defer rec.Close()
	s := sched.New(sched.Threads(1), sched.WithTracer(rec))
	err := s.Run(func(tk *sched.Task) error {
		for range 100 {
			tk.Go(func(tk *sched.Task) error { tk.Yield(); return nil })
			tk.Yield()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := inspect.WriteTrace(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	f := checkTrace(t, buf.Bytes())
	if !bytes.Contains(buf.Bytes(), []byte(`"events dropped"`)) {
		t.Errorf("no mark of the dropped events")
	}
	// The latest events are kept: the main task's last segment, which
	// ended the run, is there.
	if f.tasks[1] == 0 {
		t.Errorf("the main task's last segment was dropped")
	}
	if f.segments > 50 {
		t.Errorf("%d segments kept, want at most 50 events", f.segments)
	}
}
