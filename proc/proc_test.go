package proc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/weavert/weave/internal/procfs"
	"github.com/weavert/weave/proc"
)

// A child started by entry name talks over its Conn and exits with status 0
// when its entry returns nil.
func TestStartEcho(t *testing.T) {
	p := start(t, proc.Spec{Entry: "echo"})
	c := p.Conn()
	for _, n := range []int{0, 1, 64, 4091, 4092, 4093, 64 << 10, 1 << 20} {
		msg := bytes.Repeat([]byte{byte(n)}, n)
		if err := c.Send(msg); err != nil {
			t.Fatalf("Send(%d bytes): %v", n, err)
		}
		got, err := c.Recv()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("Recv after Send(%d bytes) = %d bytes, %v", n, len(got), err)
		}
	}
	c.Close()
	st, err := p.Wait()
	if err != nil || st.ExitCode() != 0 {
		t.Fatalf("Wait = %v, %v; want exit status 0", st, err)
	}
	if _, err := c.Recv(); err != proc.ErrClosed {
		t.Fatalf("Recv after Close = %v, want ErrClosed", err)
	}
}

// An entry that returns an error exits with status 1; Wait says so.
func TestEntryError(t *testing.T) {
	var stderr bytes.Buffer
	p := start(t, proc.Spec{Entry: "fail", Stderr: &stderr})
	_, err := p.Wait()
	var ee *proc.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || ee.PID != p.PID() || ee.Name != "fail" {
		t.Fatalf("Wait = %v, want ExitError with status 1", err)
	}
	if !strings.Contains(stderr.String(), "deliberate failure") {
		t.Errorf("stderr = %q, want the entry's error", stderr.String())
	}
	if want := "proc: fail (pid " + strconv.Itoa(p.PID()) + "): exit status 1"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

// An unknown entry name is an error from Start that names the entry and lists
// the known ones, not a mystery exit status.
func TestUnknownEntry(t *testing.T) {
	p, err := proc.Start(context.Background(), proc.Spec{Entry: "no-such-entry"})
	if !errors.Is(err, proc.ErrUnknownEntry) || p != nil {
		t.Fatalf("Start = %v, %v; want ErrUnknownEntry", p, err)
	}
	for _, want := range []string{`"no-such-entry"`, "echo", "hello"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// Misuse panics with a message that names the package.
func TestMisusePanics(t *testing.T) {
	for name, f := range map[string]func(){
		"both":          func() { proc.Start(context.Background(), proc.Spec{Entry: "echo", Path: "/bin/true"}) },
		"neither":       func() { proc.Start(context.Background(), proc.Spec{}) },
		"register dup":  func() { proc.Register("echo", entries["echo"]) },
		"register nil":  func() { proc.Register("x", nil) },
		"register late": func() { proc.Register("late", entries["echo"]) },
		"max frame":     func() { proc.NewConn(nopRWC{}, -1) },
		"spec frame":    func() { proc.Start(context.Background(), proc.Spec{Entry: "echo", MaxFrame: -1}) },
		"sup dup": func() {
			proc.NewSupervisor(proc.OneForOne, proc.Child{Name: "a"}, proc.Child{Name: "a"})
		},
		"sup noname": func() { proc.NewSupervisor(proc.OneForOne, proc.Child{}) },
		"sup process": func() {
			proc.NewSupervisor(proc.OneForOne, proc.Child{Name: "a"}).Process("b")
		},
		"sup run twice": func() {
			sup := proc.NewSupervisor(proc.OneForOne)
			sup.Logger = slog.New(slog.DiscardHandler)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			sup.Run(ctx)
			sup.Run(ctx)
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || !strings.HasPrefix(s, "proc: ") {
					t.Fatalf("recovered %v, want a panic starting with \"proc: \"", r)
				}
			}()
			f()
		})
	}
}

// The child's environment is exactly what the Spec says, and so are its
// arguments and directory.
func TestEnvArgsDir(t *testing.T) {
	dir := t.TempDir()
	t.Run("inherit", func(t *testing.T) {
		p := start(t, proc.Spec{Entry: "env", Args: []string{"a", "b c"}, Dir: dir,
			Env: []string{"PROC_TEST_A=1", "PROC_TEST_A=2", "PROC_TEST_B="}})
		rep, err := proc.RecvJSON[envReport](p.Conn())
		if err != nil {
			t.Fatal(err)
		}
		want := append(os.Environ(), "PROC_TEST_A=2", "PROC_TEST_B=")
		if !sameSet(rep.Env, want) {
			t.Errorf("child env differs from parent env + Spec.Env:\n got %q\nwant %q", rep.Env, want)
		}
		if !slices.Equal(rep.Args, []string{"a", "b c"}) {
			t.Errorf("child args = %q", rep.Args)
		}
		if rep.Dir != dir {
			t.Errorf("child dir = %q, want %q", rep.Dir, dir)
		}
	})
	t.Run("clean", func(t *testing.T) {
		p := start(t, proc.Spec{Entry: "env", CleanEnv: true, Env: []string{"ONLY=this"}})
		rep, err := proc.RecvJSON[envReport](p.Conn())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rep.Env, []string{"ONLY=this"}) || len(rep.Args) != 0 {
			t.Errorf("clean child env = %q, args = %q", rep.Env, rep.Args)
		}
	})
	t.Run("empty", func(t *testing.T) {
		p := start(t, proc.Spec{Entry: "env", CleanEnv: true})
		rep, err := proc.RecvJSON[envReport](p.Conn())
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Env) != 0 {
			t.Errorf("empty child env = %q", rep.Env)
		}
	})
	t.Run("path", func(t *testing.T) {
		var out bytes.Buffer
		p := start(t, proc.Spec{Path: "/usr/bin/env", CleanEnv: true, Env: []string{"X=1", "Y=2"}, Stdout: &out})
		if _, err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		if out.String() != "X=1\nY=2\n" {
			t.Errorf("env of a Path child = %q", out.String())
		}
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// A Stdin that is not a file is copied to the child, which reads it to its
// end.
func TestStdinCopied(t *testing.T) {
	p := start(t, proc.Spec{Entry: "stdin", Stdin: strings.NewReader("line one\nline two\n")})
	if got := recvString(t, p.Conn()); got != "line one\nline two\n" {
		t.Fatalf("the child read %q from its standard input", got)
	}
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

// A Stdin that is not a file and never ends does not hold up the news of the
// child's end: Wait returns the child's own status once it has exited, and
// the copy of Stdin stops with it (the io.Pipe's reader is closed, so its
// writer's next Write fails), leaving no goroutine behind.
func TestStdinNeverEnds(t *testing.T) {
	others := goleak.IgnoreCurrent()
	pr, pw := io.Pipe()
	defer pw.Close() // unblocks the copy if the test fails
	p := start(t, proc.Spec{Entry: "exit0", Stdin: pr})
	waited := make(chan error, 1)
	go func() {
		_, err := p.Wait()
		waited <- err
	}()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("Wait = %v; want exit status 0", err)
		}
	case <-time.After(30 * time.Second): // a safety net: the child exits at once
		t.Fatal("Wait has not returned 30s after the start of a child that exits at once")
	}
	if _, err := pw.Write([]byte("more")); err != io.ErrClosedPipe {
		t.Errorf("Write to the Stdin pipe after Wait = %v; want io.ErrClosedPipe", err)
	}
	goleak.VerifyNone(t, others)
}

// A child that dies before its handshake (its runtime failed, say under a
// tight memory limit) is reported by Start with how it ended and the end of
// what it wrote to its standard error, which goes on to the parent's
// standard error as well.
func TestStartReportsStderr(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	last := "fatal error: out of memory allocating heap arena metadata"
	saved := os.Stderr
	os.Stderr = w
	p, err := proc.Start(context.Background(), proc.Spec{Entry: "echo",
		Env: []string{envDieEarly + "=" + strings.Repeat("runtime: noise\n", 1000) + last + "\n"}})
	os.Stderr = saved
	w.Close()
	forwarded, _ := io.ReadAll(r)
	if p != nil {
		p.Kill()
		p.Wait()
	}
	var ee *proc.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 || !strings.Contains(err.Error(), last) {
		t.Fatalf("Start = %v; want the child's exit status 7 and the end of its standard error, %q", err, last)
	}
	if len(err.Error()) > 8<<10 {
		t.Errorf("Start's error has %d bytes: it should hold the end of the child's standard error, not all of it", len(err.Error()))
	}
	if !strings.HasSuffix(string(forwarded), last+"\n") || len(forwarded) < 15000 {
		t.Errorf("the parent's standard error got %d bytes ending %q; want all the child wrote", len(forwarded), forwarded[max(0, len(forwarded)-80):])
	}
}

// A child whose Spec leaves standard error alone writes to the parent's, a
// Path as well as an Entry, and an Entry's own error after its handshake too.
func TestStderrIsParents(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	saved := os.Stderr
	os.Stderr = w
	p1, err1 := proc.Start(context.Background(), proc.Spec{Path: "sh", Args: []string{"-c", "echo from a path >&2"}})
	p2, err2 := proc.Start(context.Background(), proc.Spec{Entry: "fail"})
	os.Stderr = saved
	w.Close()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	p1.Wait()
	p2.Wait()
	got, _ := io.ReadAll(r)
	for _, want := range []string{"from a path\n", "deliberate failure"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("the parent's standard error got %q; want %q in it", got, want)
		}
	}
}

// Start of a Path that does not exist fails in the parent.
func TestPathNotFound(t *testing.T) {
	_, err := proc.Start(context.Background(), proc.Spec{Path: "/nonexistent/program"})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Start = %v, want ErrNotExist", err)
	}
	_, err = proc.Start(context.Background(), proc.Spec{Path: "/nonexistent/program", Limits: proc.Limits{OpenFiles: 64}})
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("Start with limits = %v, want the exec error", err)
	}
}

// Kill ends the child's whole process group: a grandchild that the child
// started with os/exec (so without Pdeathsig) goes too.
func TestKillGroup(t *testing.T) {
	p, gpid, gst := startReporter(t, "groupleader")
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); signalOf(err) != syscall.SIGKILL {
		t.Fatalf("Wait = %v, want killed by SIGKILL", err)
	}
	waitGone(t, gpid, gst, "grandchild in the killed group")
	if _, err := p.Conn().Recv(); !errors.Is(err, io.EOF) || signalOf(err) != syscall.SIGKILL {
		t.Fatalf("Recv after Wait = %v, want the end of the stream of a child killed by SIGKILL", err)
	}
	if err := p.Conn().Send(nil); err != proc.ErrClosed {
		t.Fatalf("Send after Wait = %v, want ErrClosed", err)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("second Kill = %v, want nil", err)
	}
	if err := p.Signal(syscall.SIGTERM); err != os.ErrProcessDone {
		t.Fatalf("Signal after exit = %v, want os.ErrProcessDone", err)
	}
	if _, err := p.Stat(); err != os.ErrProcessDone {
		t.Fatalf("Stat after exit = %v, want os.ErrProcessDone", err)
	}
}

// A child never outlives its parent: SIGKILL an intermediate child ("the
// parent") and its own child, started with proc, dies too. The grandchild is
// a plain /bin/sleep, which has no Conn: only Pdeathsig can end it.
func TestParentDeath(t *testing.T) {
	parent, gpid, gst := startReporter(t, "spawner")
	if gst.PPID != parent.PID() {
		t.Fatalf("grandchild's parent is %d, want %d", gst.PPID, parent.PID())
	}
	killParent(t, parent)
	waitGone(t, gpid, gst, "grandchild of a SIGKILLed parent")
}

// startReporter starts entry, which reports the pid of a process it started,
// and returns the child, that pid and the process's stat.
func startReporter(t *testing.T, entry string) (*proc.Process, int, procfs.Stat) {
	t.Helper()
	p := start(t, proc.Spec{Entry: entry})
	pid, err := strconv.Atoi(recvString(t, p.Conn()))
	if err != nil {
		t.Fatal(err)
	}
	return p, pid, mustStat(t, pid)
}

// killParent sends SIGKILL to the intermediate child parent, not to its group,
// and waits for it.
func killParent(t *testing.T, parent *proc.Process) {
	t.Helper()
	if err := parent.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := parent.Wait(); signalOf(err) != syscall.SIGKILL {
		t.Fatalf("Wait = %v, want killed by SIGKILL", err)
	}
}

// A child's promise that whatever it left in its group is killed too holds
// when its parent is SIGKILLed, and so cannot kill the group itself: a
// grandchild that the child started with plain os/exec (no Pdeathsig of its
// own, in the child's group) dies with the child.
func TestParentKilledGroup(t *testing.T) {
	parent := start(t, proc.Spec{Entry: "middle"})
	var cpid, gpid int
	if _, err := fmt.Sscan(recvString(t, parent.Conn()), &cpid, &gpid); err != nil {
		t.Fatal(err)
	}
	cst, gst := mustStat(t, cpid), mustStat(t, gpid)
	killAtEnd(t, gpid, gst)
	killParent(t, parent)
	waitGone(t, cpid, cst, "child of a SIGKILLed parent")
	waitGone(t, gpid, gst, "os/exec grandchild in the group of a child whose parent was SIGKILLed")
}

// A Path started with limits goes through this binary, which execs it: the
// program still dies with its parent.
func TestParentDeathLimitedPath(t *testing.T) {
	parent, pid, st := startReporter(t, "limitedspawner")
	killAtEnd(t, pid, st)
	killParent(t, parent)
	waitGone(t, pid, st, "limited Path child of a SIGKILLed parent")
}

// killAtEnd kills process pid, if it is still the one that st describes, at
// the end of the test: a test that fails must not leave it running.
func killAtEnd(t *testing.T, pid int, st procfs.Stat) {
	t.Cleanup(func() {
		if now, err := procfs.ReadStat(pid); err == nil && now.StartTime == st.StartTime {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// A child exits when its connection closes: an entry that watches its context
// returns at once (status 0), one that ignores everything is made to exit.
func TestHangup(t *testing.T) {
	t.Run("cooperative", func(t *testing.T) {
		p := start(t, proc.Spec{Entry: "waitctx"})
		recvString(t, p.Conn())
		p.Conn().Close()
		if st, err := p.Wait(); err != nil || st.ExitCode() != 0 {
			t.Fatalf("Wait = %v, %v; want exit status 0", st, err)
		}
	})
	t.Run("stubborn", func(t *testing.T) {
		var stderr bytes.Buffer
		p := start(t, proc.Spec{Entry: "stubborn", Stderr: &stderr})
		recvString(t, p.Conn())
		p.Conn().Close()
		_, err := p.Wait()
		var ee *proc.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("Wait = %v; want exit status 3", err)
		}
		if !strings.Contains(stderr.String(), "connection closing") {
			t.Errorf("stderr = %q", stderr.String())
		}
	})
	t.Run("sigterm", func(t *testing.T) {
		p := start(t, proc.Spec{Entry: "waitctx"})
		recvString(t, p.Conn())
		p.Signal(syscall.SIGTERM)
		if got := recvString(t, p.Conn()); got != proc.ErrTerminated.Error() {
			t.Errorf("cause in the child = %q, want ErrTerminated", got)
		}
		if st, err := p.Stop(time.Hour); err != nil || st.ExitCode() != 0 {
			t.Fatalf("Stop = %v, %v; want exit status 0", st, err)
		}
	})
	t.Run("own-close", func(t *testing.T) {
		// An entry that closes its own Conn is not told that its parent
		// hung up, and may go on working.
		var stderr bytes.Buffer
		p := start(t, proc.Spec{Entry: "selfclose", Stderr: &stderr})
		if st, err := p.Wait(); err != nil || st.ExitCode() != 0 {
			t.Fatalf("Wait = %v, %v; want exit status 0; stderr:\n%.500s", st, err, stderr.String())
		}
	})
	t.Run("stop-stubborn", func(t *testing.T) {
		p := start(t, proc.Spec{Entry: "stubborn"})
		recvString(t, p.Conn())
		if _, err := p.Stop(50 * time.Millisecond); signalOf(err) != syscall.SIGKILL {
			t.Fatalf("Stop = %v; want killed by SIGKILL after the grace period", err)
		}
	})
}

// A child gets the whole grace period its parent gives after SIGTERM, through
// Stop and through a Supervisor's Shutdown: an entry that needs 2.5 s to
// finish exits with status 0 within a 10 s grace.
func TestStopGrace(t *testing.T) {
	t.Run("Stop", func(t *testing.T) {
		t.Parallel()
		p := start(t, proc.Spec{Entry: "slowstop"})
		recvString(t, p.Conn())
		if st, err := p.Stop(10 * time.Second); err != nil || st.ExitCode() != 0 {
			t.Fatalf("Stop(10s) of an entry that needs %v = %v, %v; want exit status 0", slowStop, st, err)
		}
	})
	t.Run("Supervisor", func(t *testing.T) {
		t.Parallel()
		sup := proc.NewSupervisor(proc.OneForOne,
			proc.Child{Name: "slow", Spec: proc.Spec{Entry: "slowstop"}, Shutdown: 10 * time.Second})
		l, stop := supervise(t, sup)
		l.next(t, "proc: child started", "slow")
		recvString(t, sup.Process("slow").Conn())
		if err := stop(); err != context.Canceled {
			t.Fatalf("Run = %v", err)
		}
		if st, err := sup.Process("slow").Wait(); err != nil || st.ExitCode() != 0 {
			t.Fatalf("child stopped with a 10s Shutdown = %v, %v; want exit status 0", st, err)
		}
	})
}

// A child SIGKILLed in the middle of a message gives a clean Recv error that
// says the stream ended inside a frame, and an exit status that says SIGKILL.
func TestKilledMidMessage(t *testing.T) {
	p := start(t, proc.Spec{Entry: "halfframe"})
	recvString(t, p.Conn())
	_, err := p.Conn().Recv()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Recv = %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err2 := p.Conn().Recv(); err2 != err {
		t.Fatalf("second Recv = %v, want the same error", err2)
	}
	_, err = p.Wait()
	if signalOf(err) != syscall.SIGKILL || !strings.HasSuffix(err.Error(), "signal: killed") {
		t.Fatalf("Wait = %v, want killed by SIGKILL", err)
	}
}

// Once a child has ended, the parent's Recv says how, as Wait does: a child
// that exited with status 0 between frames gives io.EOF itself; one that was
// killed, or failed, gives an error that wraps both io.EOF (or
// io.ErrUnexpectedEOF, inside a frame) and the child's ExitError, so that a
// loop ending on err == io.EOF does not take a killed child for a clean end.
func TestRecvSaysHowChildEnded(t *testing.T) {
	t.Run("status 0", func(t *testing.T) {
		p := start(t, proc.Spec{Entry: "hello"})
		recvString(t, p.Conn())
		if _, err := p.Conn().Recv(); err != io.EOF {
			t.Fatalf("Recv after a clean exit = %v, want io.EOF", err)
		}
	})
	for _, tc := range []struct {
		name, entry string
		end         func(*proc.Process) // how the child ends; nil: by itself
		wait        bool                // Wait before Recv
		stream      error
		how         string
	}{
		{"killed", "stubborn", func(p *proc.Process) { p.Kill() }, false, io.EOF, "signal: killed"},
		{"killed, after Wait", "stubborn", func(p *proc.Process) { p.Kill() }, true, io.EOF, "signal: killed"},
		{"failed", "fail", nil, false, io.EOF, "exit status 1"},
		{"killed mid-frame", "halfframe", nil, false, io.ErrUnexpectedEOF, "signal: killed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, proc.Spec{Entry: tc.entry, Stderr: io.Discard})
			if tc.entry != "fail" {
				recvString(t, p.Conn())
			}
			if tc.end != nil {
				tc.end(p)
			}
			if tc.wait {
				p.Wait()
			}
			_, err := p.Conn().Recv()
			var ee *proc.ExitError
			if err == io.EOF || !errors.Is(err, tc.stream) || !errors.As(err, &ee) || ee.PID != p.PID() ||
				!strings.HasSuffix(err.Error(), tc.how) {
				t.Fatalf("Recv = %v; want an error wrapping %v and the child's ExitError, ending %q", err, tc.stream, tc.how)
			}
			if _, err2 := p.Conn().Recv(); err2 != err {
				t.Fatalf("second Recv = %v, want the same error", err2)
			}
		})
	}
}

// Cancelling Start's context kills the child.
func TestContextKills(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p, err := proc.Start(ctx, proc.Spec{Entry: "stubborn"})
	if err != nil {
		t.Fatal(err)
	}
	recvString(t, p.Conn())
	cancel()
	if _, err := p.Wait(); signalOf(err) != syscall.SIGKILL {
		t.Fatalf("Wait = %v, want killed by SIGKILL", err)
	}
	if _, err := proc.Start(ctx, proc.Spec{Entry: "echo"}); err != context.Canceled {
		t.Fatalf("Start with a done ctx = %v", err)
	}
}

// 200 children started and ended leave no zombie and no child behind.
func TestNoZombies(t *testing.T) {
	const n = 200
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			entry := []string{"exit0", "fail", "echo"}[i%3]
			p, err := proc.Start(context.Background(), proc.Spec{Entry: entry, Stderr: io.Discard})
			if err != nil {
				errs <- err
				return
			}
			if entry == "echo" {
				p.Kill()
			}
			p.Wait()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	kids, err := procfs.Children(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) != 0 {
		t.Fatalf("after %d children ended, /proc still lists children (pid: state): %v", n, kids)
	}
}

// Starting and ending children of every kind leaks no file descriptor.
func TestNoFDLeak(t *testing.T) {
	run := func() {
		p := start(t, proc.Spec{Entry: "echo"})
		p.Conn().Send([]byte("x"))
		p.Conn().Recv()
		p.Conn().Close()
		p.Wait()
		p = start(t, proc.Spec{Entry: "halfframe"})
		p.Conn().Recv()
		p.Conn().Recv()
		p.Wait()
		p = start(t, proc.Spec{Entry: "stubborn", Stdout: io.Discard})
		p.Kill()
		p.Wait()
		p = start(t, proc.Spec{Path: "/bin/echo", Args: []string{"hi"}, Stdout: io.Discard, Limits: proc.Limits{OpenFiles: 100}})
		p.Wait()
		proc.Start(context.Background(), proc.Spec{Entry: "no-such-entry"})
	}
	run() // warm up: the netpoller's epoll descriptor, lazily opened files
	before, err := procfs.CountFDs()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		run()
	}
	after, err := procfs.CountFDs()
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("open file descriptors: %d before, %d after", before, after)
	}
}

// Limits are set in the child before its entry runs, and enforced.
func TestLimits(t *testing.T) {
	p := start(t, proc.Spec{Entry: "rlimits", Limits: proc.Limits{
		OpenFiles: 64, Data: 8 << 30, AddressSpace: 64 << 30, CPU: 1500 * time.Millisecond, Procs: 5000,
	}})
	rep, err := proc.RecvJSON[map[string][2]uint64](p.Conn())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint64{"nofile": 64, "data": 8 << 30, "as": 64 << 30, "cpu": 2, "nproc": 5000} {
		if got := rep[name]; got != [2]uint64{want, want} {
			t.Errorf("child's %s limit = %v, want soft = hard = %d", name, got, want)
		}
	}
	// 64 descriptors, of which 0-3 are taken (and the runtime may hold a few).
	if n := rep["opened"][0]; n > 60 || n < 50 {
		t.Errorf("child opened %d files under RLIMIT_NOFILE=64", n)
	}
}

// Limits that cannot work are refused by Start with an error that names the
// limit, instead of a child that crashes at random: too few descriptors for
// the Go runtime, a negative CPU time, less memory than the child has already
// mapped when the limits are applied.
func TestLimitsRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   proc.Spec
		reason string
	}{
		{"nofile 1", proc.Spec{Entry: "echo", Limits: proc.Limits{OpenFiles: 1}}, "OpenFiles 1 is below 16"},
		{"nofile 8", proc.Spec{Entry: "echo", Limits: proc.Limits{OpenFiles: 8}}, "OpenFiles 8 is below 16"},
		{"nofile path", proc.Spec{Path: "/bin/true", Limits: proc.Limits{OpenFiles: 3}}, "OpenFiles 3 is below 4"},
		{"cpu", proc.Spec{Entry: "echo", Limits: proc.Limits{CPU: -time.Second}}, "CPU -1s is negative"},
		{"data", proc.Spec{Entry: "echo", Limits: proc.Limits{Data: 8 << 20}}, "Data 8 MiB is below"},
		{"address space", proc.Spec{Entry: "echo", Limits: proc.Limits{AddressSpace: 64 << 20}}, "AddressSpace 64 MiB is below"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			tc.spec.Stderr = &stderr
			p, err := proc.Start(context.Background(), tc.spec)
			if p != nil {
				p.Kill()
				p.Wait()
			}
			if !errors.Is(err, proc.ErrLimit) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("Start = %v; want ErrLimit saying %q (child's stderr: %.300q)", err, tc.reason, stderr.String())
			}
		})
	}
}

// Limits.Procs counts every task of the child's user: for a user other than
// root, a limit below what that user already runs, plus room for the child's
// threads, is refused; a roomy one works. Run as root, the test runs a copy
// of itself as nobody.
func TestLimitsProcs(t *testing.T) {
	run := func(limit string) string {
		t.Helper()
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), envStartProcs+"="+limit)
		if os.Getuid() == 0 {
			dir, err := os.MkdirTemp("", "proc-procs")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			bin := filepath.Join(dir, "proc.test")
			b, err := os.ReadFile(os.Args[0])
			if err == nil {
				err = os.WriteFile(bin, b, 0o755)
			}
			if err == nil {
				err = os.Chmod(dir, 0o755)
			}
			if err != nil {
				t.Fatal(err)
			}
			cmd.Path, cmd.Args[0] = bin, bin
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		out, err := cmd.CombinedOutput()
		if errors.Is(err, syscall.EPERM) {
			t.Skipf("cannot run as another user here: %v", err)
		}
		if err != nil {
			t.Fatalf("%v: %v\n%s", cmd, err, out)
		}
		return string(out)
	}
	if out := run("1"); !strings.Contains(out, "start: proc: start exit0: proc: unworkable limit: Limits.Procs 1 is below") {
		t.Errorf("Start with Procs 1 as a user other than root: %s", out)
	}
	if out := run("hard"); out != "wait: <nil>\n" {
		t.Errorf("Start with Procs at the hard limit as a user other than root: %s", out)
	}
}

// At the least number of descriptors a child is allowed, it works.
func TestLimitsLeastOpenFiles(t *testing.T) {
	for range 5 {
		p := start(t, proc.Spec{Entry: "echo", Limits: proc.Limits{OpenFiles: 16}})
		for i := range 10 {
			p.Conn().Send([]byte{byte(i)})
			recvString(t, p.Conn())
		}
		p.Conn().Close()
		if _, err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	p := start(t, proc.Spec{Path: "sh", Args: []string{"-c", "ulimit -n"}, Stdout: &out, Limits: proc.Limits{OpenFiles: 4}})
	if _, err := p.Wait(); err != nil || out.String() != "4\n" {
		t.Fatalf("sh under OpenFiles 4: %v, printed %q", err, out.String())
	}
}

// A Path with limits runs under them from its first instruction.
func TestPathLimits(t *testing.T) {
	var out bytes.Buffer
	p := start(t, proc.Spec{Path: "sh", Args: []string{"-c", "ulimit -n; ulimit -t; echo $X"},
		Env: []string{"X=ok"}, Stdout: &out, Limits: proc.Limits{OpenFiles: 77, CPU: 9 * time.Second}})
	if p.Conn() != nil {
		t.Error("a Path process has a Conn")
	}
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "77\n9\nok\n" {
		t.Fatalf("sh under limits printed %q", out.String())
	}
}

// A child that exceeds its memory limit fails alone: it dies, its sibling
// and the parent go on.
func TestMemoryLimit(t *testing.T) {
	sibling := start(t, proc.Spec{Entry: "echo"})
	var stderr bytes.Buffer
	hog := start(t, proc.Spec{Entry: "hog", Stderr: &stderr, Limits: proc.Limits{Data: 1 << 30}})
	recvString(t, hog.Conn())
	_, err := hog.Wait()
	// Go's runtime dies with "fatal error: out of memory" (status 2); under
	// the race detector, ThreadSanitizer's own allocation fails first
	// (status 66).
	wantCode, wantMsg := 2, "out of memory"
	if raceEnabled {
		wantCode, wantMsg = 66, "ThreadSanitizer failed to allocate"
	}
	var ee *proc.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != wantCode || !strings.Contains(stderr.String(), wantMsg) {
		t.Fatalf("hog: Wait = %v, want exit status %d and %q on stderr; stderr:\n%.800s", err, wantCode, wantMsg, stderr.String())
	}
	sibling.Conn().Send([]byte("still there?"))
	if got := recvString(t, sibling.Conn()); got != "still there?" {
		t.Fatalf("sibling answered %q", got)
	}
}

// A child over its CPU limit is killed by the kernel.
func TestCPULimit(t *testing.T) {
	p := start(t, proc.Spec{Entry: "spin", Limits: proc.Limits{CPU: time.Second}})
	recvString(t, p.Conn())
	if _, err := p.Wait(); signalOf(err) != syscall.SIGKILL {
		t.Fatalf("Wait = %v, want killed by SIGKILL", err)
	}
}

// Stat and Self read threads, RSS and context switches from /proc.
func TestStat(t *testing.T) {
	p := start(t, proc.Spec{Entry: "stat"})
	self, err := proc.RecvJSON[proc.Stat](p.Conn())
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Stat()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []proc.Stat{self, st} {
		if s.PID != p.PID() || len(s.Threads) == 0 || s.Threads[0].TID != p.PID() || s.RSS <= 0 {
			t.Errorf("stat of the child = %+v", s)
		}
	}
	if len(st.Threads) < 2 { // a Go program has a few threads
		t.Errorf("child has %d threads", len(st.Threads))
	}
	p.Conn().Send(nil)
	p.Wait()
}

func TestSelf(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	before := threadOf(t, tid)
	for range 3 { // each nanosleep blocks the thread: a voluntary switch
		unix.Nanosleep(&unix.Timespec{Nsec: 100_000}, nil)
	}
	after := threadOf(t, tid)
	if after.Voluntary < before.Voluntary+3 {
		t.Errorf("thread %d: voluntary switches %d then %d after 3 sleeps", tid, before.Voluntary, after.Voluntary)
	}
	s, err := proc.Self()
	if err != nil {
		t.Fatal(err)
	}
	if s.PID != os.Getpid() || s.RSS <= 0 || s.Voluntary == 0 {
		t.Errorf("Self = %+v", s)
	}
}

// A thread's WaitChannel says where in the kernel it sleeps: in epoll_wait
// for a thread blocked there; nothing for the thread that reads it, which
// runs.
func TestWaitChannel(t *testing.T) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
		t.Fatal(err)
	}
	tids := make(chan int)
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tids <- unix.Gettid()
		_, err := unix.EpollWait(ep, make([]unix.EpollEvent, 1), -1)
		done <- err
	}()
	waiter := <-tids
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self := unix.Gettid()
	// The waiter enters epoll_wait moments after it sent its TID: read
	// until it has.
	var w, r proc.Thread
	for try := 0; try < 10_000 && !inEpoll(w.WaitChannel); try++ {
		w, r = threadOf(t, waiter), threadOf(t, self)
	}
	if w.State != 'S' || !inEpoll(w.WaitChannel) {
		t.Errorf("a thread in epoll_wait: %+v, want sleeping in an epoll wait channel", w)
	}
	if r.State != 'R' || r.WaitChannel != "" {
		t.Errorf("the reading thread: %+v, want running, with no wait channel", r)
	}
	unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func threadOf(t *testing.T, tid int) proc.Thread {
	t.Helper()
	s, err := proc.Self()
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range s.Threads {
		if th.TID == tid {
			return th
		}
	}
	t.Fatalf("Self().Threads has no TID %d: %+v", tid, s.Threads)
	return proc.Thread{}
}

func mustStat(t *testing.T, pid int) procfs.Stat {
	t.Helper()
	st, err := procfs.ReadStat(pid)
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	return st
}

// waitGone polls /proc until process pid (the one that started at st's start
// time) has exited. The kernel gives a non-parent no event for that, so this
// is the one bounded poll in these tests. A zombie counts as gone: its new
// parent, not us, reaps it.
func waitGone(t *testing.T, pid int, st procfs.Stat, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		now, err := procfs.ReadStat(pid)
		if err != nil || now.StartTime != st.StartTime || now.State == 'Z' || now.State == 'X' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still alive after 20s: state %c", what, pid, now.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type nopRWC struct{}

func (nopRWC) Read([]byte) (int, error)  { return 0, io.EOF }
func (nopRWC) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }
func (nopRWC) Close() error              { return nil }

// inEpoll reports whether wait, a wait channel, is epoll_wait's: the kernel
// names it do_epoll_wait, or ep_poll in other versions.
func inEpoll(wait string) bool {
	return strings.Contains(wait, "epoll") || strings.Contains(wait, "ep_poll")
}
