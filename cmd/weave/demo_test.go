package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/weavert/weave/inspect"
)

// startWeave runs this test binary as the weave command with args, and
// returns it with a reader of its standard output.
func startWeave(t *testing.T, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envRun+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewScanner(out)
}

// awaitLine reads lines until one matches re, and returns its submatches.
func awaitLine(t *testing.T, sc *bufio.Scanner, re *regexp.Regexp) []string {
	t.Helper()
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			return m
		}
	}
	t.Fatalf("no line matching %v: %v", re, sc.Err())
	return nil
}

var startLine = regexp.MustCompile(`^weave demo: parent pid (\d+), children worker-1 \(pid (\d+)\) and worker-2 \(pid (\d+)\)`)

// Ctrl-C ends the demo cleanly, with its summary, and leaves no child
// behind: the demo reaps both before it exits.
func TestDemoInterrupt(t *testing.T) {
	cmd, out := startWeave(t, "demo", "--duration", "10m", "-n", "200")
	m := awaitLine(t, out, startLine)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	for out.Scan() {
		rest.WriteString(out.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo after SIGINT: %v\n%s", err, rest.String())
	}
	if !strings.Contains(rest.String(), "summary: interrupted after") {
		t.Errorf("no summary after SIGINT:\n%s", rest.String())
	}
	for _, s := range m[2:] {
		pid, _ := strconv.Atoi(s)
		// The demo has exited: had it not reaped a child, that child
		// would still exist now (as a zombie, or reparented).
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("child %d still exists after the demo exited (kill: %v)", pid, err)
		}
	}
}

// With --http the demo serves the tree of its three processes and their
// timeline, on loopback.
func TestDemoHTTP(t *testing.T) {
	cmd, out := startWeave(t, "demo", "--duration", "10m", "-n", "200", "--http", ":0")
	awaitLine(t, out, startLine)
	url := awaitLine(t, out, pageLine)[1]
	go func() {
		for out.Scan() {
		}
	}()
	var tree inspect.Tree
	getJSON(t, url+"snapshot.json", &tree)
	if len(tree.Process.Children) != 2 {
		t.Fatalf("%d children in the tree, want 2", len(tree.Process.Children))
	}
	for _, c := range tree.Process.Children {
		if c.Process == nil || len(c.Process.Schedulers) != 1 || len(c.Process.Schedulers[0].Threads) != 2 {
			t.Errorf("child %s: %+v", c.Name, c)
		}
	}
	var tr inspect.Trace
	getJSON(t, url+"trace.json", &tr)
	pids := map[int]bool{}
	for _, e := range tr.TraceEvents {
		pids[e.Pid] = true
	}
	if len(pids) != 3 {
		t.Errorf("the trace has events of %d processes, want 3", len(pids))
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("demo after SIGINT: %v", err)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}
