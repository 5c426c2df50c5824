package inspect

import (
	"cmp"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weavert/weave/internal/procfs"
	"github.com/weavert/weave/proc"
)

// Version is the version of the snapshot's and the trace's JSON shape. It
// changes when a field changes meaning or goes away; new fields may appear
// without a new version. Version 2: a trace's times count from its origin
// (otherData.origin), not from the Unix epoch.
const Version = 2

// Tree is a snapshot: this process, its schedulers, threads and tasks, and
// the children it watches, each with their own.
type Tree struct {
	Version int       `json:"version"`
	Time    time.Time `json:"time"`
	Process *Process  `json:"process"`
}

// Process is one process of the tree.
type Process struct {
	PID  int      `json:"pid"`
	Name string   `json:"name"`
	Args []string `json:"args"`
	// Env lists the environment's variables, sorted by name. Values are
	// redacted unless Options.EnvValues asked for them.
	Env []EnvVar `json:"env"`
	// RSS is the resident memory in bytes; OSThreads the kernel's threads
	// of the process; Voluntary and Involuntary the context switches of
	// those threads, summed (from /proc).
	RSS         int64  `json:"rss"`
	OSThreads   int    `json:"os_threads"`
	Voluntary   uint64 `json:"voluntary_switches"`
	Involuntary uint64 `json:"involuntary_switches"`
	// Schedulers are the Recorders registered in the process.
	Schedulers []Scheduler `json:"schedulers"`
	// Children are the processes watched with Child, each with its own
	// snapshot or the error that kept it from coming.
	Children []ChildProcess `json:"children"`
	// Error says what could not be read (such as /proc), if anything.
	Error string `json:"error,omitempty"`
}

// EnvVar is one environment variable; Value is empty when redacted.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// Scheduler is the live picture of one Scheduler, as its Recorder saw it.
type Scheduler struct {
	Name    string   `json:"name"`
	Threads []Thread `json:"threads"`
	// Tasks are the live tasks, by ID.
	Tasks []Task `json:"tasks"`
	// Spawned counts the tasks started; Ended those that ended, with the
	// resumes and run time they had.
	Spawned        uint64        `json:"spawned"`
	Ended          uint64        `json:"ended"`
	EndedResumes   uint64        `json:"ended_resumes"`
	EndedRunningNS time.Duration `json:"ended_running_ns"`
	// Switches counts the task switches of all threads: each resume of a
	// task is one switch to it (and one back, when it parks or ends).
	Switches uint64 `json:"switches"`
}

// Thread is one thread (worker) of a scheduler.
type Thread struct {
	Index int `json:"index"`
	// TID is the kernel's thread ID, when the scheduler locks its threads
	// (0 otherwise: a worker then moves between OS threads).
	TID int `json:"tid,omitempty"`
	// State is "running" while a task runs on it, else "idle".
	State string `json:"state"`
	// Task is the ID of the task it runs now, 0 if none.
	Task uint64 `json:"task,omitempty"`
	// Resumes counts the task switches it performed; TasksRun the tasks
	// that started running on it.
	Resumes  uint64 `json:"resumes"`
	TasksRun uint64 `json:"tasks_run"`
	// Voluntary and Involuntary are the kernel's context switches of TID.
	Voluntary   uint64 `json:"voluntary_switches,omitempty"`
	Involuntary uint64 `json:"involuntary_switches,omitempty"`
	// OSState is the kernel's state letter of TID (R, S, D, …).
	OSState string `json:"os_state,omitempty"`
	// OSWait is where in the kernel TID sleeps, when it does (its wchan,
	// see proc.Thread.WaitChannel): do_epoll_wait when it waits in the
	// scheduler's poller, futex_do_wait when it waits to be handed work.
	OSWait string `json:"os_wait,omitempty"`
}

// Task is one live task.
type Task struct {
	ID     uint64 `json:"id"`
	Name   string `json:"name,omitempty"`
	Parent uint64 `json:"parent,omitempty"`
	// State is "runnable", "running" or "parked".
	State string `json:"state"`
	// Wait is what a parked task waits on ("sleep", "Await", "Await
	// queued", a channel…), or "yield" for a task that yielded.
	Wait string `json:"wait,omitempty"`
	// Thread is the thread it runs or last ran on, -1 before it first ran.
	Thread int `json:"thread"`
	// Created names the function it runs and where that is defined. Empty
	// until the task has first run.
	Created   string        `json:"created,omitempty"`
	Resumes   uint64        `json:"resumes"`
	RunningNS time.Duration `json:"running_ns"`
}

// ChildProcess is a child in the tree: its snapshot, or why there is none.
type ChildProcess struct {
	Name    string   `json:"name"`
	PID     int      `json:"pid"`
	Error   string   `json:"error,omitempty"`
	Process *Process `json:"process,omitempty"`
}

// Options tune Snapshot.
type Options struct {
	// EnvValues includes the environment's values. By default only the
	// names are shown: values often hold secrets.
	EnvValues bool
	// Timeout bounds the wait for each child's answer; 2 s if zero. A child
	// that does not answer in time is an error entry in the tree.
	Timeout time.Duration
}

const defaultTimeout = 2 * time.Second

// registry is what this process shows: its recorders and watched children.
var registry struct {
	mu       sync.Mutex
	recs     []*Recorder
	children []*Peer
	peers    []*Peer
}

// Snapshot returns the tree of this process: its pid, environment, memory
// and context switches, the threads and tasks of every registered Recorder,
// and the snapshots of the children watched with Child, asked for over their
// Conn at once. A child that has gone, answers garbage or does not answer
// within Options.Timeout (or before ctx ends) is an entry with an Error.
// Snapshot may be called from any goroutine, at any time.
func Snapshot(ctx context.Context, opts Options) *Tree {
	p := local(opts)
	registry.mu.Lock()
	children := slices.Clone(registry.children)
	registry.mu.Unlock()
	p.Children = make([]ChildProcess, len(children))
	var wg sync.WaitGroup
	for i, c := range children {
		wg.Go(func() { p.Children[i] = c.snapshot(ctx, opts) })
	}
	wg.Wait()
	return &Tree{Version: Version, Time: time.Now(), Process: p}
}

// local is the snapshot of this process without its children.
func local(opts Options) *Process {
	p := &Process{PID: os.Getpid(), Args: os.Args, Children: []ChildProcess{}}
	if len(os.Args) > 0 {
		p.Name = filepath.Base(os.Args[0])
	}
	p.Env = environ(opts.EnvValues)
	st, err := proc.Self()
	if err != nil {
		p.Error = err.Error()
	} else {
		p.RSS, p.OSThreads = st.RSS, len(st.Threads)
		p.Voluntary, p.Involuntary = st.Voluntary, st.Involuntary
	}
	registry.mu.Lock()
	recs := slices.Clone(registry.recs)
	registry.mu.Unlock()
	p.Schedulers = make([]Scheduler, 0, len(recs))
	for _, r := range recs {
		p.Schedulers = append(p.Schedulers, r.snapshot())
	}
	return p
}

func environ(values bool) []EnvVar {
	env := os.Environ()
	vars := make([]EnvVar, 0, len(env))
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if !values {
			value = ""
		}
		vars = append(vars, EnvVar{Name: name, Value: value})
	}
	slices.SortFunc(vars, func(a, b EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return vars
}

// snapshot is r's part of the tree.
func (r *Recorder) snapshot() Scheduler {
	now := clock()
	s := Scheduler{
		Name:           r.cfg.Name,
		Threads:        []Thread{},
		Tasks:          []Task{},
		Spawned:        r.spawned.Load(),
		Ended:          r.ended.Load(),
		EndedResumes:   r.endedResumes.Load(),
		EndedRunningNS: time.Duration(r.endedRunning.Load()),
	}
	ths := *r.threads.Load()
	// The task that runs on each thread, as its entry says: of two, the one
	// that resumed later (a task may park and another resume while the
	// snapshot goes through the table).
	running := make([]uint64, len(ths)) // task IDs
	at := make([]uint64, len(ths))
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for _, e := range sh.m {
			e.mu.Lock()
			t := Task{
				ID: e.t.ID(), Name: e.t.Name(), Parent: e.parent,
				State: stateNames[e.state], Thread: int(e.thread),
				Resumes: e.resumes, RunningNS: e.running,
			}
			parked, why := e.state == stParked, e.why
			runs, resumedAt := e.state == stRunning, e.resumedAt
			if runs && r.cfg.Timeline {
				t.RunningNS += time.Duration(now - e.segStart)
			}
			e.mu.Unlock()
			if e.site == "" && t.Thread >= 0 {
				// It has run, so the scheduler set its function before
				// the resume this entry's lock ordered us after.
				e.site = e.t.CreatedAt()
			}
			t.Created = e.site
			if parked {
				t.Wait = why.Detail()
			}
			if runs && t.Thread < len(ths) && resumedAt > at[t.Thread] {
				running[t.Thread], at[t.Thread] = t.ID, resumedAt
			}
			s.Tasks = append(s.Tasks, t)
		}
		sh.mu.Unlock()
	}
	for i, th := range ths {
		t := Thread{
			Index: th.index, TID: int(th.tid.Load()), State: "idle",
			Resumes: th.resumes.Load(), TasksRun: th.started.Load(),
		}
		if id := running[i]; id != 0 {
			t.State, t.Task = "running", id
		}
		if t.TID != 0 {
			path := "/proc/self/task/" + strconv.Itoa(t.TID) + "/status"
			if ts, err := procfs.ReadStatus(path); err == nil {
				t.Voluntary, t.Involuntary, t.OSState = ts.Voluntary, ts.Involuntary, string(ts.State)
				if ts.State != 'R' {
					t.OSWait, _ = procfs.WaitChannel(os.Getpid(), t.TID)
				}
			}
		}
		s.Switches += t.Resumes
		s.Threads = append(s.Threads, t)
	}
	slices.SortFunc(s.Tasks, func(a, b Task) int { return cmp.Compare(a.ID, b.ID) })
	return s
}
