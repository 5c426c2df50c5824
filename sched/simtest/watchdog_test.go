package simtest_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/sched/simtest"
)

// watchdogLimit is short, so that the tests are quick, but long enough that
// a healthy step never takes it, even on a busy machine: the tests look at
// what the report says, never at when it came.
const watchdogLimit = 250 * time.Millisecond

// A task that spins without yielding would hang the exploration, step limit
// or not: the watchdog reports it, with the task's stack, the replay
// command, and the trace up to the step where it spun. CheckDeterminism
// does not run it again.
func TestWatchdog(t *testing.T) {
	var stop, spun atomic.Bool
	body := func(t *sched.Task) error {
		ch := sched.NewChan[int](0)
		t.GoNamed("spinner", func(t *sched.Task) error {
			ch.Send(t, 1)
			if spun.CompareAndSwap(false, true) { // once: a second run would spin again
				for !stop.Load() {
				}
			}
			return nil
		})
		ch.Recv(t)
		return t.Sleep(time.Second)
	}
	f, _ := simtest.Explore(body, simtest.MaxSteps(1000), simtest.Watchdog(watchdogLimit), simtest.CheckDeterminism(), simtest.Seeds(5))
	stop.Store(true)
	var we *sched.WatchdogError
	if f == nil || f.Kind() != "watchdog" || f.Seed != 1 || !errors.As(f, &we) {
		t.Fatalf("failure %v, want a watchdog at seed 1", f)
	}
	<-we.Ended()
	if g, _ := simtest.Explore(body, simtest.Seeds(1)); g != nil { // the spinner spins no more
		t.Fatal(g)
	}
	if cmd := simtest.Command(&fakeT{name: "TestSpin"}, f); cmd != "go test ./sched/simtest -run '^TestSpin$' -weave.seed=1 -weave.strategy=random" {
		t.Fatalf("replay: %s", cmd)
	}
	for _, want := range []string{
		fmt.Sprintf("simtest: watchdog at step %d of %d, seed 1 (run 1)", f.Step, f.Step),
		fmt.Sprintf("sched: watchdog: task 2 (spinner) ran for 250ms of real time without giving control back, from step %d (virtual time +0s)", f.Step),
		"simtest_test.TestWatchdog.func1.1(",
	} {
		if !strings.Contains(f.Error(), want) {
			t.Fatalf("the message lacks %q:\n%v", want, f)
		}
	}
}

// The trace of a run the watchdog gave up ends where the task ran, and its
// goroutines end once the task lets go.
func TestWatchdogTrace(t *testing.T) {
	ch := make(chan struct{})
	f, _ := simtest.Explore(func(t *sched.Task) error {
		t.GoNamed("receiver", func(t *sched.Task) error {
			<-ch
			return nil
		})
		return t.Sleep(time.Second)
	}, simtest.Watchdog(watchdogLimit), simtest.Seeds(1))
	close(ch)
	var we *sched.WatchdogError
	if f == nil || f.Kind() != "watchdog" || !errors.As(f, &we) || f.Replayed != "" {
		t.Fatalf("failure %v, want a watchdog", f)
	}
	<-we.Ended()
	if we.ID != 2 || f.Step != f.Steps || f.Steps != we.Step || !bytes.Contains(we.Stack, []byte("[chan receive")) {
		t.Fatalf("failure %+v\n%+v", f, we)
	}
	lines := strings.Split(strings.TrimSpace(f.Trace), "\n")
	want := fmt.Sprintf("step %d +0s: task 2 (receiver) runs, and does not give control back: the watchdog gave the run up after 250ms", f.Step)
	if len(lines) < 3 || lines[0] != "step 0 +0s: task 1 (main) starts the run" || lines[len(lines)-1] != want {
		t.Fatalf("the trace:\n%s\nwant it to end with\n%s", f.Trace, want)
	}
}
