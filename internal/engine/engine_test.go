package engine_test

import (
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/weavert/weave/internal/engine"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The engine carries no values: the caller and the body share fields, and
// each switch orders their accesses. This is the protocol sched uses.
func TestSharedFields(t *testing.T) {
	var c engine.Coro
	var in, out int
	c.Init(body(func() {
		for {
			out = in * 2
			if !c.Yield() {
				c.Unwind()
			}
		}
	}))
	for i := range 5 {
		if !c.Begin() {
			t.Fatal("Begin on a suspended coroutine reported dead")
		}
		in = i
		if !c.Switch() {
			t.Fatal("body ended; want a yield")
		}
		if out != i*2 {
			t.Fatalf("out = %d, want %d", out, i*2)
		}
		if c.Status() != engine.Suspended {
			t.Fatalf("status after yield = %v", c.Status())
		}
	}
	if !c.Close() {
		t.Fatal("Close of a suspended coroutine did nothing")
	}
	if c.Status() != engine.Running {
		t.Fatalf("status before End = %v; want running until the outcome is recorded", c.Status())
	}
	c.End()
	if c.Status() != engine.Dead || c.Begin() || c.Close() {
		t.Fatal("a closed coroutine must be dead, and stay so")
	}
}

func TestPanicKeepsValueAndStack(t *testing.T) {
	var c engine.Coro
	c.Init(body(panicHere))
	c.Begin()
	if c.Switch() {
		t.Fatal("a panicking body yielded")
	}
	if c.Status() != engine.Running {
		t.Fatalf("status before End = %v; want running until the outcome is recorded", c.Status())
	}
	panicked, v, stack := c.Panic()
	if !panicked || v != "boom" {
		t.Fatalf("Panic() = %v, %v", panicked, v)
	}
	c.End()
	if !containsFunc(stack, "panicHere") {
		t.Fatalf("stack does not show the panic site:\n%s", stack)
	}
}

func panicHere() { panic("boom") }

// body adapts a function to engine.Body.
type body func()

func (f body) Run() { f() }

func containsFunc(stack []byte, name string) bool {
	return strings.Contains(string(stack), "engine_test."+name)
}

// The zero Coro is Created: Close makes it dead without ever running it.
func TestZeroValueIsCreated(t *testing.T) {
	var c engine.Coro
	if c.Status() != engine.Created {
		t.Fatalf("zero status = %v", c.Status())
	}
	ran := false
	c.Init(body(func() { ran = true }))
	if !c.Close() {
		t.Fatal("Close of a created coroutine did nothing")
	}
	c.End()
	if ran || c.Status() != engine.Dead {
		t.Fatalf("ran = %v, status %v", ran, c.Status())
	}
}
