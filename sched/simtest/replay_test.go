package simtest_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/sched/simtest"
)

// A failure that depends on something the seed does not fix, here a count
// of calls kept outside the run, passes when it is run again to trace it:
// the failure says so, and that the program is not deterministic.
func TestReplayThatPasses(t *testing.T) {
	var calls atomic.Int64
	body := func(t *sched.Task) error {
		t.Go(func(t *sched.Task) error { return nil })
		t.Yield()
		if calls.Add(1) == 1 {
			return errors.New("the first call fails")
		}
		return nil
	}
	f, _ := simtest.Explore(body, simtest.Seeds(10))
	if f == nil || f.Seed != 1 || f.Kind() != "error" {
		t.Fatalf("failure %v, want an error at seed 1", f)
	}
	if !strings.Contains(f.Replayed, "passed") || !strings.Contains(f.Replayed, "not deterministic") {
		t.Fatalf("the replay passed, but the failure says %q:\n%v", f.Replayed, f)
	}
	if !strings.Contains(f.Error(), "the replay differed: "+f.Replayed) {
		t.Fatalf("the message lacks the replay:\n%v", f)
	}
}
