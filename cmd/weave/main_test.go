package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"go.uber.org/goleak"
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
	testscript.Main(leakCheck{m}, map[string]func(){
		"weave": func() { os.Exit(weave(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// The command's behaviour is tested by running it: see testdata/script.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata/script"})
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
