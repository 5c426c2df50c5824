package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/weavert/weave/internal/servertest"
)

// envRun makes the test binary the echo command, for TestCommand.
const envRun = "ECHO_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRun) != "" {
		main()
		os.Exit(0)
	}
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	goleak.VerifyTestMain(m)
}

// server runs serve on a loopback port of this process, logging into logs.
func server(t *testing.T, threads int) (srv *servertest.Server, logs *bytes.Buffer) {
	t.Helper()
	logs = new(bytes.Buffer)
	srv = servertest.Start(t, func(ctx context.Context, ready func(net.Addr)) error {
		return serve(ctx, "127.0.0.1:0", threads, log.New(logs, "", 0), ready)
	})
	return srv, logs
}

// Clients echoed at once, each by its own task: bytes come back exact and
// in order, while sending goes on and after a half-close; an idle client
// holds up no one; shutting down closes the connections still open and
// leaves no descriptor behind.
func TestEcho(t *testing.T) {
	srv, logs := server(t, 2)
	addr := srv.Addr

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	const clients = 8
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			if err := client(addr, i); err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// The idle client is still served.
	if _, err := idle.Write([]byte("still here\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(idle).ReadString('\n')
	if err != nil || line != "still here\n" {
		t.Fatalf("the idle client got %q, %v", line, err)
	}

	if err := srv.Stop(); !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("serve after the shutdown: %v, want context.Canceled alone", err)
	}
	// The server closed the connection it still had.
	if n, err := idle.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("the idle client after the shutdown: %d bytes, %v; want io.EOF", n, err)
	}
	idle.Close()
	if logs.Len() > 0 {
		t.Errorf("the server logged:\n%s", logs)
	}
	srv.CheckDescriptors(t)
}

// client talks to the echo server at addr as client i: lines one at a time,
// each echoed before the next goes, then a stream of random bytes sent
// while the echo is read back, then a half-close, after which the rest of
// the echo and the end of the stream come.
func client(addr string, i int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for n := range 50 {
		want := fmt.Sprintf("client %d line %d\n", i, n)
		if _, err := io.WriteString(c, want); err != nil {
			return err
		}
		got, err := r.ReadString('\n')
		if err != nil || got != want {
			return fmt.Errorf("sent %q, got %q back (%v)", want, got, err)
		}
	}

	data := make([]byte, 1<<20+i)
	rng := rand.New(rand.NewPCG(uint64(i), 1))
	for j := range data {
		data[j] = byte(rng.Uint32())
	}
	sent := make(chan error, 1)
	go func() {
		// In pieces of uneven size, as a real client writes.
		rest := data
		for len(rest) > 0 {
			n := min(len(rest), 1+rng.IntN(40000))
			if _, err := c.Write(rest[:n]); err != nil {
				sent <- err
				return
			}
			rest = rest[n:]
		}
		sent <- c.(*net.TCPConn).CloseWrite()
	}()
	back, err := io.ReadAll(r) // up to the end of the stream: the server's close
	if serr := <-sent; serr != nil {
		return serr
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(back, data) {
		return fmt.Errorf("sent %d random bytes, got %d back, first difference at %d", len(data), len(back), firstDiff(back, data))
	}
	return nil
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A client that resets its connection is logged, and the others are
// served on: a run of one thread, so that nothing but the parking of tasks
// lets the second client through.
func TestReset(t *testing.T) {
	srv, logs := server(t, 1)
	c, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	// Echoed once, so that the server's task is in its read when the
	// reset comes.
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetLinger(0)
	c.Close() // a reset: RST, not FIN
	if err := client(srv.Addr, 0); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("serve: %v", err)
	}
	if !strings.Contains(logs.String(), "connection reset") {
		t.Errorf("the reset is not in the log:\n%s", logs)
	}
}

var listening = regexp.MustCompile(`^echo: listening on (\S+)$`)

// The command: it says where it listens, echoes, and ends with status 0 on
// SIGINT.
func TestCommand(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-addr", "127.0.0.1:0", "-threads", "1")
	cmd.Env = append(os.Environ(), envRun+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	m := listening.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
	if m == nil {
		t.Fatalf("first line %q (%v), want %v", line, err, listening)
	}
	if err := client(m[1], 1); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGINT: %v\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
}
