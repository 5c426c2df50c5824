package inspect_test

import (
	"encoding/json"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weavert/weave/inspect"
)

var update = flag.Bool("update", false, "rewrite testdata/snapshot.shape")

// The JSON shape of a snapshot is a published format: every field path, as
// written in testdata/snapshot.shape, stays until Version changes.
func TestSnapshotShape(t *testing.T) {
	full := &inspect.Process{
		PID: 2, Name: "child", Args: []string{"x"}, Env: []inspect.EnvVar{{Name: "A", Value: "b"}},
		RSS: 1, OSThreads: 1, Voluntary: 1, Involuntary: 1, Error: "e",
		Schedulers: []inspect.Scheduler{{
			Name: "s", Spawned: 1, Ended: 1, EndedResumes: 1, EndedRunningNS: 1, Switches: 1,
			Threads: []inspect.Thread{{Index: 1, TID: 1, State: "running", Task: 1, Resumes: 1, TasksRun: 1,
				Voluntary: 1, Involuntary: 1, OSState: "S", OSWait: "w"}},
			Tasks: []inspect.Task{{ID: 1, Name: "n", Parent: 1, State: "parked", Wait: "w", Thread: 1,
				Created: "c", Resumes: 1, RunningNS: 1}},
		}},
		Children: []inspect.ChildProcess{},
	}
	root := *full
	root.Children = []inspect.ChildProcess{{Name: "c", PID: 2, Error: "e", Process: full}}
	b, err := json.Marshal(inspect.Tree{Version: inspect.Version, Time: time.Unix(0, 0), Process: &root})
	if err != nil {
		t.Fatal(err)
	}
	var v any
	json.Unmarshal(b, &v)
	var paths []string
	walk("", v, &paths)
	slices.Sort(paths)
	paths = slices.Compact(paths)
	got := strings.Join(paths, "\n") + "\n"
	const file = "testdata/snapshot.shape"
	if *update {
		os.WriteFile(file, []byte(got), 0o644)
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// A live snapshot has no field outside the shape.
	live, _ := json.Marshal(inspect.Snapshot(t.Context(), inspect.Options{}))
	var lv any
	json.Unmarshal(live, &lv)
	var lpaths []string
	walk("", lv, &lpaths)
	for _, p := range lpaths {
		if !slices.Contains(paths, p) {
			t.Errorf("a live snapshot has %s, which is not in the shape", p)
		}
	}
	if got != string(want) {
		t.Errorf("the snapshot's shape changed (go test -update rewrites %s; change Version if a field changed meaning or went away):\ngot:\n%s\nwant:\n%s", file, got, want)
	}
}

// walk lists the paths of v's fields: "process.schedulers[].tasks[].id".
// A child's process is walked under "children[].process…" once: its
// shape is the parent's.
func walk(prefix string, v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			*out = append(*out, p)
			if strings.Count(p, "children[]") < 2 {
				walk(p, e, out)
			}
		}
	case []any:
		for _, e := range x {
			walk(prefix+"[]", e, out)
		}
	}
}
