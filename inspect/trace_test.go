package inspect_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
// event has a known phase and a pid; times are microseconds since the
// earliest event, written with three decimals, so every nanosecond counts;
// complete events have a duration and no two on one thread overlap, to
// the nanosecond; every thread with events is named; every arrow has
// exactly one start and one end, each held by the slice (run segment or
// message) last written before it on its thread, and ends no earlier than
// it starts, across processes too; instants of parks say why.
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
	if o, _ := tr.OtherData["origin"].(string); o == "" {
		t.Errorf("otherData.origin = %v, want the time of day of ts 0", tr.OtherData["origin"])
	} else if _, err := time.Parse(time.RFC3339Nano, o); err != nil {
		t.Errorf("otherData.origin: %v", err)
	}
	checkTimeFormat(t, b)
	f := traceFacts{flows: map[string]int{}, pids: map[int]bool{}, names: map[int]string{}, tasks: map[uint64]int{}}
	type lane struct{ pid, tid int }
	type span struct{ from, to inspect.Nanos }
	slicesOf := map[lane][]span{}
	named := map[lane]bool{}
	type end struct {
		lane lane
		ts   inspect.Nanos
	}
	starts, ends := map[string][]end{}, map[string][]end{}
	earliest := inspect.Nanos(math.MaxInt64)
	// held reports whether the slice written last on e's lane holds e.
	held := func(e end) bool {
		ss := slicesOf[e.lane]
		return len(ss) > 0 && ss[len(ss)-1].from <= e.ts && e.ts <= ss[len(ss)-1].to
	}
	for _, e := range tr.TraceEvents {
		if e.Pid == 0 {
			t.Fatalf("event without pid: %+v", e)
		}
		f.pids[e.Pid] = true
		l := lane{e.Pid, e.Tid}
		if e.Ph != "M" {
			earliest = min(earliest, e.Ts)
		}
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
		case "s", "f":
			if e.Ph == "f" && e.Bp != "e" {
				t.Errorf("arrow end not bound to its enclosing slice: %+v", e)
			}
			at := end{l, e.Ts}
			if !held(at) {
				t.Fatalf("arrow %s %s at %d ns: the slice written last on thread %d of process %d does not hold it",
					e.Cat, e.ID, e.Ts, l.tid, l.pid)
			}
			if e.Ph == "s" {
				starts[e.Cat+" "+e.ID] = append(starts[e.Cat+" "+e.ID], at)
			} else {
				ends[e.Cat+" "+e.ID] = append(ends[e.Cat+" "+e.ID], at)
			}
		default:
			t.Fatalf("unknown phase %q in %+v", e.Ph, e)
		}
	}
	if earliest != 0 && earliest != math.MaxInt64 {
		t.Errorf("the earliest event is at %d ns, want 0: times start at the trace's origin", earliest)
	}
	for l, ss := range slicesOf {
		if !named[l] {
			t.Errorf("thread %d of process %d has events but no name", l.tid, l.pid)
		}
		slices.SortFunc(ss, func(a, b span) int { return cmp.Compare(a.from, b.from) })
		for i := 1; i < len(ss); i++ {
			if ss[i].from < ss[i-1].to {
				t.Fatalf("segments overlap on thread %d of process %d by %d ns: %v and %v",
					l.tid, l.pid, ss[i-1].to-ss[i].from, ss[i-1], ss[i])
			}
		}
	}
	for id, s := range starts {
		fs := ends[id]
		if len(s) != 1 || len(fs) != 1 {
			t.Fatalf("arrow %s has %d starts and %d ends", id, len(s), len(fs))
		}
		if fs[0].ts < s[0].ts {
			t.Errorf("arrow %s ends %d ns before it starts", id, s[0].ts-fs[0].ts)
		}
		cat, _, _ := strings.Cut(id, " ")
		f.flows[cat]++
	}
	for id := range ends {
		if len(starts[id]) == 0 {
			t.Fatalf("arrow %s ends but never starts", id)
		}
	}
	return f
}

// checkTimeFormat checks that every ts and dur of the trace in b is
// written as microseconds with exactly three decimals.
func checkTimeFormat(t *testing.T, b []byte) {
	t.Helper()
	var raw struct {
		TraceEvents []map[string]json.RawMessage `json:"traceEvents"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, e := range raw.TraceEvents {
		for _, k := range []string{"ts", "dur"} {
			if v, ok := e[k]; ok && !threeDecimals.Match(v) {
				t.Fatalf("%s %s is not microseconds with three decimals", k, v)
			}
		}
	}
}

var threeDecimals = regexp.MustCompile(`^[0-9]+\.[0-9]{3}$`)

// pingPong starts pairs of tasks that pass a value back and forth rounds
// times over unbuffered channels: each round is two short run segments,
// two parks and two wake-ups.
func pingPong(tk *sched.Task, pairs, rounds int) {
	pingPongWhile(tk, pairs, func(_, round int) bool { return round < rounds })
}

// pingPongWhile is pingPong with pair p going on to round i while more(p, i).
func pingPongWhile(tk *sched.Task, pairs int, more func(p, round int) bool) {
	for p := range pairs {
		ping, pong := sched.NewChan[int](0), sched.NewChan[int](0)
		tk.GoNamed(fmt.Sprintf("ponger-%d", p), func(tk *sched.Task) error {
			for {
				v, ok := ping.Recv(tk)
				if !ok {
					return nil
				}
				pong.Send(tk, v+1)
			}
		})
		tk.GoNamed(fmt.Sprintf("pinger-%d", p), func(tk *sched.Task) error {
			for i := 0; more(p, i); i++ {
				ping.Send(tk, i)
				pong.Recv(tk)
			}
			ping.Close()
			return nil
		})
	}
}

// A loaded run on two threads, tasks waking each other over channels:
// thousands of run segments, each a few hundred nanoseconds apart from the
// one before on its thread. Every resume is a segment, every wake by a
// task an arrow, and no two segments of a thread overlap.
func TestTrace(t *testing.T) {
	rec := inspect.NewRecorder(inspect.Config{Name: "traced", Timeline: true})
	defer rec.Close()
	s := sched.New(sched.Threads(2), sched.WithTracer(rec))
	const pairs, rounds = 4, 500
	err := s.Run(func(tk *sched.Task) error {
		pingPong(tk, pairs, rounds)
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
	if f.segments < 2*pairs*rounds {
		t.Errorf("%d segments, want at least %d", f.segments, 2*pairs*rounds)
	}
	if f.parks < 2*pairs*rounds {
		t.Errorf("%d parks, want at least %d", f.parks, 2*pairs*rounds)
	}
	if f.flows["wake"] < pairs*rounds {
		t.Errorf("%d wake arrows, want at least %d", f.flows["wake"], pairs*rounds)
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
	// No task woke another: the thread's events are its segments and parks.
	if n := f.segments + f.parks; n > 50 || n < 50*7/8 {
		t.Errorf("%d segments and %d parks kept, want 50 events at most and seven eighths of that at least", f.segments, f.parks)
	}
}

// A loaded child and this process: the child's threads run thousands of
// short segments while one of its tasks sends messages with arrows to this
// process. The two timelines share one origin: every arrow ends after it
// starts, and no two slices of any thread of either process overlap,
// including the messages this process received in bursts.
func TestTraceChild(t *testing.T) {
	p, peer := startChild(t, "busy", "busy")
	rec := inspect.NewRecorder(inspect.Config{Name: "parent", Timeline: true})
	defer rec.Close()
	s := sched.New(sched.Threads(2), sched.WithTracer(rec))
	if err := s.Run(func(tk *sched.Task) error { pingPong(tk, 2, 500); return nil }); err != nil {
		t.Fatal(err)
	}
	for i := range busyMessages {
		if m, err := peer.Recv(); err != nil || string(m) != "m" {
			t.Fatalf("message %d: Recv = %q, %v", i, m, err)
		}
	}
	// The child's run has ended: all its segments are recorded.
	if m, err := peer.Recv(); err != nil || string(m) != "done" {
		t.Fatalf("Recv = %q, %v; want done", m, err)
	}
	var buf bytes.Buffer
	if err := inspect.WriteTrace(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	f := checkTrace(t, buf.Bytes())
	if !f.pids[p.PID()] || !f.pids[os.Getpid()] {
		t.Errorf("processes %v in the trace, want %d and %d", f.pids, os.Getpid(), p.PID())
	}
	if f.flows["msg"] != busyMessages {
		t.Errorf("%d message arrows, want %d", f.flows["msg"], busyMessages)
	}
	if f.segments < 2*2*500+busyMessages {
		t.Errorf("%d segments in the two processes, want at least %d", f.segments, 2*2*500+busyMessages)
	}
}

// Traces and snapshots taken while two threads record thousands of
// segments into a timeline small enough that its chunks are recycled under
// the readers: every trace is whole (no slice half written, none
// overlapping another, every arrow held), and the race detector sees each
// access of the threads and the readers.
func TestTraceWhileRecording(t *testing.T) {
	rec := inspect.NewRecorder(inspect.Config{Name: "recording", Timeline: true, MaxEvents: 256})
	defer rec.Close()
	s := sched.New(sched.Threads(2), sched.WithTracer(rec))
	var stop atomic.Bool
	warm := make(chan struct{})
	ran := make(chan error, 1)
	go func() {
		ran <- s.Run(func(tk *sched.Task) error {
			pingPongWhile(tk, 2, func(p, round int) bool {
				if p == 0 && round == 1000 {
					close(warm) // more than the timeline keeps
				}
				return !stop.Load()
			})
			return nil
		})
	}()
	<-warm
	dropped := 0
	for range 20 {
		var buf bytes.Buffer
		if err := inspect.WriteTrace(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		if f := checkTrace(t, buf.Bytes()); f.segments == 0 {
			t.Fatalf("a trace taken while the threads run has no segment")
		}
		if bytes.Contains(buf.Bytes(), []byte(`"events dropped"`)) {
			dropped++
		}
		ownScheduler(t, inspect.Snapshot(context.Background(), inspect.Options{}), "recording")
	}
	stop.Store(true)
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if dropped == 0 {
		t.Errorf("no trace dropped events: the timeline was never recycled under a reader")
	}
}

// Nanos keeps every nanosecond through JSON, in microseconds.
func TestNanosJSON(t *testing.T) {
	for _, c := range []struct {
		n    inspect.Nanos
		json string
	}{
		{0, "0.000"},
		{1, "0.001"},
		{999, "0.999"},
		{1000, "1.000"},
		{1234567, "1234.567"},
		{-1500, "-1.500"},
		{1_795_997_670_190_215_123, "1795997670190215.123"}, // since the Unix epoch
		{math.MaxInt64, "9223372036854775.807"},
		{math.MinInt64, "-9223372036854775.808"},
	} {
		b, err := json.Marshal(c.n)
		if err != nil || string(b) != c.json {
			t.Errorf("Marshal(%d) = %s, %v; want %s", c.n, b, err, c.json)
		}
		var n inspect.Nanos
		if err := json.Unmarshal([]byte(c.json), &n); err != nil || n != c.n {
			t.Errorf("Unmarshal(%s) = %d, %v; want %d", c.json, n, err, c.n)
		}
	}
	// What other writers may write: fewer or more decimals, exponents.
	for in, want := range map[string]inspect.Nanos{
		"12":                    12000,
		"1.5":                   1500,
		"1234.5674":             1234567,
		"1234.5675":             1234568,
		"-0.0015":               -2,
		"1.5e3":                 1500000,
		"1795997670190215.1234": 1_795_997_670_190_215_123,
	} {
		var n inspect.Nanos
		if err := json.Unmarshal([]byte(in), &n); err != nil || n != want {
			t.Errorf("Unmarshal(%s) = %d, %v; want %d", in, n, err, want)
		}
	}
	for _, in := range []string{`"1.000"`, "true", "1e300", "9223372036854775.808", "99999999999999999999.000"} {
		var n inspect.Nanos
		if err := json.Unmarshal([]byte(in), &n); err == nil {
			t.Errorf("Unmarshal(%s) = %d, want an error", in, n)
		}
	}
}

func FuzzNanosJSON(f *testing.F) {
	for _, n := range []int64{0, 1, -1, 999, 1001, 1_795_997_670_190_215_123, math.MinInt64, math.MinInt64 + 1, math.MaxInt64} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n int64) {
		b, err := json.Marshal(inspect.Nanos(n))
		if err != nil {
			t.Fatal(err)
		}
		var back inspect.Nanos
		if err := json.Unmarshal(b, &back); err != nil || back != inspect.Nanos(n) {
			t.Fatalf("%d → %s → %d, %v", n, b, back, err)
		}
	})
}
