// Package inspect shows the process → thread → coroutine tree of a running
// weave program: as a snapshot (a tree of values, in JSON), as a timeline
// (Chrome Trace Event JSON, which Perfetto and chrome://tracing open) and as
// a live web page.
//
// # Recording
//
// A Recorder is a sched.Tracer. Give one to each Scheduler to be seen:
//
//	rec := inspect.NewRecorder(inspect.Config{Name: "main", Threads: 2, LockedThreads: true})
//	defer rec.Close()
//	s := sched.New(sched.Threads(2), sched.LockThreads(), sched.MeasureRunTime(), sched.WithTracer(rec))
//
// It keeps the live model of its scheduler: each thread, the task it runs
// and how many task switches it made; each live task, its state, what it
// waits on, its resumes and run time (with sched.MeasureRunTime); and the
// totals of the tasks that ended, which leave the model. With
// Config.LockedThreads each thread's first resume reads its TID, so that a
// snapshot can show the kernel's own counters for that thread beside the
// scheduler's. With Config.Timeline it also records, per thread, every run
// segment, park and wake-up, keeping the latest Config.MaxEvents.
//
// A Recorder's methods run on the scheduler's threads. Each event finds its
// task's entry without a lock and takes that entry's own; a thread's record,
// and with a timeline its events, are written by that thread only, without
// a lock, and read by snapshots and traces as far as the thread has
// published them. So threads do not contend, but for a snapshot or a trace
// download. A snapshot shows a running task's counters as of its last resume (with a
// timeline, plus the time since). With no Recorder, sched pays its one
// branch per event.
//
// # Snapshots
//
// Snapshot returns the tree of this process: pid, name, arguments,
// environment variable names (values only when Options.EnvValues asks),
// resident memory and the kernel's context switches from /proc; each
// registered Recorder's threads and tasks; and the snapshots of the children
// watched through a Peer. Its JSON shape, versioned by Version (the
// "version" field), is
//
//	{"version": 2, "time": "…", "process": {
//	  "pid", "name", "args", "env": [{"name", "value"?}],
//	  "rss", "os_threads", "voluntary_switches", "involuntary_switches",
//	  "schedulers": [{"name", "spawned", "ended", "ended_resumes",
//	     "ended_running_ns", "switches",
//	     "threads": [{"index", "tid"?, "state", "task"?, "resumes", "tasks_run",
//	        "voluntary_switches"?, "involuntary_switches"?, "os_state"?,
//	        "os_wait"?}],
//	     "tasks": [{"id", "name"?, "parent"?, "state", "wait"?, "thread",
//	        "created"?, "resumes", "running_ns"}]}],
//	  "children": [{"name", "pid", "error"?, "process"?: {…the same…}}],
//	  "error"?}}
//
// Fields marked ? are left out when empty. A thread's state is "running" or
// "idle"; a task's is "runnable", "running" or "parked", and "wait" says on
// what, in the scheduler's words ("sleep", "Await", a channel, a mutex, a
// WaitGroup, "context"), or "yield" for a task that yielded. An Await that
// waits for a goroutine of the pool, all busy, says "Await queued" until
// one runs its function.
//
// # Processes
//
// A Peer is one end of a proc.Conn shared by the program's messages and
// control messages. The parent makes one per child with Child, the child one
// with Parent; then both send and receive through it. A Peer reads its Conn
// on a goroutine of its own and answers the other side's requests for a
// snapshot or a trace as they arrive, so the program does nothing for them.
// ChildTask and ParentTask make a Peer whose reader is a task of a run
// instead, parked on the scheduler's poller (socket.Proc): that run's tasks
// receive with RecvTask and send with SendFrom, with no goroutine and no
// Await between them and the other process, and the run lasts until the
// Peer is closed or the other side closes the Conn.
// Every frame a Peer sends starts with one byte of kind: a message of the
// program (with or without a trace arrow), a request (with an 8-byte request
// ID) or an answer to one (the same ID, then JSON or an error text). A child
// that has died, closed its Conn, answers garbage or does not answer within
// Options.Timeout becomes a child entry with an Error: a snapshot never hangs
// and never panics on what a child sends. A child's own children are in its
// answer, so one tree spans a whole process tree.
//
// # Traces
//
// WriteTrace writes the timelines of this process and of its children as
// one Chrome Trace Event file: pid is the process, tid the thread (its TID
// when locked), one complete event per run segment of a task, an instant at
// each park with its reason, an arrow from a waking task's run segment to
// the woken one's next, and an arrow for each message sent with
// Peer.SendFrom, from the sending task to the receiving process's lane of
// that peer. A wake-up's arrow starts at its waker's segment's start, as no
// clock is read for it: viewers bind it to that segment, and Perfetto draws
// it from the segment's end, as the page does. Processes and threads
// are named by metadata events. Each process reads its times as the Unix
// epoch plus its monotonic clock, so that the processes of one machine line
// up; the trace gives them as microseconds, to the nanosecond (three
// decimals, see Nanos), since one origin for all its processes: its earliest
// event. otherData.origin is that moment's time of day.
//
// # The page
//
// Handler serves a page that draws the tree from live snapshots once a
// second — process boxes, a lane per thread, a mark per task colored by its
// state — and a timeline view of the trace; every file of it is embedded in
// the binary. `weave demo --http ADDR` serves it for the demo's processes.
//
// # Costs
//
// BenchmarkOverhead runs one workload — four pairs of tasks passing a value
// back and forth over unbuffered channels, 2,000 round trips and 4,000 task
// switches in all, on two threads — with no tracer, with a tracer that does
// nothing, with a Recorder and with a Recorder that records the timeline,
// interleaved in one run. Medians of 30 runs, six of `go test -run '^$'
// -bench Overhead -benchtime 200x -count 5 ./inspect/`, on the project's
// reference machine (2 cores shared with other jobs, Go 1.26); each ratio is
// the median of the ratios to the run without a tracer beside it:
//
//	no tracer                  538 µs   1.00x
//	a tracer that does nothing 532 µs   0.99x
//	Recorder                   630 µs   1.19x
//	Recorder with Timeline     990 µs   1.81x
//
// Per task switch, the Recorder takes its task's entry lock at the resume,
// the park and the wake-up, and counts the thread's switches: seven locked
// instructions, with no lock shared by two threads. The timeline adds two
// readings of the clock, at the resume and at the park (about 26 ns each
// here; the two are a third of what a thread spends per switch in this
// workload), and one record of 80 bytes that the thread writes without a
// lock; a wake-up reads no clock and writes nothing on the waker's side.
// With no tracer, the scheduler pays one branch per event and this package
// nothing. Snapshot of a scheduler with 10,000 parked tasks takes 11 ms
// (BenchmarkSnapshot), /proc included; it takes each shard's lock in turn,
// so a spawn or an end waits at most for one shard, and other events for
// the copy of their task's entry.
package inspect
