package proc_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weavert/weave/proc"
)

// logs collects a supervisor's log records: they are the tests' view of what
// it did and in which order.
type logs chan slog.Record

func (l logs) Enabled(context.Context, slog.Level) bool { return true }
func (l logs) Handle(_ context.Context, r slog.Record) error {
	l <- r.Clone()
	return nil
}
func (l logs) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l logs) WithGroup(string) slog.Handler      { return l }

// next waits for the next record with message msg about child, skipping
// others. The deadline only turns a hang into a failure; nothing here is
// timed.
func (l logs) next(t *testing.T, msg, child string) slog.Record {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case r := <-l:
			if r.Message == msg && attr(r, "child") == child {
				return r
			}
		case <-timeout:
			t.Fatalf("no log %q for child %q", msg, child)
		}
	}
}

func attr(r slog.Record, key string) string {
	var v string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// supervise runs sup in the background; stop cancels it and returns Run's
// error.
func supervise(t *testing.T, sup *proc.Supervisor) (l logs, stop func() error) {
	l = make(logs, 1000)
	sup.Logger = slog.New(l)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	stopped := false
	stop = func() error {
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	return l, stop
}

func crashy(names ...string) []proc.Child {
	var cs []proc.Child
	for _, n := range names {
		cs = append(cs, proc.Child{Name: n, Spec: proc.Spec{Entry: "crashy"}, Shutdown: time.Minute})
	}
	return cs
}

// echoes checks that the child's current incarnation answers.
func echoes(t *testing.T, sup *proc.Supervisor, name string) {
	t.Helper()
	c := sup.Process(name).Conn()
	if err := c.Send([]byte("ping " + name)); err != nil {
		t.Fatalf("%s: Send: %v", name, err)
	}
	if got := recvString(t, c); got != "ping "+name {
		t.Fatalf("%s answered %q", name, got)
	}
}

// Each strategy restarts exactly the children it should when b dies of a
// poisoned message; the others keep their process and keep serving.
func TestSupervisorStrategies(t *testing.T) {
	for _, tc := range []struct {
		strategy  proc.Strategy
		restarted string // which of a, b, c get a new process
	}{
		{proc.OneForOne, "b"},
		{proc.OneForAll, "abc"},
		{proc.RestForOne, "bc"},
	} {
		t.Run(tc.strategy.String(), func(t *testing.T) {
			sup := proc.NewSupervisor(tc.strategy, crashy("a", "b", "c")...)
			l, stop := supervise(t, sup)
			pids := map[string]int{}
			for _, n := range []string{"a", "b", "c"} {
				l.next(t, "proc: child started", n)
				pids[n] = sup.Process(n).PID()
			}
			sup.Process("b").Conn().Send([]byte("crash"))
			r := l.next(t, "proc: restarting child", "b")
			if !strings.Contains(attr(r, "reason"), "exit status 42") {
				t.Errorf("restart reason = %q, want the exit status", attr(r, "reason"))
			}
			for _, n := range []string{"a", "b", "c"} {
				if strings.Contains(tc.restarted, n) {
					l.next(t, "proc: child started", n)
				}
			}
			for _, n := range []string{"a", "b", "c"} {
				if restarted := sup.Process(n).PID() != pids[n]; restarted != strings.Contains(tc.restarted, n) {
					t.Errorf("%s: restarted = %v", n, restarted)
				}
				echoes(t, sup, n)
			}
			if err := stop(); err != context.Canceled {
				t.Fatalf("Run = %v, want context.Canceled", err)
			}
			for _, n := range []string{"a", "b", "c"} {
				select {
				case <-sup.Process(n).Done():
				default:
					t.Errorf("%s still running after Run returned", n)
				}
			}
		})
	}
}

// Permanent children are restarted after any exit, transient ones only after
// a failure, temporary ones never.
func TestSupervisorRestartTypes(t *testing.T) {
	children := crashy("perm", "trans-ok", "trans-fail", "temp")
	children[1].Restart = proc.Transient
	children[2].Restart = proc.Transient
	children[3].Restart = proc.Temporary
	sup := proc.NewSupervisor(proc.OneForOne, children...)
	l, stop := supervise(t, sup)
	for _, c := range children {
		l.next(t, "proc: child started", c.Name)
	}
	old := sup.Process("trans-ok")
	old.Conn().Send([]byte("exit0"))
	l.next(t, "proc: child exited", "trans-ok")
	sup.Process("temp").Conn().Send([]byte("crash"))
	l.next(t, "proc: child exited", "temp")
	sup.Process("trans-fail").Conn().Send([]byte("crash"))
	l.next(t, "proc: restarting child", "trans-fail")
	l.next(t, "proc: child started", "trans-fail")
	sup.Process("perm").Conn().Send([]byte("exit0"))
	l.next(t, "proc: restarting child", "perm")
	l.next(t, "proc: child started", "perm")
	echoes(t, sup, "perm")
	echoes(t, sup, "trans-fail")
	if sup.Process("trans-ok") != old {
		t.Error("a transient child that exited with status 0 was restarted")
	}
	if err := stop(); err != context.Canceled {
		t.Fatalf("Run = %v", err)
	}
}

// More than MaxRestarts restarts within Period: the supervisor stops the
// other children and returns an error naming the child and how it failed.
func TestSupervisorGivesUp(t *testing.T) {
	sup := proc.NewSupervisor(proc.OneForOne,
		proc.Child{Name: "steady", Spec: proc.Spec{Entry: "waitctx"}},
		proc.Child{Name: "broken", Spec: proc.Spec{Entry: "fail", Stderr: discard{}}},
	)
	sup.MaxRestarts, sup.Period = 2, time.Hour
	l, stop := supervise(t, sup)
	l.next(t, "proc: child started", "steady")
	for range 2 {
		l.next(t, "proc: restarting child", "broken")
	}
	l.next(t, "proc: supervisor giving up", "broken")
	err := stop() // Run has returned or is returning: its error is decided
	if !errors.Is(err, proc.ErrTooManyRestarts) {
		t.Fatalf("Run = %v, want ErrTooManyRestarts", err)
	}
	var ee *proc.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || ee.Name != "fail" {
		t.Fatalf("Run = %v, want it to wrap the child's ExitError", err)
	}
	for _, want := range []string{`"broken"`, "exit status 1", "more than 2 in 1h0m0s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %s", err, want)
		}
	}
	if st, err := sup.Process("steady").Wait(); err != nil || st.ExitCode() != 0 {
		t.Errorf("steady child: %v, %v; want stopped by SIGTERM, exit status 0", st, err)
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// Shutdown sends SIGTERM, waits the child's grace period, then SIGKILL.
func TestSupervisorShutdown(t *testing.T) {
	sup := proc.NewSupervisor(proc.OneForAll,
		proc.Child{Name: "polite", Spec: proc.Spec{Entry: "waitctx"}},
		proc.Child{Name: "stubborn", Spec: proc.Spec{Entry: "stubborn"}, Shutdown: 50 * time.Millisecond},
	)
	l, stop := supervise(t, sup)
	l.next(t, "proc: child started", "stubborn")
	if err := stop(); err != context.Canceled {
		t.Fatalf("Run = %v", err)
	}
	if _, err := sup.Process("polite").Wait(); err != nil {
		t.Errorf("polite child: %v, want exit status 0 after SIGTERM", err)
	}
	if _, err := sup.Process("stubborn").Wait(); signalOf(err) != syscall.SIGKILL {
		t.Errorf("stubborn child: %v, want SIGKILL after the grace period", err)
	}
	// Reverse start order.
	l.next(t, "proc: child stopped", "stubborn")
	l.next(t, "proc: child stopped", "polite")
}

// A child that cannot start at first makes Run stop the others and fail.
func TestSupervisorStartFailure(t *testing.T) {
	sup := proc.NewSupervisor(proc.OneForOne,
		proc.Child{Name: "fine", Spec: proc.Spec{Entry: "waitctx"}},
		proc.Child{Name: "typo", Spec: proc.Spec{Entry: "no-such-entry"}},
	)
	l, stop := supervise(t, sup)
	l.next(t, "proc: child failed to start", "typo")
	err := stop()
	if !errors.Is(err, proc.ErrUnknownEntry) || !strings.Contains(err.Error(), `"typo"`) {
		t.Fatalf("Run = %v, want ErrUnknownEntry naming the child", err)
	}
	if _, err := sup.Process("fine").Wait(); err != nil {
		t.Errorf("fine child: %v", err)
	}
}
