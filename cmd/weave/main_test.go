package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"go.uber.org/goleak"

	"github.com/weavert/weave/bench"
	"github.com/weavert/weave/inspect"
	"github.com/weavert/weave/proc"
	"github.com/weavert/weave/sched"
)

// leakCheck runs the tests, then fails the run if goroutines were left behind.
type leakCheck struct{ m *testing.M }

func (l leakCheck) Run() int {
	code := l.m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// envRun makes the test binary run the command line in its arguments, as
// the weave command would: for tests that signal the command or read its
// output as it comes.
const envRun = "WEAVE_TEST_RUN_COMMAND"

func TestMain(m *testing.M) {
	proc.Main() // weave bench and weave demo re-execute their binary: here, this test binary
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	if os.Getenv(envRun) != "" {
		os.Exit(weave(os.Args[1:], os.Stdout, os.Stderr))
	}
	testscript.Main(leakCheck{m}, map[string]func(){
		"weave": func() { os.Exit(weave(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// The command's behaviour is tested by running it: see testdata/script.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"benchrows": benchRows,
			"tracefile": traceFile,
			"listen":    listen,
		},
	})
}

// benchRows checks that the JSON report in file args[0] has every row of the
// bench package, each with a positive median, and a described machine.
func benchRows(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: benchrows FILE")
	}
	var report struct {
		Machine struct {
			CPU   string `json:"cpu"`
			Cores int    `json:"cores"`
			Go    string `json:"go"`
		} `json:"machine"`
		Results []struct {
			Name   string  `json:"name"`
			Unit   string  `json:"unit"`
			Median float64 `json:"median"`
			Min    float64 `json:"min"`
			Max    float64 `json:"max"`
			Tries  int     `json:"tries"`
		} `json:"results"`
	}
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &report))
	if report.Machine.CPU == "" || report.Machine.Cores < 1 || report.Machine.Go == "" {
		ts.Fatalf("machine not described: %+v", report.Machine)
	}
	seen := map[string]bool{}
	for _, r := range report.Results {
		if !(r.Median > 0) || r.Min > r.Median || r.Median > r.Max || r.Tries < 1 || r.Unit == "" {
			ts.Fatalf("row %s: %+v", r.Name, r)
		}
		seen[r.Name] = true
	}
	for _, name := range bench.Names() {
		if !seen[name] {
			ts.Fatalf("no row %s in the report", name)
		}
	}
}

// listen listens on a loopback port until the script ends and sets the
// environment variable args[0] to its address: a port that is taken.
func listen(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: listen VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Defer(func() { ln.Close() })
	ts.Setenv(args[0], ln.Addr().String())
}

// traceFile checks that the trace in file args[0] has the run segments of
// args[1] processes, each named, and arrows for the messages between them,
// each with both ends.
func traceFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: tracefile FILE PROCESSES")
	}
	var tr inspect.Trace
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &tr))
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	named, segments := map[int]bool{}, map[int]int{}
	flows := map[string]int{}
	for _, e := range tr.TraceEvents {
		switch e.Ph {
		case "M":
			named[e.Pid] = named[e.Pid] || e.Name == "process_name"
		case "X":
			segments[e.Pid]++
		case "s":
			flows[e.Cat+e.ID]++
		case "f":
			flows[e.Cat+e.ID] += 1 << 16
		}
	}
	if len(segments) != want {
		ts.Fatalf("run segments of %d processes, want %d", len(segments), want)
	}
	for pid := range segments {
		if !named[pid] {
			ts.Fatalf("process %d is not named", pid)
		}
	}
	msgs := 0
	for id, n := range flows {
		if n != 1+1<<16 {
			ts.Fatalf("arrow %s: %d starts and %d ends", id, n&0xffff, n>>16)
		}
		if strings.HasPrefix(id, "msg") {
			msgs++
		}
	}
	if msgs == 0 {
		ts.Fatalf("no message arrows between the processes")
	}
}

// Exit statuses: 0 for success and help, 2 for a bad command line, 1 for a
// failure of the work itself.
func TestExitStatus(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{nil, 2},
		{[]string{"help"}, 0},
		{[]string{"nosuch"}, 2},
		{[]string{"demo", "-n", "3", "--duration", "100ms"}, 0},
		{[]string{"demo", "-h"}, 0},
		{[]string{"demo", "-n", "0"}, 2},
		{[]string{"demo", "-x"}, 2},
		{[]string{"demo", "extra"}, 2},
		{[]string{"demo", "--duration", "0s"}, 2},
		{[]string{"demo", "--duration", "3x"}, 2},
		{[]string{"demo", "-n", "3", "--duration", "0.1"}, 0},
		{[]string{"demo", "--duration", "1s", "--http", "nonsense"}, 2},
		{[]string{"bench", "--tries", "0"}, 2},
		{[]string{"bench", "--only", "("}, 2},
		{[]string{"bench", "--quick", "--tries", "1", "--only", "^coro/switch$", "--pin", "99"}, 1},
	}
	for _, tt := range tests {
		var out, errOut strings.Builder
		if got := weave(tt.args, &out, &errOut); got != tt.want {
			t.Errorf("weave %q = %d, want %d\nstderr: %s", tt.args, got, tt.want, errOut.String())
		}
	}
}

// The chain of tasks finds the same primes as a plain sieve: the first n,
// then those of ranges above the last of them.
func TestChain(t *testing.T) {
	const n, lo, hi = 100, 600, 9000
	plain := func(limit int) []int {
		composite := make([]bool, limit)
		var ps []int
		for i := 2; i < limit; i++ {
			if !composite[i] {
				ps = append(ps, i)
				for j := i * i; j < limit; j += i {
					composite[j] = true
				}
			}
		}
		return ps
	}
	want := plain(hi)
	s := sched.New(sched.Threads(2))
	err := s.Run(func(tk *sched.Task) error {
		c := newChain(context.Background(), tk, n)
		defer c.close(tk)
		if fmt.Sprint(c.primes) != fmt.Sprint(want[:n]) {
			t.Errorf("chain = %v, want %v", c.primes, want[:n])
		}
		var got int
		for from := lo; from < hi; from += 1000 {
			r := c.count(context.Background(), tk, from, min(from+1000, hi))
			got += r.Primes
			if r.Chain != n || r.Values == 0 {
				t.Errorf("result %+v", r)
			}
		}
		inRange := 0
		for _, p := range want {
			if p >= lo {
				inRange++
			}
		}
		if got != inRange {
			t.Errorf("%d primes in [%d, %d), want %d", got, lo, hi, inRange)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
