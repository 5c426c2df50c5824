package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/weavert/weave/proc"
)

func TestMain(m *testing.M) {
	proc.Main() // the workers are this test binary, re-executed
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	goleak.VerifyTestMain(m)
}

func TestCrashIsolation(t *testing.T) {
	var out, logs bytes.Buffer
	if err := run(&out, &logs); err != nil {
		t.Fatalf("run: %v\nlogs:\n%s", err, logs.String())
	}
	want := `w1 answered "HELLO FROM W1"
w2 answered "HELLO FROM W2"
w3 answered "HELLO FROM W3"
w2 crashed on the poisoned request
w1 answered "STILL HERE?"
w3 answered "STILL HERE?"
w2 was restarted in a new process
w2 answered "BACK AGAIN"
`
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if !strings.Contains(logs.String(), "w2") || !strings.Contains(logs.String(), "restart") {
		t.Fatalf("the restart is not in the log:\n%s", logs.String())
	}
}
