package simtest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/sched/simtest"
)

// A run that reaches its step limit has millions of events: its trace keeps
// the last ones, and says how many came before.
func TestTraceBounded(t *testing.T) {
	spin := func(t *sched.Task) error {
		t.GoNamed("spinner", func(t *sched.Task) error {
			for {
				t.Yield()
			}
		})
		for {
			t.Yield()
		}
	}
	tests := []struct {
		opts []simtest.Option
		keep int
	}{
		{nil, simtest.DefaultTraceLines},
		{[]simtest.Option{simtest.TraceLines(50)}, 50},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.keep), func(t *testing.T) {
			const steps = 100_000
			f, _ := simtest.Explore(spin, append(tt.opts, simtest.MaxSteps(steps), simtest.Seeds(1))...)
			if f == nil || f.Kind() != "step limit" {
				t.Fatalf("failure %v, want a step limit", f)
			}
			lines := strings.Split(strings.TrimSuffix(f.Trace, "\n"), "\n")
			if len(lines) != tt.keep+1 {
				t.Fatalf("the trace has %d lines, want the last %d events and a line that counts the others", len(lines), tt.keep)
			}
			// Two events a step at least: a run, and a park.
			var dropped int
			if _, err := fmt.Sscanf(lines[0], "… %d earlier events", &dropped); err != nil || dropped < 2*steps-tt.keep {
				t.Fatalf("the trace begins %q", lines[0])
			}
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, fmt.Sprintf("step %d ", steps)) {
				t.Fatalf("the trace ends %q, not at the last step", last)
			}
		})
	}
	// A short run is traced whole.
	f, _ := simtest.Explore(spin, simtest.MaxSteps(10), simtest.Seeds(1))
	if f == nil || strings.Contains(f.Trace, "earlier events") || !strings.HasPrefix(f.Trace, "step 0 +0s: task 1 (main) starts the run\n") {
		t.Fatalf("the trace of a short run:\n%v", f.Trace)
	}
}
