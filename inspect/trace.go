package inspect

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The trace clock: nanoseconds since the Unix epoch, read from the
// monotonic clock, so that the timelines of processes on one machine line
// up and none goes backwards. Events keep these times, and children send
// them so, exactly; WriteTrace writes them from the trace's origin, its
// earliest event (see Nanos).
var (
	epoch     = time.Now()
	epochNano = epoch.UnixNano()
)

func clock() int64 { return epochNano + int64(time.Since(epoch)) }

// Flow arrows need IDs unique across the processes of one trace: the pid
// in the high bits, then whether the arrow is a message's (given when it is
// sent) or a wake-up's (given when the trace is written), then a count. The
// pid is read once: os.Getpid is a system call, and a Go process keeps its
// pid (it forks only to exec).
var (
	flows   atomic.Uint64
	flowPid = uint64(os.Getpid()) << 32
)

const (
	msgFlow  = 0
	wakeFlow = 1 << 31
)

// nextFlow returns a new flow ID of the kind msgFlow or wakeFlow.
func nextFlow(kind uint64) uint64 { return flowPid | kind | flows.Add(1)&(1<<31-1) }

// Lanes of a process in a trace: a locked thread is its TID; an unlocked
// worker a number of its own; messages received from a peer a lane of it.
const (
	workerLaneBase = 1 << 24
	peerLaneBase   = 1 << 25
)

const evMsgIn uint8 = 100 // on a peer's lane: a message with an arrow arrived

// TraceEvent is one event of the Chrome Trace Event format, as WriteTrace
// writes it.
type TraceEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat,omitempty"`
	Ph   string         `json:"ph"`
	Ts   Nanos          `json:"ts"`
	Dur  *Nanos         `json:"dur,omitempty"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	ID   string         `json:"id,omitempty"`
	Bp   string         `json:"bp,omitempty"`
	S    string         `json:"s,omitempty"`
	Args map[string]any `json:"args,omitempty"`
}

// Trace is the file WriteTrace writes.
type Trace struct {
	TraceEvents     []TraceEvent   `json:"traceEvents"`
	DisplayTimeUnit string         `json:"displayTimeUnit"`
	OtherData       map[string]any `json:"otherData"`
}

// Nanos is a time or a duration in a trace, in nanoseconds. In JSON it is
// microseconds, the format's unit, written with three decimals by integer
// arithmetic, so that it keeps every nanosecond.
//
// Rejected: float64 microseconds since the Unix epoch. At that magnitude
// (about 1.8e15) float64 steps by a quarter of a microsecond, while
// durations kept their nanoseconds, so that consecutive run segments of a
// thread overlapped and Perfetto drew them nested.
type Nanos int64

// MarshalJSON writes n as microseconds with three decimals: 1234567 is
// 1234.567.
func (n Nanos) MarshalJSON() ([]byte, error) { return n.append(make([]byte, 0, 24)), nil }

func (n Nanos) append(b []byte) []byte {
	u := uint64(n)
	if n < 0 {
		b = append(b, '-')
		u = -u
	}
	b = strconv.AppendUint(b, u/1000, 10)
	f := u % 1000
	return append(b, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}

// UnmarshalJSON reads a number of microseconds: exactly when it has no
// exponent (a fourth decimal and beyond round to the nearest nanosecond),
// through float64 otherwise.
func (n *Nanos) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	neg := strings.HasPrefix(s, "-")
	whole, frac, _ := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	if whole == "" || strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Abs(f*1e3) >= math.MaxInt64 {
			return fmt.Errorf("inspect: trace time %s is not a number of microseconds", s)
		}
		*n = Nanos(math.Round(f * 1e3))
		return nil
	}
	u, err := strconv.ParseUint(whole+(frac + "000")[:3], 10, 64)
	if err != nil || strings.Trim(frac, "0123456789") != "" {
		return fmt.Errorf("inspect: trace time %s is not a number of microseconds", s)
	}
	if len(frac) > 3 && frac[3] >= '5' {
		u++
	}
	if neg && u <= 1<<63 {
		*n = Nanos(-u)
	} else if !neg && u <= math.MaxInt64 {
		*n = Nanos(u)
	} else {
		return fmt.Errorf("inspect: trace time %s is out of range", s)
	}
	return nil
}

// WriteTrace writes the timeline of this process, its Recorders with
// Config.Timeline and the messages its Peers received, and of the children
// watched with Child (asked for over their Conn, each waited for ten
// seconds at most, or until ctx ends), to w as Chrome Trace Event JSON,
// which Perfetto (ui.perfetto.dev) and chrome://tracing open. In it, pid is the process
// and tid the thread; each run segment of a task is a complete event ("X"),
// each park an instant ("i") with the reason, each wake-up by a task and
// each message between processes an arrow (flow events "s" and "f" with
// the same id, each bound to a run segment or a received message). An
// arrow whose other end was not recorded is left out. A flow event comes
// after the slice that holds it. Times are microseconds, to the
// nanosecond, since the trace's origin: its earliest event, in whichever
// process; otherData.origin is the origin's time of day (RFC 3339).
// otherData.version is Version; otherData.errors lists the children that
// did not answer.
func WriteTrace(ctx context.Context, w io.Writer) error {
	evs, errs := gatherAll(ctx)
	evs = pairFlows(evs)
	origin := fromOrigin(evs)
	t := Trace{
		TraceEvents:     evs,
		DisplayTimeUnit: "ns",
		OtherData: map[string]any{
			"version": Version,
			"errors":  errs,
			"origin":  time.Unix(0, origin).Format(time.RFC3339Nano),
		},
	}
	bw := bufio.NewWriter(w)
	if err := json.NewEncoder(bw).Encode(t); err != nil {
		return err
	}
	return bw.Flush()
}

// fromOrigin makes the times of evs relative to the earliest of them, and
// returns that origin on the trace clock. All processes of the trace share
// it, so their timelines still line up. A reader that parses the times as
// float64 keeps their nanoseconds as long as a trace spans less than about
// a hundred days (2^53 ns).
func fromOrigin(evs []TraceEvent) int64 {
	origin := clock()
	for _, e := range evs {
		if e.Ph != "M" {
			origin = min(origin, int64(e.Ts))
		}
	}
	for i := range evs {
		if evs[i].Ph != "M" {
			evs[i].Ts -= Nanos(origin)
		}
	}
	return origin
}

// gatherAll returns the events of this process and its children, and the
// errors of children that could not give theirs.
func gatherAll(ctx context.Context) ([]TraceEvent, []string) {
	evs := localTrace()
	registry.mu.Lock()
	children := slices.Clone(registry.children)
	registry.mu.Unlock()
	errs := []string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range children {
		wg.Go(func() {
			cev, err := c.trace(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err.Error())
				return
			}
			evs = append(evs, cev...)
		})
	}
	wg.Wait()
	return evs, errs
}

// gather is what a child answers to a trace request: its events and its own
// children's, arrows not yet paired (their other ends may be elsewhere),
// times on the trace clock (the parent chooses the origin).
func gather(ctx context.Context) []TraceEvent {
	evs, _ := gatherAll(ctx)
	return evs
}

// traceTimeout bounds the wait for a child's trace: a download, not a live
// poll, and a child may have a few hundred thousand events to write.
const traceTimeout = 10 * time.Second

// trace asks the child for its events and names its process after p.
func (p *Peer) trace(ctx context.Context) ([]TraceEvent, error) {
	b, kind, err := p.request(ctx, kindTraceReq, nil, traceTimeout)
	if err != nil {
		return nil, err
	}
	if kind != kindTraceResp {
		return nil, fmt.Errorf("%w from %s: frame kind %d", ErrBadAnswer, p.name, kind)
	}
	var evs []TraceEvent
	if err := json.Unmarshal(b, &evs); err != nil {
		return nil, fmt.Errorf("%w from %s: %v", ErrBadAnswer, p.name, err)
	}
	for i := range evs {
		e := &evs[i]
		if e.Ph == "M" && e.Name == "process_name" && e.Pid == p.pid {
			e.Args = map[string]any{"name": fmt.Sprintf("%s (pid %d)", p.name, p.pid)}
		}
	}
	return evs, nil
}

// localTrace converts this process's recorded events.
func localTrace() []TraceEvent {
	pid := os.Getpid()
	name := "process"
	if len(os.Args) > 0 {
		name = filepath.Base(os.Args[0])
	}
	evs := []TraceEvent{{
		Name: "process_name", Ph: "M", Pid: pid,
		Args: map[string]any{"name": fmt.Sprintf("%s (pid %d)", name, pid)},
	}}
	registry.mu.Lock()
	recs := slices.Clone(registry.recs)
	peers := slices.Clone(registry.peers)
	registry.mu.Unlock()
	for ri, r := range recs {
		if !r.cfg.Timeline {
			continue
		}
		evs = r.trace(evs, pid, ri)
	}
	for _, p := range peers {
		p.mu.Lock()
		if len(p.events) > 0 {
			evs = append(evs, TraceEvent{
				Name: "thread_name", Ph: "M", Pid: pid, Tid: p.lane,
				Args: map[string]any{"name": "messages from " + p.name},
			})
		}
		for i, e := range p.events {
			// A microsecond, to be seen, unless the next message came
			// sooner: slices of one lane must not overlap.
			d := Nanos(1000)
			if i+1 < len(p.events) {
				d = min(d, Nanos(p.events[i+1].ts-e.ts))
			}
			evs = append(evs,
				TraceEvent{Name: "message from " + p.name, Cat: "msg", Ph: "X", Ts: Nanos(e.ts), Dur: &d, Pid: pid, Tid: p.lane},
				TraceEvent{Name: "message", Cat: "msg", Ph: "f", Bp: "e", Ts: Nanos(e.ts), Pid: pid, Tid: p.lane, ID: flowID(e.link)})
		}
		p.mu.Unlock()
	}
	return evs
}

// trace appends the timeline of r, the recorder ri of process pid, to evs.
func (r *Recorder) trace(evs []TraceEvent, pid, ri int) []TraceEvent {
	ths := *r.threads.Load()
	recorded := make([][]event, len(ths))
	dropped := make([]uint64, len(ths))
	for i, th := range ths {
		recorded[i], dropped[i] = th.events()
	}
	// A segment names the segment that woke its task: give each such
	// arrow a flow ID, which starts at the waker and ends here.
	wakes := map[uint64][]uint64{} // by waker: the arrows that start there
	for i := range recorded {
		for j := range recorded[i] {
			if e := &recorded[i][j]; e.kind != evMsgOut && e.link != 0 {
				f := nextFlow(wakeFlow)
				wakes[e.link] = append(wakes[e.link], f)
				e.link = f
			}
		}
	}
	for i, th := range ths {
		tid := int(th.tid.Load())
		if tid == 0 {
			tid = workerLaneBase + ri<<8 + th.index
		}
		evs = append(evs, TraceEvent{
			Name: "thread_name", Ph: "M", Pid: pid, Tid: tid,
			Args: map[string]any{"name": threadName(r, th)},
		}, TraceEvent{
			Name: "thread_sort_index", Ph: "M", Pid: pid, Tid: tid,
			Args: map[string]any{"sort_index": ri<<8 + th.index},
		})
		// A thread records a segment when it ends, after the messages
		// sent in it: hold those back until it is written, since viewers
		// bind an arrow to a slice already read. Every arrow is written
		// after the slice that holds it.
		var held []TraceEvent
		for _, e := range recorded[i] {
			if e.kind == evMsgOut {
				held = append(held, TraceEvent{Name: "message", Cat: "msg", Ph: "s", Ts: Nanos(e.ts), Pid: pid, Tid: tid, ID: flowID(e.link),
					Args: map[string]any{"to": e.name}})
				continue
			}
			evs = append(evs, e.segment(pid, tid))
			if e.link != 0 {
				evs = append(evs, TraceEvent{Name: "wake", Cat: "wake", Ph: "f", Bp: "e", Ts: Nanos(e.ts), Pid: pid, Tid: tid, ID: flowID(e.link)})
			}
			// The arrows to the tasks it woke start at its start: viewers
			// bind them to the slice (Perfetto draws them from its end).
			for _, f := range wakes[wakeLink(th.index, e.seq)] {
				evs = append(evs, TraceEvent{Name: "wake", Cat: "wake", Ph: "s", Ts: Nanos(e.ts), Pid: pid, Tid: tid, ID: flowID(f)})
			}
			evs = append(evs, held...)
			held = held[:0]
			if e.kind == evPark {
				evs = append(evs, TraceEvent{Name: "park", Cat: "park", Ph: "i", S: "t", Ts: Nanos(e.ts + e.dur), Pid: pid, Tid: tid,
					Args: map[string]any{"task": e.task, "reason": e.why.String()}})
			}
		}
		// What is still held was sent by a segment still running, which has
		// no slice yet: left out, pairFlows drops the other ends, as it
		// drops the arrows whose waker's segment was dropped or runs.
		if dropped[i] > 0 {
			evs = append(evs, TraceEvent{
				Name: "events dropped", Ph: "i", S: "t", Pid: pid, Tid: tid,
				Ts:   Nanos(clock()),
				Args: map[string]any{"dropped": dropped[i], "max_events": r.cfg.MaxEvents},
			})
		}
	}
	return evs
}

func threadName(r *Recorder, th *thread) string {
	if tid := th.tid.Load(); tid != 0 {
		return fmt.Sprintf("%s thread %d (tid %d)", r.cfg.Name, th.index, tid)
	}
	return fmt.Sprintf("%s thread %d", r.cfg.Name, th.index)
}

func flowID(f uint64) string { return "0x" + strconv.FormatUint(f, 16) }

// segment is the slice of a run segment (evPark, evEnd).
func (e event) segment(pid, tid int) TraceEvent {
	d := Nanos(e.dur)
	name := e.name
	if name == "" {
		name = "task " + strconv.FormatUint(e.task, 10)
	}
	return TraceEvent{Name: name, Cat: "task", Ph: "X", Ts: Nanos(e.ts), Dur: &d, Pid: pid, Tid: tid,
		Args: map[string]any{"task": e.task}}
}

// pairFlows drops the arrow ends whose other end is not in evs.
func pairFlows(evs []TraceEvent) []TraceEvent {
	type ends struct{ s, f int }
	seen := map[string]ends{}
	for _, e := range evs {
		switch e.Ph {
		case "s":
			x := seen[e.Cat+e.ID]
			x.s++
			seen[e.Cat+e.ID] = x
		case "f":
			x := seen[e.Cat+e.ID]
			x.f++
			seen[e.Cat+e.ID] = x
		}
	}
	return slices.DeleteFunc(evs, func(e TraceEvent) bool {
		if e.Ph != "s" && e.Ph != "f" {
			return false
		}
		x := seen[e.Cat+e.ID]
		return x.s == 0 || x.f == 0
	})
}
