package inspect

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/weavert/weave/sched"
	"golang.org/x/sys/unix"
)

// Config configures a Recorder.
type Config struct {
	// Name names the scheduler in snapshots and traces; "sched" if empty.
	Name string
	// Threads is the scheduler's number of threads (sched.Threads), so that
	// snapshots show the threads that have not run a task yet. Threads
	// appear at their first event in any case.
	Threads int
	// LockedThreads says that the scheduler runs with sched.LockThreads:
	// then each thread's first resume reads its TID (one system call per
	// thread), which snapshots show beside the kernel's counters for it.
	LockedThreads bool
	// Timeline records every run segment, park and wake-up for WriteTrace.
	Timeline bool
	// MaxEvents bounds the timeline of each thread: a thread keeps its
	// latest events (run segments, parks, wake-ups by a task and messages
	// sent), at most MaxEvents of them and at least seven eighths as many,
	// dropping the oldest; the trace says how many it dropped. The default
	// is 100,000; less than 48 counts as 48 (a segment, its park and its
	// wake-up go together, and are dropped together).
	MaxEvents int
}

const (
	defaultMaxEvents = 100_000
	minMaxEvents     = 16 * maxWeight
)

// maxEvents is Config.MaxEvents n as a Recorder uses it.
func maxEvents(n int) int {
	if n <= 0 {
		return defaultMaxEvents
	}
	return max(n, minMaxEvents)
}

// Recorder is a sched.Tracer that keeps the live picture of one Scheduler:
// its threads and what each runs, its live tasks with their state, wait
// reason and counters, and the totals of the tasks that ended. With
// Config.Timeline it also records the timeline that WriteTrace writes.
//
// Give it to one Scheduler with sched.WithTracer (and sched.MeasureRunTime
// for run times), and to only one: each thread of that scheduler writes its
// own record without a lock. A Recorder appears in this process's snapshots
// and traces from NewRecorder until Close. It may serve several Runs of its
// scheduler, one after the other: the main task's spawn starts a new run's
// picture.
//
// Its methods are the Tracer's, called by the scheduler; they find a task
// without a lock, take that task's own lock, and no lock of the thread, so
// that threads do not contend.
type Recorder struct {
	cfg    Config
	locked bool

	mu      sync.Mutex                // guards growing threads
	threads atomic.Pointer[[]*thread] // by worker index

	shards [nShards]shard
	// cache finds a task's entry without a lock: slot ID%cacheSize holds
	// the entry of a live task with that slot, or nil. It is written under
	// the lock of the shard of the slot's tasks (cacheSize is a multiple of
	// nShards), so it holds only entries of the table.
	//
	// Rejected: looking tasks up in the table only. Its lock and map cost
	// each event more than the rest of what the live model does.
	cache [cacheSize]atomic.Pointer[entry]

	// Totals of the tasks that ended.
	ended, endedResumes atomic.Uint64
	endedRunning        atomic.Int64
	spawned             atomic.Uint64
}

const (
	nShards   = 64
	cacheSize = 4096
)

type shard struct {
	mu sync.Mutex
	m  map[*sched.Task]*entry
	_  [40]byte // one shard per cache line
}

// entry is the live state of one task. Its shard's lock guards its place
// in the table and site; mu guards the rest but t and parent, which do not
// change. The task's own events write it, one after the other, and
// snapshots read it. Only the task's resume writes thread: the running
// task's own calls read it without mu (threadOf).
type entry struct {
	t      *sched.Task
	parent uint64
	mu     sync.Mutex
	state  uint8
	why    sched.WaitReason // while parked
	thread int32            // the thread it last ran on, -1 before it first runs
	// The thread's resumes when it last resumed there: of two tasks that a
	// snapshot sees running on one thread, the later one runs.
	resumedAt uint64
	resumes   uint64
	running   time.Duration
	segStart  int64  // while running: when the segment began (trace clock)
	wokenBy   uint64 // the segment that woke it, for its next one (event.link)
	site      string // creation site, filled by the first snapshot after it ran; guarded by the shard's lock
	// 128 bytes in all, a size class whose objects are aligned to it: the
	// entries of tasks that run on different threads share no cache line.
	_ [8]byte
}

// An entry of another size does not compile.
var (
	_ [128 - unsafe.Sizeof(entry{})]byte
	_ [unsafe.Sizeof(entry{}) - 128]byte
)

const (
	stRunnable uint8 = iota
	stRunning
	stParked
)

var stateNames = [...]string{"runnable", "running", "parked"}

// thread is one worker of the scheduler. Its events come from that worker
// only, so it is the only writer of everything here but mu's fields.
type thread struct {
	_     [64]byte // its own cache lines: each worker writes its record at every switch
	index int
	// Written by the thread's own events only, read by snapshots: atomics,
	// so that a Recorder without a timeline takes no lock of the thread.
	tid     atomic.Int64
	resumes atomic.Uint64
	started atomic.Uint64 // tasks whose first run was here
	// Rejected: the running task, as an atomic pointer for snapshots. A
	// snapshot finds it in the task table, which spares each resume a
	// locked write.

	// The timeline, in chunks, oldest first (a new chunk copies no record).
	// The thread fills the last chunk without a lock and publishes how far
	// with an atomic store (pub), which a reader loads before it reads that
	// far: a record is never read half written. mu orders the rest: the
	// thread takes it only to start or grow a chunk, and a reader holds it
	// while it copies, so that no chunk is recycled under the copy.
	//
	// Rejected: a lock per event, taken by the thread and by readers, as
	// first written. Two or three locks per task switch cost more than the
	// events themselves.
	mu      sync.Mutex
	chunks  [][]event // guarded by mu; each holds len records, the last pub
	weights []int     // guarded by mu: the events in each chunk but the last
	kept    int       // guarded by mu: the sum of weights
	dropped uint64    // guarded by mu
	pub     atomic.Int32

	// The thread's own, read by no other goroutine.
	last     []event // the last chunk, to its capacity
	n        int     // records written in last; pub lags until a segment ends
	w        int     // the events they hold (weight)
	seq      uint32  // the number of the running task's segment
	segStart int64   // when it began
	segWaker uint64  // the segment that woke its task (event.link)
	_        [64]byte
}

// A chunk holds up to chunkMax events, in records of one to maxWeight
// events each: a segment is one, with its park and the wake-up that led to
// it; a message sent is one.
const (
	chunkMax  = 1024
	maxWeight = 3
)

// chunkEvents is how many events a chunk of r holds: so few that dropping
// one keeps seven eighths of MaxEvents, and never less than a record.
func (r *Recorder) chunkEvents() int { return min(chunkMax, r.cfg.MaxEvents/16) }

// event is one timeline record of a thread: one to maxWeight events.
//
// A wake-up is not an event of its own: the woken task's next segment
// names the segment that woke it (link), by thread and number, and the
// trace writer draws the arrow between the two. Rejected: an event on the
// waker's thread at each wake-up, with a flow ID, as first written. It was
// half of what the timeline wrote.
type event struct {
	kind uint8
	seq  uint32 // a segment's number on its thread, counted from 1 (it wraps)
	ts   int64  // trace clock, ns
	dur  int64  // a segment's
	task uint64
	// For a segment, the segment that woke its task (see wakeLink), or 0;
	// for a message, the arrow's flow ID.
	link uint64
	name string           // a segment's task's name; a message's receiver
	why  sched.WaitReason // what the task of an evPark segment waits for
}

const (
	evPark   uint8 = iota // a task ran from ts for dur, then parked for why
	evEnd                 // a task ran from ts for dur, and ended
	evMsgOut              // the running task sent a message to another process
)

// wakeLink names segment seq of thread i as a waker: never 0.
func wakeLink(i int, seq uint32) uint64 { return 1<<63 | uint64(i)<<32 | uint64(seq) }

// NewRecorder returns a Recorder configured by c, registered with this
// process's snapshots and traces until Close.
func NewRecorder(c Config) *Recorder {
	if c.Name == "" {
		c.Name = "sched"
	}
	c.MaxEvents = maxEvents(c.MaxEvents)
	r := &Recorder{cfg: c, locked: c.LockedThreads}
	for i := range r.shards {
		r.shards[i].m = make(map[*sched.Task]*entry)
	}
	ths := make([]*thread, max(c.Threads, 0))
	for i := range ths {
		ths[i] = &thread{index: i}
	}
	r.threads.Store(&ths)
	registry.mu.Lock()
	registry.recs = append(registry.recs, r)
	registry.mu.Unlock()
	return r
}

// Close removes r from this process's snapshots and traces.
func (r *Recorder) Close() {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	for i, x := range registry.recs {
		if x == r {
			registry.recs = append(registry.recs[:i], registry.recs[i+1:]...)
			return
		}
	}
}

// Name returns the scheduler's name given in Config.
func (r *Recorder) Name() string { return r.cfg.Name }

func (r *Recorder) shard(t *sched.Task) *shard { return &r.shards[t.ID()%nShards] }

// entry returns t's entry, or nil if r does not know t.
func (r *Recorder) entry(t *sched.Task) *entry {
	if e := r.cache[t.ID()%cacheSize].Load(); e != nil && e.t == t {
		return e
	}
	return r.lookup(t)
}

// lookup finds t's entry in the table, and caches it.
func (r *Recorder) lookup(t *sched.Task) *entry {
	sh := r.shard(t)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[t]
	if e != nil {
		r.cache[t.ID()%cacheSize].Store(e)
	}
	return e
}

// thread returns worker i's record, creating it at its first event.
func (r *Recorder) thread(i int) *thread {
	if ts := r.threads.Load(); uint(i) < uint(len(*ts)) {
		return (*ts)[i]
	}
	return r.newThread(i)
}

// newThread creates the records of workers up to i.
func (r *Recorder) newThread(i int) *thread {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := *r.threads.Load()
	if i < len(ts) {
		return ts[i]
	}
	grown := make([]*thread, i+1)
	copy(grown, ts)
	for j := len(ts); j <= i; j++ {
		grown[j] = &thread{index: j}
	}
	r.threads.Store(&grown)
	return grown[i]
}

// now reads the trace clock, for a timeline only: the live model needs no
// clock, and a reading is a good part of an event's cost.
func (r *Recorder) now() int64 {
	if !r.cfg.Timeline {
		return 0
	}
	return clock()
}

// Spawn implements sched.Tracer.
func (r *Recorder) Spawn(t, parent *sched.Task) {
	e := &entry{t: t, thread: -1}
	if parent != nil {
		e.parent = parent.ID()
	} else {
		r.newRun()
	}
	r.spawned.Add(1)
	sh := r.shard(t)
	sh.mu.Lock()
	sh.m[t] = e
	r.cache[t.ID()%cacheSize].Store(e)
	sh.mu.Unlock()
}

// newRun forgets the tasks of an earlier Run, which ended with it.
func (r *Recorder) newRun() {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		for j := i; j < cacheSize; j += nShards {
			if r.cache[j].Load() != nil { // rarely: Done cleared the slots of ended tasks
				r.cache[j].Store(nil)
			}
		}
		sh.mu.Unlock()
	}
	for _, th := range *r.threads.Load() {
		th.tid.Store(0)
	}
}

// Resume implements sched.Tracer.
func (r *Recorder) Resume(t *sched.Task, i int) {
	th := r.thread(i)
	now := r.now()
	st := t.Stats()
	e := r.entry(t)
	if e == nil {
		return
	}
	n := th.resumes.Add(1)
	e.mu.Lock()
	first := e.thread < 0
	e.resumes = st.Resumes
	e.state = stRunning
	e.thread = int32(i)
	e.resumedAt = n
	e.segStart = now
	waker := e.wokenBy
	e.wokenBy = 0
	e.mu.Unlock()

	if r.locked && th.tid.Load() == 0 {
		// The worker runs on its locked thread here; once per thread.
		th.tid.Store(int64(unix.Gettid()))
	}
	if first {
		th.started.Add(1)
	}
	th.seq = uint32(n)
	th.segStart, th.segWaker = now, waker
}

// Park implements sched.Tracer.
func (r *Recorder) Park(t *sched.Task, why sched.WaitReason) {
	now := r.now()
	st := t.Stats()
	e := r.entry(t)
	if e == nil {
		return
	}
	e.mu.Lock()
	if why.Kind == sched.WaitYield {
		e.state = stRunnable
	} else {
		e.state = stParked
	}
	e.why = why
	e.resumes, e.running = st.Resumes, st.Running
	i := e.thread
	e.mu.Unlock()
	r.endSegment(t, i, now, evPark, why)
}

// Rewait implements sched.Tracer. The timeline keeps the park's reason: it
// comes from the Await's goroutine, and a thread's timeline is written by
// that thread only.
func (r *Recorder) Rewait(t *sched.Task, why sched.WaitReason) {
	e := r.entry(t)
	if e == nil {
		return
	}
	e.mu.Lock()
	e.why = why
	e.mu.Unlock()
}

// endSegment records the end of t's run segment on thread i, where it
// parked for why (evPark) or ended (evEnd).
func (r *Recorder) endSegment(t *sched.Task, i int32, now int64, kind uint8, why sched.WaitReason) {
	if i < 0 {
		return
	}
	th := r.thread(int(i))
	if r.cfg.Timeline {
		w := 1
		if kind == evPark {
			w++
		}
		if th.segWaker != 0 {
			w++
		}
		th.put(r, w, event{kind: kind, seq: th.seq, ts: th.segStart, dur: now - th.segStart, task: t.ID(), link: th.segWaker, name: t.Name(), why: why})
		th.pub.Store(int32(th.n))
	}
}

// Wake implements sched.Tracer.
func (r *Recorder) Wake(t, by *sched.Task) {
	var waker uint64
	if by != nil && r.cfg.Timeline {
		if th := r.threadOf(by); th != nil {
			waker = wakeLink(th.index, th.seq)
		}
	}
	e := r.entry(t)
	if e == nil {
		return
	}
	e.mu.Lock()
	e.state = stRunnable
	e.wokenBy = waker
	e.mu.Unlock()
}

// Done implements sched.Tracer.
func (r *Recorder) Done(t *sched.Task, err error) {
	now := r.now()
	st := t.Stats()
	sh := r.shard(t)
	sh.mu.Lock()
	e := sh.m[t]
	delete(sh.m, t)
	r.cache[t.ID()%cacheSize].CompareAndSwap(e, nil)
	sh.mu.Unlock()
	r.ended.Add(1)
	r.endedResumes.Add(st.Resumes)
	r.endedRunning.Add(int64(st.Running))
	if e == nil {
		return
	}
	e.mu.Lock()
	running, i := e.state == stRunning, e.thread
	e.mu.Unlock()
	// A task unwound at the end of a run (a deadlock) ends without
	// running: it has no segment to close.
	if running {
		r.endSegment(t, i, now, evEnd, sched.WaitReason{})
	}
}

// put appends ev, worth w events, to th's timeline, for readers to see at
// the next publication. Only th's own thread calls it.
func (th *thread) put(r *Recorder, w int, ev event) {
	if th.n == len(th.last) || th.w+w > r.chunkEvents() {
		th.next(r, w)
	}
	th.last[th.n] = ev
	th.n++
	th.w += w
}

// next makes room in th's timeline for a record worth w events: it grows
// the last chunk if that has room for the events but not the record, or
// else starts a chunk: a new one, or, once th holds MaxEvents, its oldest.
// The records of a chunk that is no longer the last are readable from here
// on.
func (th *thread) next(r *Recorder, w int) {
	limit := r.chunkEvents()
	th.mu.Lock()
	defer th.mu.Unlock()
	k := len(th.chunks)
	if k > 0 && th.n == len(th.last) && th.w+w <= limit {
		// Light records: a chunk starts with room for limit/maxWeight.
		grown := make([]event, min(2*len(th.last), limit))
		copy(grown, th.last)
		th.chunks[k-1], th.last = grown[:th.n], grown
		return
	}
	var reuse []event
	if k > 0 {
		th.chunks[k-1] = th.last[:th.n]
		th.weights = append(th.weights, th.w)
		th.kept += th.w
		for len(th.weights) > 0 && th.kept+limit > r.cfg.MaxEvents {
			// Full: drop the oldest chunks, and reuse one.
			reuse = th.chunks[0]
			th.dropped += uint64(th.weights[0])
			th.kept -= th.weights[0]
			th.chunks[0] = nil
			th.chunks, th.weights = th.chunks[1:], th.weights[1:]
		}
	}
	if reuse == nil {
		reuse = make([]event, (limit+maxWeight-1)/maxWeight)
	}
	th.chunks = append(th.chunks, reuse[:0])
	th.last, th.n, th.w = reuse[:cap(reuse)], 0, 0
	th.pub.Store(0)
}

// events returns a copy of th's published timeline and the number of
// events it dropped. It may be called from any goroutine.
func (th *thread) events() ([]event, uint64) {
	th.mu.Lock()
	defer th.mu.Unlock()
	k := len(th.chunks)
	if k == 0 {
		return nil, th.dropped
	}
	pub := int(th.pub.Load())
	n := pub
	for _, c := range th.chunks[:k-1] {
		n += len(c)
	}
	evs := make([]event, 0, n)
	for _, c := range th.chunks[:k-1] {
		evs = append(evs, c...)
	}
	return append(evs, th.chunks[k-1][:pub]...), th.dropped
}

// messageOut records, if r knows t, that t sent a message to the process
// to, and returns the message's flow ID, or 0 if it did not.
func (r *Recorder) messageOut(t *sched.Task, to string) uint64 {
	if !r.cfg.Timeline {
		return 0
	}
	th := r.threadOf(t)
	if th == nil {
		return 0
	}
	flow := nextFlow(msgFlow)
	th.put(r, 1, event{kind: evMsgOut, ts: clock(), task: t.ID(), link: flow, name: to})
	return flow
}

// threadOf returns the thread of t, the running task that calls it, or nil
// if r does not know t (it may be another recorder's). It reads t's entry
// without its lock: only t's resume writes the thread, and that resume was
// on this thread, before t could call.
func (r *Recorder) threadOf(t *sched.Task) *thread {
	e := r.entry(t)
	if e == nil || e.thread < 0 {
		return nil
	}
	return r.thread(int(e.thread))
}
