package coro_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/weavert/weave/coro"
)

// This file checks coro against a trivial reference: a coroutine made of a
// goroutine and two channels, which is slow but obviously right. Random
// sequences of Resume and Close drive both over the same scripted bodies
// (which yield, return, panic, resume or close each other, and yield from a
// defer), and everything observable must agree.

// machine is a set of coroutines, real or reference, addressed by index.
type machine interface {
	resume(i, v int) (int, bool)
	close(i int) error
	status(i int) coro.Status
}

const nModel = 4

// script is the body of coroutine id. What it does next depends on the value
// it was resumed with, so the fuzzer chooses.
func script(m machine, id int, log *[]string) func(int, func(int) int) int {
	return func(in int, yield func(int) int) int {
		*log = append(*log, fmt.Sprint(id, " start ", in))
		defer func() { *log = append(*log, fmt.Sprint(id, " defer")) }()
		if in%11 == 10 {
			defer func() {
				r := recover()
				*log = append(*log, fmt.Sprint(id, " recovered ", describe(r)))
				yield(-1)
			}()
		}
		for step := 0; ; step++ {
			switch in % 6 {
			case 0, 1:
				in = yield(in/6 + step)
			case 2:
				return in / 6
			case 3:
				panic(fmt.Sprint("p", in))
			case 4:
				out, ok := m.resume((in/6)%nModel, in/24)
				in = yield(out*2 + boolInt(ok))
			case 5:
				err := m.close((in / 6) % nModel)
				*log = append(*log, fmt.Sprint(id, " closed: ", describe(err)))
				in = yield(step)
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// describe renders a panic value or an error the same way for both machines.
func describe(x any) string {
	switch x := x.(type) {
	case nil:
		return "nil"
	case *coro.PanicError:
		return "P(" + describe(x.Value) + ")"
	case *refPanic:
		return "P(" + describe(x.value) + ")"
	case string:
		switch {
		case strings.HasPrefix(x, "coro: Resume of a running"):
			return "misuse-resume"
		case strings.HasPrefix(x, "coro: Close of a running"):
			return "misuse-close"
		}
		return x
	case error:
		if errors.Is(x, coro.ErrYieldInClose) {
			return "yield-in-close"
		}
		// Each machine's own unwinding value, seen by a body's recover.
		if strings.Contains(x.Error(), "being closed") {
			return "unwinding"
		}
	}
	return fmt.Sprintf("%T %v", x, x)
}

type real struct {
	cs  []*coro.Coroutine[int, int]
	log []string
}

func newReal() *real {
	r := &real{}
	for id := range nModel {
		r.cs = append(r.cs, coro.New(script(r, id, &r.log)))
	}
	return r
}

func (r *real) resume(i, v int) (int, bool) { return r.cs[i].Resume(v) }
func (r *real) close(i int) error           { return r.cs[i].Close() }
func (r *real) status(i int) coro.Status    { return r.cs[i].Status() }

// ref is the reference coroutine.
type ref struct {
	f      func(int, func(int) int) int
	st     coro.Status
	toC    chan refIn
	fromC  chan refOut
	err    error
	closed bool // the body is being unwound by close
	bad    bool // it yielded while being unwound
}

type refIn struct {
	v     int
	close bool
}

type refOut struct {
	v        int
	done     bool
	panicked bool
	value    any
}

type refPanic struct{ value any }

func (p *refPanic) Error() string { return fmt.Sprint(p.value) }

var errRefUnwind = errors.New("ref: being closed")

func (c *ref) start() {
	c.toC, c.fromC = make(chan refIn), make(chan refOut)
	go func() {
		first := <-c.toC
		if first.close {
			c.fromC <- refOut{done: true}
			return
		}
		var out refOut
		func() {
			defer func() {
				if r := recover(); r != nil && r != errRefUnwind {
					out.panicked, out.value = true, r
				}
				out.done = true
			}()
			out.v = c.f(first.v, c.yield)
		}()
		c.fromC <- out
	}()
}

func (c *ref) yield(v int) int {
	if c.closed {
		c.bad = true
		panic(errRefUnwind)
	}
	c.fromC <- refOut{v: v}
	m := <-c.toC
	if m.close {
		c.closed = true
		panic(errRefUnwind)
	}
	return m.v
}

func (c *ref) resume(v int) (int, bool) {
	switch c.st {
	case coro.Dead:
		return 0, false
	case coro.Running:
		panic("coro: Resume of a running coroutine")
	}
	c.st = coro.Running
	c.toC <- refIn{v: v}
	return c.wait()
}

func (c *ref) wait() (int, bool) {
	o := <-c.fromC
	if !o.done {
		c.st = coro.Suspended
		return o.v, true
	}
	c.st = coro.Dead
	if o.panicked {
		c.err = &refPanic{o.value}
		panic(c.err)
	}
	if c.bad {
		c.err = coro.ErrYieldInClose
	}
	return o.v, true
}

func (c *ref) close() error {
	switch c.st {
	case coro.Dead:
		return c.err
	case coro.Running:
		panic("coro: Close of a running coroutine")
	}
	c.st = coro.Running
	c.toC <- refIn{close: true}
	func() {
		defer func() {
			if r := recover(); r != nil && r != c.err {
				panic(r)
			}
		}()
		c.wait()
	}()
	return c.err
}

type refMachine struct {
	cs  []*ref
	log []string
}

func newRef() *refMachine {
	m := &refMachine{}
	for id := range nModel {
		c := &ref{f: script(m, id, &m.log)}
		c.start()
		m.cs = append(m.cs, c)
	}
	return m
}

func (m *refMachine) resume(i, v int) (int, bool) { return m.cs[i].resume(v) }
func (m *refMachine) close(i int) error           { return m.cs[i].close() }
func (m *refMachine) status(i int) coro.Status    { return m.cs[i].st }

// run applies ops to m and returns what an observer saw.
func run(m machine, ops []byte) []string {
	var seen []string
	do := func(f func() string) {
		var s string
		func() {
			defer func() {
				if r := recover(); r != nil {
					s = "panic " + describe(r)
				}
			}()
			s = f()
		}()
		for i := range nModel {
			s += " " + m.status(i).String()
		}
		seen = append(seen, s)
	}
	for k := 0; k+1 < len(ops); k += 2 {
		i, v := int(ops[k]>>2)%nModel, int(ops[k+1])
		if ops[k]&3 == 3 {
			do(func() string { return "close " + describe(m.close(i)) })
		} else {
			do(func() string { out, ok := m.resume(i, v); return fmt.Sprint("resume ", out, ok) })
		}
	}
	for i := range nModel {
		do(func() string { return "final close " + describe(m.close(i)) })
	}
	return seen
}

func checkAgainstModel(t *testing.T, ops []byte) {
	r, m := newReal(), newRef()
	got, want := run(r, ops), run(m, ops)
	if !slices.Equal(got, want) {
		t.Fatalf("ops %v\ncoro:      %q\nreference: %q", ops, got, want)
	}
	if !slices.Equal(r.log, m.log) {
		t.Fatalf("ops %v\ncoro log:      %q\nreference log: %q", ops, r.log, m.log)
	}
}

func FuzzAgainstModel(f *testing.F) {
	for _, seed := range [][]byte{
		{0, 0, 0, 6, 0, 2},                 // start, yield, return
		{0, 3},                             // panic at once
		{0, 0, 3, 0},                       // close a suspended one
		{0, 10, 3, 0},                      // a defer that recovers and yields
		{0, 4, 0, 6},                       // resume itself from inside
		{0, 0, 4, 10, 4, 6, 0, 28},         // nesting
		{0, 5, 4, 0, 0, 11, 0, 17, 3, 255}, // close others from inside
		{0, 0, 4, 28, 4, 1, 0, 0, 0, 0},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		checkAgainstModel(t, ops)
	})
}
