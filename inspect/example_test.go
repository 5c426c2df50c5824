package inspect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/weavert/weave/inspect"
	"github.com/weavert/weave/sched"
)

// A Recorder watches a scheduler; a snapshot taken by one of its tasks
// shows who runs and who waits, and on what.
func ExampleSnapshot() {
	rec := inspect.NewRecorder(inspect.Config{Name: "example", Threads: 1})
	defer rec.Close()
	s := sched.New(sched.Threads(1), sched.WithTracer(rec))
	s.Run(func(t *sched.Task) error {
		wg := sched.WaitGroup{}
		wg.Add(1)
		t.GoNamed("waiter", func(t *sched.Task) error { wg.Wait(t); return nil })
		t.Yield() // the waiter runs, and parks

		tree := inspect.Snapshot(context.Background(), inspect.Options{})
		for _, sc := range tree.Process.Schedulers {
			if sc.Name != "example" {
				continue
			}
			fmt.Printf("thread 0: %s task %d\n", sc.Threads[0].State, sc.Threads[0].Task)
			for _, task := range sc.Tasks {
				fmt.Printf("task %d %s: %s\n", task.ID, task.Name, task.State)
			}
		}
		wg.Done()
		return nil
	})
	// Output:
	// thread 0: running task 1
	// task 1 main: running
	// task 2 waiter: parked
}

// WriteTrace writes the timeline as Chrome Trace Event JSON: here, the run
// segments of the two tasks, and the arrow from the task that woke the
// other.
func ExampleWriteTrace() {
	rec := inspect.NewRecorder(inspect.Config{Name: "traced", Threads: 1, Timeline: true})
	defer rec.Close()
	s := sched.New(sched.Threads(1), sched.WithTracer(rec))
	s.Run(func(t *sched.Task) error {
		ch := sched.NewChan[string](0)
		t.Go(func(t *sched.Task) error { ch.Send(t, "hello"); return nil })
		ch.Recv(t)
		return nil
	})
	var buf bytes.Buffer
	inspect.WriteTrace(context.Background(), &buf)
	var tr inspect.Trace
	json.Unmarshal(buf.Bytes(), &tr)
	count := map[string]int{}
	for _, e := range tr.TraceEvents {
		if e.Ph != "M" {
			count[e.Cat+" "+e.Ph]++
		}
	}
	fmt.Println("run segments:", count["task X"])
	fmt.Println("wake-up arrows:", count["wake s"], "start,", count["wake f"], "end")
	// Output:
	// run segments: 3
	// wake-up arrows: 1 start, 1 end
}

// Handler serves the live page, the snapshot and the trace, as
// net/http/pprof serves profiles.
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle("/debug/weave/", inspect.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/debug/weave/snapshot.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var tree inspect.Tree
	json.Unmarshal(b, &tree)
	fmt.Println("version", tree.Version, "of the snapshot, for pid > 0:", tree.Process.PID > 0)
	// Output:
	// version 2 of the snapshot, for pid > 0: true
}
