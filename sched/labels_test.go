package sched_test

import (
	"bytes"
	"errors"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/weavert/weave/sched"
)

// A named task runs with the pprof label task=<name>, so that profiles split
// by task; an unnamed task that runs next on the same coroutine does not
// inherit it.
func TestPprofLabels(t *testing.T) {
	profile := func() string {
		var b bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&b, 1)
		return b.String()
	}
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		task.GoNamed("indexer", func(*sched.Task) error {
			if !strings.Contains(profile(), `"task":"indexer"`) {
				return errors.New("no label in the named task")
			}
			return nil
		})
		task.Go(func(*sched.Task) error {
			if strings.Contains(profile(), `"task":"indexer"`) {
				return errors.New("the label outlived its task")
			}
			return nil
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
