package main

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/weavert/weave/proc"
)

func TestMain(m *testing.M) {
	proc.Main() // the replicas are this test binary, re-executed
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	goleak.VerifyTestMain(m)
}

// TestReal runs the command's demonstration: three replica processes, the
// leader killed, a new one elected with every acknowledged write, the
// killed one restarted from its file, and every process ended.
func TestReal(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	text := out.String()
	t.Log(text)
	killed := regexp.MustCompile(`(?m)^kill -9 (node\d) \(pid \d+\), the leader$`).FindStringSubmatch(text)
	after := regexp.MustCompile(`(?m)^get x +-> "123", from (node\d), [\d.]+ s after the kill`).FindStringSubmatch(text)
	switch {
	case killed == nil:
		t.Fatal("no leader was killed")
	case after == nil:
		t.Fatal("no replica answered x = 123 after the kill")
	case after[1] == killed[1]:
		t.Fatalf("%s answered after it was killed", after[1])
	}
	for _, want := range []string{
		`get y +-> "ab", from node\d`,
		killed[1] + ` has caught up`,
		`stopped the replicas: each exited with status 0`,
	} {
		if !regexp.MustCompile(`(?m)^` + want).MatchString(text) {
			t.Errorf("the output has no line %q", want)
		}
	}
	// No process is left behind, the restarted one included.
	for _, m := range regexp.MustCompile(`pid (\d+)`).FindAllStringSubmatch(text, -1) {
		pid, _ := strconv.Atoi(m[1])
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d is still there (%v)", pid, err)
		}
	}
}
