package inspect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/weavert/weave/inspect"
	"github.com/weavert/weave/internal/procfs"
	"github.com/weavert/weave/sched"
	"golang.org/x/sys/unix"
)

// ownScheduler returns the part of tree that rec recorded.
func ownScheduler(t *testing.T, tree *inspect.Tree, name string) inspect.Scheduler {
	t.Helper()
	for _, s := range tree.Process.Schedulers {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no scheduler %q in the snapshot", name)
	return inspect.Scheduler{}
}

func taskNamed(s inspect.Scheduler, name string) (inspect.Task, bool) {
	for _, t := range s.Tasks {
		if t.Name == name {
			return t, true
		}
	}
	return inspect.Task{}, false
}

// On one thread the order of events is fixed, so the snapshot taken by the
// main task knows exactly who runs, who waits and on what.
func TestSnapshotLive(t *testing.T) {
	rec := inspect.NewRecorder(inspect.Config{Name: "live"})
	defer rec.Close()
	s := sched.New(sched.Threads(1), sched.MeasureRunTime(), sched.WithTracer(rec))
	var during *inspect.Tree
	err := s.Run(func(tk *sched.Task) error {
		ch := sched.NewChan[int](0)
		var mu sched.Mutex
		mu.Lock(tk)
		tk.GoNamed("receiver", func(tk *sched.Task) error { ch.Recv(tk); return nil })
		tk.GoNamed("locker", func(tk *sched.Task) error { mu.Lock(tk); mu.Unlock(); return nil })
		tk.GoNamed("fresh", func(tk *sched.Task) error { return nil })
		tk.Yield() // the three run: two park, one ends
		tk.GoNamed("unstarted", func(tk *sched.Task) error { return nil })
		during = inspect.Snapshot(context.Background(), inspect.Options{})
		mu.Unlock()
		ch.Close()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sc := ownScheduler(t, during, "live")
	if len(sc.Threads) != 1 {
		t.Fatalf("%d threads, want 1", len(sc.Threads))
	}
	th := sc.Threads[0]
	if th.State != "running" || th.Task != 1 || th.Resumes != 5 || th.TasksRun != 4 || th.TID != 0 {
		t.Errorf("thread = %+v, want running task 1 after 5 resumes of 4 tasks, no TID", th)
	}
	main, ok := taskNamed(sc, "main")
	if !ok || main.State != "running" || main.ID != 1 || main.Thread != 0 || main.Resumes != 2 ||
		!strings.Contains(main.Created, "TestSnapshotLive") {
		t.Errorf("main = %+v", main)
	}
	if main.RunningNS <= 0 {
		t.Errorf("main ran %v", main.RunningNS)
	}
	recv, _ := taskNamed(sc, "receiver")
	if recv.State != "parked" || !strings.Contains(recv.Wait, "sched.Chan") || recv.Parent != 1 || recv.Resumes != 1 {
		t.Errorf("receiver = %+v, want parked on a channel", recv)
	}
	lock, _ := taskNamed(sc, "locker")
	if lock.State != "parked" || !strings.Contains(lock.Wait, "sched.Mutex") || !strings.Contains(lock.Wait, "held by task 1") {
		t.Errorf("locker = %+v, want parked on the mutex main holds", lock)
	}
	if _, ok := taskNamed(sc, "fresh"); ok {
		t.Errorf("an ended task is still in the snapshot")
	}
	un, _ := taskNamed(sc, "unstarted")
	if un.State != "runnable" || un.Thread != -1 || un.Created != "" || un.Resumes != 0 {
		t.Errorf("unstarted = %+v", un)
	}
	if len(sc.Tasks) != 4 || sc.Spawned != 5 || sc.Ended != 1 {
		t.Errorf("%d live tasks, %d spawned, %d ended; want 4, 5, 1", len(sc.Tasks), sc.Spawned, sc.Ended)
	}

	after := ownScheduler(t, inspect.Snapshot(context.Background(), inspect.Options{}), "live")
	if len(after.Tasks) != 0 || after.Ended != 5 || after.Threads[0].State != "idle" {
		t.Errorf("after the run: %d tasks, %d ended, thread %s", len(after.Tasks), after.Ended, after.Threads[0].State)
	}
	if after.EndedResumes != after.Switches || after.EndedRunningNS <= 0 {
		t.Errorf("ended tasks resumed %d times in %d switches, ran %v", after.EndedResumes, after.Switches, after.EndedRunningNS)
	}
}

// Locked threads are named by their TIDs, which are threads of this
// process, and carry the kernel's counters.
func TestSnapshotLockedThreads(t *testing.T) {
	rec := inspect.NewRecorder(inspect.Config{Name: "locked", LockedThreads: true})
	defer rec.Close()
	s := sched.New(sched.Threads(2), sched.LockThreads(), sched.WithTracer(rec))
	var tree *inspect.Tree
	err := s.Run(func(tk *sched.Task) error {
		// Each of two tasks holds its thread until both run: the second
		// one must be stolen by the other thread.
		var wg sched.WaitGroup
		var seen atomic.Int32
		for range 2 {
			wg.Go(tk, func(tk *sched.Task) error {
				seen.Add(1)
				for seen.Load() < 2 {
					runtime.Gosched()
				}
				return nil
			})
		}
		wg.Wait(tk)
		tree = inspect.Snapshot(context.Background(), inspect.Options{})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sc := ownScheduler(t, tree, "locked")
	tids, err := procfs.Tasks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, th := range sc.Threads {
		if th.TID == 0 || !slices.Contains(tids, th.TID) || th.OSState == "" {
			t.Errorf("thread %+v: TID not one of this process's %v", th, tids)
		}
		got = append(got, th.TID)
	}
	if len(got) != 2 || got[0] == got[1] {
		t.Errorf("TIDs %v, want two different", got)
	}
}

func TestEnvRedacted(t *testing.T) {
	t.Setenv("WEAVE_INSPECT_SECRET", "hunter2")
	for _, values := range []bool{false, true} {
		t.Run(strconv.FormatBool(values), func(t *testing.T) {
			tree := inspect.Snapshot(context.Background(), inspect.Options{EnvValues: values})
			var found *inspect.EnvVar
			for i, v := range tree.Process.Env {
				if v.Name == "WEAVE_INSPECT_SECRET" {
					found = &tree.Process.Env[i]
				}
				if !values && v.Value != "" {
					t.Errorf("%s=%q shown, want redacted", v.Name, v.Value)
				}
			}
			if found == nil {
				t.Fatal("the variable's name is missing")
			}
			if want := map[bool]string{false: "", true: "hunter2"}[values]; found.Value != want {
				t.Errorf("value %q, want %q", found.Value, want)
			}
		})
	}
	tree := inspect.Snapshot(context.Background(), inspect.Options{})
	p := tree.Process
	if tree.Version != inspect.Version || p.PID != os.Getpid() || p.RSS <= 0 || p.OSThreads < 1 || p.Voluntary == 0 {
		t.Errorf("process = pid %d rss %d threads %d switches %d", p.PID, p.RSS, p.OSThreads, p.Voluntary)
	}
}

// A Recorder serves several runs: each starts with a clean picture.
func TestRecorderAgain(t *testing.T) {
	rec := inspect.NewRecorder(inspect.Config{Name: "again"})
	defer rec.Close()
	s := sched.New(sched.Threads(2), sched.WithTracer(rec))
	for range 2 {
		var live int
		if err := s.Run(func(tk *sched.Task) error {
			live = len(ownScheduler(t, inspect.Snapshot(context.Background(), inspect.Options{}), "again").Tasks)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if live != 1 {
			t.Errorf("%d live tasks in the snapshot, want 1", live)
		}
	}
}

func TestClose(t *testing.T) {
	rec := inspect.NewRecorder(inspect.Config{Name: "closed"})
	rec.Close()
	for _, s := range inspect.Snapshot(context.Background(), inspect.Options{}).Process.Schedulers {
		if s.Name == "closed" {
			t.Fatal("a closed Recorder is still in snapshots")
		}
	}
}

// More live tasks than the Recorder's entry cache has slots (4,096, by task
// ID): tasks whose IDs share a slot take turns in it, and each event still
// lands in its own task's entry. On one thread the order is fixed: every
// task runs once and parks on the channel before the main task takes a
// snapshot, then runs once more to its end; the snapshot sees each parked
// after one resume, and the trace has two segments of each.
func TestManyTasks(t *testing.T) {
	rec := inspect.NewRecorder(inspect.Config{Name: "many", Timeline: true})
	defer rec.Close()
	s := sched.New(sched.Threads(1), sched.WithTracer(rec))
	const n = 5000
	var during *inspect.Tree
	err := s.Run(func(tk *sched.Task) error {
		ch := sched.NewChan[int](0)
		var wg sched.WaitGroup
		for range n {
			wg.Go(tk, func(tk *sched.Task) error { ch.Recv(tk); return nil })
		}
		tk.Yield() // all of them run, and park
		during = inspect.Snapshot(context.Background(), inspect.Options{})
		ch.Close()
		wg.Wait(tk)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sc := ownScheduler(t, during, "many")
	if len(sc.Tasks) != n+1 {
		t.Fatalf("%d live tasks, want %d", len(sc.Tasks), n+1)
	}
	for _, task := range sc.Tasks[1:] {
		if task.State != "parked" || task.Resumes != 1 || !strings.Contains(task.Wait, "chan receive") {
			t.Fatalf("task %+v, want parked on the channel after one resume", task)
		}
	}
	var buf bytes.Buffer
	if err := inspect.WriteTrace(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	f := checkTrace(t, buf.Bytes())
	for id := uint64(2); id <= n+1; id++ {
		if f.tasks[id] != 2 {
			t.Fatalf("task %d has %d segments in the trace, want 2", id, f.tasks[id])
		}
	}
}

// A task whose Await waits for a goroutine of the pool, all busy, shows so
// until its function runs; then it waits in Await as the others do.
func TestSnapshotAwaitQueued(t *testing.T) {
	rec := inspect.NewRecorder(inspect.Config{Name: "queued"})
	defer rec.Close()
	s := sched.New(sched.Threads(1), sched.AwaitLimit(1), sched.WithTracer(rec))
	gate, started, ran, done := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
	await := func(tk *sched.Task, begun chan struct{}, until chan struct{}) error {
		_, err := sched.Await(tk, func(context.Context) (int, error) {
			close(begun)
			<-until
			return 0, nil
		})
		return err
	}
	// yieldUntil yields until c is closed: until an Await's function runs.
	yieldUntil := func(tk *sched.Task, c chan struct{}) {
		for {
			select {
			case <-c:
				return
			default:
				tk.Yield()
			}
		}
	}
	var before, after *inspect.Tree
	err := s.Run(func(tk *sched.Task) error {
		tk.GoNamed("first", func(tk *sched.Task) error { return await(tk, started, gate) })
		yieldUntil(tk, started)
		tk.GoNamed("second", func(tk *sched.Task) error { return await(tk, ran, done) })
		tk.Yield() // it runs up to its wait
		before = inspect.Snapshot(context.Background(), inspect.Options{})
		close(gate)
		yieldUntil(tk, ran)
		after = inspect.Snapshot(context.Background(), inspect.Options{})
		close(done)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	queued := "Await queued on the Await pool (AwaitLimit 1, all busy)"
	for _, c := range []struct {
		tree       *inspect.Tree
		task, want string
	}{
		{before, "first", "Await"},
		{before, "second", queued},
		{after, "second", "Await"},
	} {
		task, ok := taskNamed(ownScheduler(t, c.tree, "queued"), c.task)
		if !ok || task.State != "parked" || task.Wait != c.want {
			t.Errorf("%s = %+v, want parked in %q", c.task, task, c.want)
		}
	}
}

// A task parked on an FD shows what it waits for: the direction, the
// descriptor and its FD's name, in the snapshot and at its park in the
// trace.
func TestSnapshotIOWait(t *testing.T) {
	rec := inspect.NewRecorder(inspect.Config{Name: "io", Timeline: true})
	defer rec.Close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	var want string
	var reader uint64
	var during *inspect.Tree
	err := sched.New(sched.Threads(1), sched.WithTracer(rec)).Run(func(tk *sched.Task) error {
		r, err := sched.NewFD(tk, p[0], "pipe r")
		if err != nil {
			return err
		}
		defer r.Close()
		want = fmt.Sprintf("I/O read on *sched.FD %p (fd %d, pipe r)", r, r.Fd())
		h := sched.SpawnNamed(tk, "reader", func(tk *sched.Task) (int, error) {
			return r.Read(tk, make([]byte, 1))
		})
		reader = h.ID()
		tk.Yield() // it runs up to its wait
		during = inspect.Snapshot(context.Background(), inspect.Options{})
		if _, err := unix.Write(p[1], []byte("x")); err != nil {
			return err
		}
		_, err = h.Wait(tk)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	task, ok := taskNamed(ownScheduler(t, during, "io"), "reader")
	if !ok || task.State != "parked" || task.Wait != want {
		t.Errorf("reader = %+v, want parked in %q", task, want)
	}

	var buf bytes.Buffer
	if err := inspect.WriteTrace(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	var tr inspect.Trace
	if err := json.Unmarshal(buf.Bytes(), &tr); err != nil {
		t.Fatal(err)
	}
	var parks []any
	for _, e := range tr.TraceEvents {
		if e.Name == "park" && e.Pid == os.Getpid() && e.Args["task"] == float64(reader) {
			parks = append(parks, e.Args["reason"])
		}
	}
	if len(parks) != 1 || parks[0] != want {
		t.Errorf("the reader's parks in the trace: %q, want one, %q", parks, want)
	}
}
