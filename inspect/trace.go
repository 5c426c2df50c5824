package inspect

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The trace clock: nanoseconds since the Unix epoch, read from the
// monotonic clock, so that the timelines of processes on one machine line
// up and none goes backwards.
var (
	epoch     = time.Now()
	epochNano = epoch.UnixNano()
)

func clock() int64 { return epochNano + int64(time.Since(epoch)) }

// Flow arrows need IDs unique across the processes of one trace: the pid
// in the high bits.
var flows atomic.Uint64

func nextFlow() uint64 { return uint64(os.Getpid())<<32 | flows.Add(1)&(1<<32-1) }

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
	Ts   float64        `json:"ts"`
	Dur  *float64       `json:"dur,omitempty"`
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

func us(ns int64) float64 { return float64(ns) / 1e3 }

// WriteTrace writes the timeline of this process, its Recorders with
// Config.Timeline and the messages its Peers received, and of the children
// watched with Child (asked for over their Conn, each waited for ten
// seconds at most, or until ctx ends), to w as Chrome Trace Event JSON,
// which Perfetto (ui.perfetto.dev) and chrome://tracing open. In it, pid is the process
// and tid the thread; each run segment of a task is a complete event ("X"),
// each park an instant ("i") with the reason, each wake-up by a task and
// each message between processes an arrow (flow events "s" and "f" with
// the same id, each bound to a run segment or a received message). An
// arrow whose other end was not recorded is left out. otherData.version is
// Version; otherData.errors lists the children that did not answer.
func WriteTrace(ctx context.Context, w io.Writer) error {
	evs, errs := gatherAll(ctx)
	evs = pairFlows(evs)
	t := Trace{
		TraceEvents:     evs,
		DisplayTimeUnit: "ns",
		OtherData:       map[string]any{"version": Version, "errors": errs},
	}
	bw := bufio.NewWriter(w)
	if err := json.NewEncoder(bw).Encode(t); err != nil {
		return err
	}
	return bw.Flush()
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
// children's, arrows not yet paired (their other ends may be elsewhere).
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
		for _, th := range *r.threads.Load() {
			th.mu.Lock()
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
			for _, c := range th.events {
				for _, e := range c {
					evs = append(evs, e.trace(pid, tid))
				}
			}
			if th.dropped > 0 {
				evs = append(evs, TraceEvent{
					Name: "events dropped", Ph: "i", S: "t", Pid: pid, Tid: tid,
					Ts:   us(clock()),
					Args: map[string]any{"dropped": th.dropped, "max_events": r.cfg.MaxEvents},
				})
			}
			th.mu.Unlock()
		}
	}
	for _, p := range peers {
		p.mu.Lock()
		if len(p.events) > 0 {
			evs = append(evs, TraceEvent{
				Name: "thread_name", Ph: "M", Pid: pid, Tid: p.lane,
				Args: map[string]any{"name": "messages from " + p.name},
			})
		}
		for _, e := range p.events {
			d := 1.0
			evs = append(evs,
				TraceEvent{Name: "message from " + p.name, Cat: "msg", Ph: "X", Ts: us(e.ts), Dur: &d, Pid: pid, Tid: p.lane},
				TraceEvent{Name: "message", Cat: "msg", Ph: "f", Bp: "e", Ts: us(e.ts), Pid: pid, Tid: p.lane, ID: flowID(e.flow)})
		}
		p.mu.Unlock()
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

func (e event) trace(pid, tid int) TraceEvent {
	switch e.kind {
	case evSegment:
		d := us(e.dur)
		name := e.name
		if name == "" {
			name = "task " + strconv.FormatUint(e.task, 10)
		}
		return TraceEvent{Name: name, Cat: "task", Ph: "X", Ts: us(e.ts), Dur: &d, Pid: pid, Tid: tid,
			Args: map[string]any{"task": e.task}}
	case evPark:
		return TraceEvent{Name: "park", Cat: "park", Ph: "i", S: "t", Ts: us(e.ts), Pid: pid, Tid: tid,
			Args: map[string]any{"task": e.task, "reason": e.why.String()}}
	case evWakeOut:
		return TraceEvent{Name: "wake", Cat: "wake", Ph: "s", Ts: us(e.ts), Pid: pid, Tid: tid, ID: flowID(e.flow)}
	case evWakeIn:
		return TraceEvent{Name: "wake", Cat: "wake", Ph: "f", Bp: "e", Ts: us(e.ts), Pid: pid, Tid: tid, ID: flowID(e.flow)}
	default: // evMsgOut
		return TraceEvent{Name: "message", Cat: "msg", Ph: "s", Ts: us(e.ts), Pid: pid, Tid: tid, ID: flowID(e.flow),
			Args: map[string]any{"to": e.arg}}
	}
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
