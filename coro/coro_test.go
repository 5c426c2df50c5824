package coro_test

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/weavert/weave/coro"
)

// counter yields in+1 for every in, forever.
func counter(in int, yield func(int) int) int {
	for {
		in = yield(in + 1)
	}
}

func TestNewRunsNothing(t *testing.T) {
	ran := false
	before := runtime.NumGoroutine()
	c := coro.New(func(in int, yield func(int) int) int { ran = true; return in })
	if ran {
		t.Fatal("New ran the function")
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("New started a goroutine: %d, was %d", n, before)
	}
	if got := c.Status(); got != coro.Suspended {
		t.Fatalf("Status before the first Resume = %v, want suspended", got)
	}
}

func TestValuesBothWays(t *testing.T) {
	var log []string
	c := coro.New(func(in string, yield func(int) string) int {
		log = append(log, "start "+in)
		in = yield(1)
		log = append(log, "got "+in)
		in = yield(2)
		log = append(log, "got "+in)
		return 3
	})
	steps := []struct {
		in     string
		out    int
		ok     bool
		status coro.Status
	}{
		{"a", 1, true, coro.Suspended},
		{"b", 2, true, coro.Suspended},
		{"c", 3, true, coro.Dead}, // f's result comes back with ok
		{"d", 0, false, coro.Dead},
		{"e", 0, false, coro.Dead}, // forever
	}
	for _, s := range steps {
		out, ok := c.Resume(s.in)
		if out != s.out || ok != s.ok || c.Status() != s.status {
			t.Fatalf("Resume(%q) = %d, %v, status %v; want %d, %v, %v", s.in, out, ok, c.Status(), s.out, s.ok, s.status)
		}
	}
	if want := []string{"start a", "got b", "got c"}; !slices.Equal(log, want) {
		t.Fatalf("the coroutine saw %q, want %q", log, want)
	}
}

func TestStatusSeenFromInside(t *testing.T) {
	var self *coro.Coroutine[int, coro.Status]
	self = coro.New(func(_ int, yield func(coro.Status) int) coro.Status {
		yield(self.Status())
		return self.Status()
	})
	for range 2 {
		if st, _ := self.Resume(0); st != coro.Running {
			t.Fatalf("inside, Status = %v, want running", st)
		}
	}
	self.Close()
}

// A coroutine that resumed another and waits for it reads Running: Lua's
// "normal" cannot be told apart without the caller's identity.
func TestStatusOfResumer(t *testing.T) {
	var outer *coro.Coroutine[int, coro.Status]
	inner := coro.New(func(_ int, yield func(coro.Status) int) coro.Status { return outer.Status() })
	outer = coro.New(func(_ int, yield func(coro.Status) int) coro.Status {
		st, _ := inner.Resume(0)
		return st
	})
	if st, _ := outer.Resume(0); st != coro.Running {
		t.Fatalf("a waiting resumer reads %v, want running", st)
	}
}

func TestStatusString(t *testing.T) {
	for st, want := range map[coro.Status]string{
		coro.Suspended: "suspended", coro.Running: "running", coro.Dead: "dead", 9: "Status(9)",
	} {
		if st.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(st), st, want)
		}
	}
}

// mustPanic runs f and returns what it panicked with, failing if it did not.
func mustPanic(t *testing.T, f func()) (v any) {
	t.Helper()
	defer func() { v = recover() }()
	f()
	t.Fatal("no panic")
	return nil
}

func TestResumeRunningPanics(t *testing.T) {
	t.Run("from inside itself", func(t *testing.T) {
		var c *coro.Coroutine[int, string]
		c = coro.New(func(_ int, yield func(string) int) string {
			v := mustPanic(t, func() { c.Resume(0) })
			in := yield(fmt.Sprint(v))
			return fmt.Sprint("still usable ", in)
		})
		msg, _ := c.Resume(0)
		if !strings.Contains(msg, "coro: Resume of a running coroutine") {
			t.Fatalf("panic = %q, want one naming the misuse", msg)
		}
		if out, ok := c.Resume(7); out != "still usable 7" || !ok {
			t.Fatalf("after the misuse Resume = %q, %v", out, ok)
		}
	})
	t.Run("from a coroutine it resumed", func(t *testing.T) {
		var outer *coro.Coroutine[int, string]
		inner := coro.New(func(in int, yield func(string) int) string {
			v := mustPanic(t, func() { outer.Resume(0) })
			yield(fmt.Sprint(v))
			return "inner done"
		})
		outer = coro.New(func(in int, yield func(string) int) string {
			msg, _ := inner.Resume(0)
			yield(msg)
			out, _ := inner.Resume(0)
			return out
		})
		msg, _ := outer.Resume(0)
		if !strings.Contains(msg, "coro: Resume of a running coroutine") {
			t.Fatalf("panic = %q, want one naming the misuse", msg)
		}
		if out, ok := outer.Resume(0); out != "inner done" || !ok {
			t.Fatalf("both coroutines must stay usable: got %q, %v", out, ok)
		}
	})
}

// Two goroutines resuming one coroutine at once is detected, not a silent
// corruption: the second Resume panics while the first is in progress.
func TestSimultaneousResumePanics(t *testing.T) {
	inside, release := make(chan struct{}), make(chan struct{})
	c := coro.New(func(in int, yield func(int) int) int {
		inside <- struct{}{}
		<-release
		return in + 1
	})
	var got int
	done := make(chan struct{})
	go func() {
		defer close(done)
		got, _ = c.Resume(1)
	}()
	<-inside // the first Resume is in progress
	v := mustPanic(t, func() { c.Resume(2) })
	if !strings.Contains(fmt.Sprint(v), "two goroutines at once") {
		t.Fatalf("panic = %v", v)
	}
	close(release)
	<-done
	if got != 2 || c.Status() != coro.Dead {
		t.Fatalf("the first Resume got %d, status %v; want 2, dead", got, c.Status())
	}
}

// Handing a coroutine from goroutine to goroutine between resumes is fine.
func TestHandOffBetweenGoroutines(t *testing.T) {
	c := coro.New(counter)
	defer c.Close()
	handoff, done := make(chan int), make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for {
				var v int
				select {
				case v = <-handoff:
				case <-done:
					return
				}
				out, ok := c.Resume(v)
				if !ok || out != v+1 {
					t.Errorf("goroutine %d: Resume(%d) = %d, %v", g, v, out, ok)
				}
				if out == 400 {
					close(done)
					return
				}
				handoff <- out // another goroutine, or this one, takes it
			}
		})
	}
	handoff <- 0
	wg.Wait()
}

var errBoom = errors.New("boom")

type codeError struct{ code int }

func (e *codeError) Error() string { return fmt.Sprint("code ", e.code) }

func TestPanicReachesResumer(t *testing.T) {
	tests := []struct {
		name  string
		value any
		check func(t *testing.T, err error)
	}{
		{"sentinel error", fmt.Errorf("wrapped: %w", errBoom), func(t *testing.T, err error) {
			if !errors.Is(err, errBoom) {
				t.Errorf("errors.Is(%v, errBoom) = false", err)
			}
		}},
		{"typed error", &codeError{42}, func(t *testing.T, err error) {
			var ce *codeError
			if !errors.As(err, &ce) || ce.code != 42 {
				t.Errorf("errors.As found %v", ce)
			}
			if errors.Is(err, fs.ErrNotExist) {
				t.Errorf("errors.Is matched an unrelated error")
			}
		}},
		{"string", "plain", func(t *testing.T, err error) {
			if errors.Unwrap(err) != nil {
				t.Errorf("a non-error value unwraps to %v", errors.Unwrap(err))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := coro.New(func(in int, yield func(int) int) int {
				yield(1)
				panicInCoroutine(tt.value)
				return 0
			})
			c.Resume(0)
			v := mustPanic(t, func() { c.Resume(0) })
			pe, ok := v.(*coro.PanicError)
			if !ok {
				t.Fatalf("Resume panicked with %T, want *coro.PanicError", v)
			}
			if pe.Value != tt.value {
				t.Fatalf("Value = %v, want %v", pe.Value, tt.value)
			}
			if !strings.Contains(string(pe.Stack), "panicInCoroutine") {
				t.Fatalf("the stack is not the coroutine's:\n%s", pe.Stack)
			}
			if !strings.Contains(pe.Error(), fmt.Sprint(tt.value)) || !strings.Contains(pe.Error(), "panicInCoroutine") {
				t.Fatalf("Error() must show the value and the coroutine's stack:\n%s", pe.Error())
			}
			tt.check(t, pe)
			if c.Status() != coro.Dead {
				t.Fatalf("status after a panic = %v", c.Status())
			}
			if err := c.Close(); err != pe {
				t.Fatalf("Close after a panic = %v, want the same *PanicError", err)
			}
			if out, ok := c.Resume(0); out != 0 || ok {
				t.Fatal("a coroutine that panicked must be dead")
			}
		})
	}
}

func panicInCoroutine(v any) { panic(v) }

func TestGoexitIsForwarded(t *testing.T) {
	c := coro.New(func(in int, yield func(int) int) int {
		yield(1)
		runtime.Goexit()
		return 2
	})
	c.Resume(0)
	after := make(chan bool, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Resume(0)
		after <- true // never reached: Goexit ends this goroutine too
	}()
	<-done
	if len(after) != 0 {
		t.Fatal("the resumer went on after the coroutine called runtime.Goexit")
	}
	if c.Status() != coro.Dead {
		t.Fatalf("status after Goexit = %v", c.Status())
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close after Goexit = %v", err)
	}
}

func TestClose(t *testing.T) {
	t.Run("unwinds through defers", func(t *testing.T) {
		var log []string
		c := coro.New(func(in int, yield func(int) int) int {
			defer func() { log = append(log, "outer") }()
			func() {
				defer func() { log = append(log, "inner") }()
				yield(1)
				log = append(log, "after yield") // must not run
			}()
			return 0
		})
		c.Resume(0)
		if err := c.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
		if want := []string{"inner", "outer"}; !slices.Equal(log, want) {
			t.Fatalf("ran %q, want %q", log, want)
		}
		if c.Status() != coro.Dead {
			t.Fatalf("status = %v", c.Status())
		}
	})
	t.Run("returns a defer's panic", func(t *testing.T) {
		c := coro.New(func(in int, yield func(int) int) int {
			defer panicInCoroutine(errBoom)
			return yield(1)
		})
		c.Resume(0)
		err := c.Close()
		var pe *coro.PanicError
		if !errors.As(err, &pe) || !errors.Is(err, errBoom) {
			t.Fatalf("Close = %v, want a *PanicError wrapping errBoom", err)
		}
		if err2 := c.Close(); err2 != err {
			t.Fatalf("second Close = %v, want the same error", err2)
		}
	})
	t.Run("never started", func(t *testing.T) {
		ran := false
		c := coro.New(func(in int, yield func(int) int) int { ran = true; return 0 })
		if err := c.Close(); err != nil || ran || c.Status() != coro.Dead {
			t.Fatalf("Close = %v, ran = %v, status %v", err, ran, c.Status())
		}
		if _, ok := c.Resume(0); ok || ran {
			t.Fatal("a closed coroutine ran")
		}
	})
	t.Run("dead by return", func(t *testing.T) {
		c := coro.New(func(in int, yield func(int) int) int { return in })
		c.Resume(0)
		for range 2 {
			if err := c.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
		}
	})
	t.Run("twice", func(t *testing.T) {
		c := coro.New(counter)
		c.Resume(0)
		first := c.Close()
		if second := c.Close(); first != nil || second != nil {
			t.Fatalf("Close twice = %v, %v; want nil, nil", first, second)
		}
	})
	t.Run("running panics", func(t *testing.T) {
		var c *coro.Coroutine[int, string]
		c = coro.New(func(in int, yield func(string) int) string {
			return fmt.Sprint(mustPanic(t, func() { c.Close() }))
		})
		msg, _ := c.Resume(0)
		if !strings.Contains(msg, "coro: Close of a running coroutine") {
			t.Fatalf("panic = %q", msg)
		}
	})
	t.Run("recover and yield again", func(t *testing.T) {
		// Lua reports an error when a coroutine yields while being closed;
		// here the yield keeps unwinding and Close says what happened.
		yields := 0
		c := coro.New(func(in int, yield func(int) int) int {
			for range 3 {
				func() {
					defer func() { recover() }()
					yield(1)
				}()
				yields++
			}
			return 0
		})
		c.Resume(0)
		if err := c.Close(); !errors.Is(err, coro.ErrYieldInClose) {
			t.Fatalf("Close = %v, want ErrYieldInClose", err)
		}
		if yields != 3 || c.Status() != coro.Dead {
			t.Fatalf("yields = %d, status %v", yields, c.Status())
		}
		if err := c.Close(); !errors.Is(err, coro.ErrYieldInClose) {
			t.Fatalf("Close again = %v", err)
		}
	})
	t.Run("recovered unwinding ends cleanly", func(t *testing.T) {
		c := coro.New(func(in int, yield func(int) int) int {
			defer func() { recover() }()
			return yield(1)
		})
		c.Resume(0)
		if err := c.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
	})
}

func TestEscapedYieldPanics(t *testing.T) {
	var escaped func(int) int
	c := coro.New(func(in int, yield func(int) int) int {
		escaped = yield
		return 0
	})
	c.Resume(0)
	v := mustPanic(t, func() { escaped(1) })
	if !strings.Contains(fmt.Sprint(v), "coro: yield called while its coroutine is not running") {
		t.Fatalf("panic = %v", v)
	}
}

// A handle whose last use is a Resume (used inline, or dropped right after)
// must not be closed while that Resume runs, however often the GC runs; once
// the Resume is over and the coroutine suspended, the abandoned coroutine is
// closed.
func TestHandleNotClosedWhileRunning(t *testing.T) {
	closed := make(chan struct{}, 1)
	c := coro.New(func(in int, yield func(int) int) int {
		defer func() { closed <- struct{}{} }()
		in = yield(in) // the first yield arms the cleanup
		for range 5 {
			runtime.GC() // the caller no longer uses c after this Resume
		}
		if len(closed) > 0 {
			t.Error("closed while running")
		}
		return yield(in * 2)
	})
	c.Resume(0)
	if out, ok := c.Resume(21); out != 42 || !ok {
		t.Fatalf("Resume = %d, %v", out, ok)
	}
	collectUntil(t, closed)
}

// An escaped yield called after its coroutine was closed panics with the
// misuse message, also inside another coroutine, which must not take that
// panic for its own closing.
func TestEscapedYieldAfterCloseInsideAnother(t *testing.T) {
	var escaped func(int) int
	a := coro.New(func(in int, yield func(int) int) int {
		escaped = yield
		return yield(in)
	})
	a.Resume(0)
	a.Close()
	b := coro.New(func(in int, yield func(int) int) int {
		escaped(1)
		return 7
	})
	v := mustPanic(t, func() { b.Resume(0) })
	pe, ok := v.(*coro.PanicError)
	if !ok || !strings.Contains(fmt.Sprint(pe.Value), "coro: yield called while its coroutine is not running") {
		t.Fatalf("Resume(b) panicked with %v", v)
	}
	if b.Status() != coro.Dead || b.Close() != pe {
		t.Fatalf("b: status %v, Close %v", b.Status(), b.Close())
	}
}

// A coroutine that resumes the next one, down a long chain: each level is a
// goroutine of its own with a stack that grows on demand, so depth is bounded
// by memory, as for goroutines (see docs/design.md).
func TestNestedChain(t *testing.T) {
	const depth = 10_000
	var chain []*coro.Coroutine[int, int]
	for i := range depth {
		chain = append(chain, coro.New(func(in int, yield func(int) int) int {
			if i+1 == depth {
				return in
			}
			out, _ := chain[i+1].Resume(in + 1)
			return out
		}))
	}
	if out, ok := chain[0].Resume(0); out != depth-1 || !ok {
		t.Fatalf("Resume down %d levels = %d, %v", depth, out, ok)
	}
}

func TestManySuspended(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	cs := make([]*coro.Coroutine[int, int], n)
	for i := range cs {
		cs[i] = coro.New(counter)
		cs[i].Resume(i)
	}
	for i, c := range cs {
		if out, _ := c.Resume(i); out != i+1 {
			t.Fatalf("coroutine %d answered %d", i, out)
		}
	}
	for _, c := range cs {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A coroutine created on a goroutine locked to its OS thread works when it is
// resumed and closed from that goroutine (the rule in the package doc).
func TestLockedThread(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		c := coro.New(counter)
		for i := range 3 {
			if out, _ := c.Resume(i); out != i+1 {
				t.Errorf("Resume(%d) = %d", i, out)
			}
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}()
	<-done
}
