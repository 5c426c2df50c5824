package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"go.uber.org/goleak"

	"github.com/weavert/weave/bench"
	"github.com/weavert/weave/proc"
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

func TestMain(m *testing.M) {
	proc.Main() // weave bench re-executes its binary: here, this test binary
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
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
		{[]string{"demo", "-n", "3"}, 0},
		{[]string{"demo", "-h"}, 0},
		{[]string{"demo", "-n", "0"}, 2},
		{[]string{"demo", "-x"}, 2},
		{[]string{"demo", "extra"}, 2},
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

func TestSieve(t *testing.T) {
	primes, resumes := sieve(10)
	want := []int{2, 3, 5, 7, 11, 13, 17, 19, 23, 29}
	if fmt.Sprint(primes) != fmt.Sprint(want) {
		t.Fatalf("sieve(10) = %v, want %v", primes, want)
	}
	if resumes <= len(want) {
		t.Fatalf("%d resumes for %d primes: the chain was not used", resumes, len(want))
	}
}
