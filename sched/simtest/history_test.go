package simtest_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/sched/simtest"
)

// once runs body as the main task of a deterministic run, and returns its
// error.
func once(body func(*sched.Task) error) error {
	return sched.New(sched.Deterministic(simtest.Random().Chooser(1))).Run(body)
}

var (
	get  = simtest.KVGet
	put  = simtest.KVPut
	none = simtest.KVOutput{}
)

func read(v string) simtest.KVOutput { return simtest.KVOutput{Value: v} }

// Histories written event by event, by one task: the History takes the
// order of the calls as the order of events, whichever task makes them.
func TestCheckLinearizableHistories(t *testing.T) {
	type history = func(t *sched.Task, h *simtest.KVHistory)
	tests := []struct {
		name  string
		write history
		want  error    // nil, ErrNotLinearizable or ErrUndecided
		says  []string // in the error
	}{
		{"empty", func(t *sched.Task, h *simtest.KVHistory) {}, nil, nil},
		{"sequential", func(t *sched.Task, h *simtest.KVHistory) {
			h.Invoke(t, put("x", "1")).Return(t, none)
			h.Invoke(t, get("x")).Return(t, read("1"))
		}, nil, nil},
		{"a read after a write sees it", func(t *sched.Task, h *simtest.KVHistory) {
			h.Invoke(t, put("x", "1")).Return(t, none)
			h.Invoke(t, get("x")).Return(t, read(""))
		}, simtest.ErrNotLinearizable, []string{
			`partition "x": 2 operations: no order of them fits`,
			`the longest order that fits takes 1 of them, and leaves the state "1":`,
			"\tevents 1-2: task 1 (main): Put(\"x\", \"1\")",
			"none of the operations that could come next fits:\n\tevents 3-4: task 1 (main): Get(\"x\") -> \"\"",
			`the model answers Get("x") -> "1"`,
			"add -weave.history=FILE",
		}},
		{"a read concurrent with a write may see it", func(t *sched.Task, h *simtest.KVHistory) {
			w := h.Invoke(t, put("x", "1"))
			h.Invoke(t, get("x")).Return(t, read("1"))
			h.Invoke(t, get("x")).Return(t, read("1"))
			w.Return(t, none)
		}, nil, nil},
		{"or not", func(t *sched.Task, h *simtest.KVHistory) {
			w := h.Invoke(t, put("x", "1"))
			h.Invoke(t, get("x")).Return(t, read(""))
			w.Return(t, none)
		}, nil, nil},
		{"but not go back", func(t *sched.Task, h *simtest.KVHistory) {
			w := h.Invoke(t, put("x", "1"))
			h.Invoke(t, get("x")).Return(t, read("1"))
			h.Invoke(t, get("x")).Return(t, read(""))
			w.Return(t, none)
		}, simtest.ErrNotLinearizable, []string{`Get("x") -> ""`, `the model answers Get("x") -> "1"`}},
		{"a write that never returned may take effect", func(t *sched.Task, h *simtest.KVHistory) {
			h.Invoke(t, put("x", "1"))
			h.Invoke(t, get("x")).Return(t, read(""))
			h.Invoke(t, get("x")).Return(t, read("1"))
		}, nil, nil},
		{"long after its client gave up", func(t *sched.Task, h *simtest.KVHistory) {
			h.Invoke(t, put("x", "1"))
			h.Invoke(t, put("x", "2")).Return(t, none)
			h.Invoke(t, get("x")).Return(t, read("2"))
			h.Invoke(t, get("x")).Return(t, read("1"))
		}, nil, nil},
		{"but once only", func(t *sched.Task, h *simtest.KVHistory) {
			h.Invoke(t, put("x", "1"))
			h.Invoke(t, put("x", "2")).Return(t, none)
			h.Invoke(t, get("x")).Return(t, read("1"))
			h.Invoke(t, get("x")).Return(t, read("2"))
		}, simtest.ErrNotLinearizable, []string{
			`partition "x": 4 operations (1 never returned)`,
			"events 1-: task 1 (main): Put(\"x\", \"1\"), never returned",
			`the model answers Get("x") -> "1"`,
		}},
		{"a failed write has no effect", func(t *sched.Task, h *simtest.KVHistory) {
			h.Invoke(t, put("x", "1")).Fail()
			h.Invoke(t, get("x")).Return(t, read("1"))
		}, simtest.ErrNotLinearizable, []string{
			`partition "x": 1 operation, and 1 that failed, left out:`,
			"no operation fits first, from the initial state \"\":\n\tevents 2-3: task 1 (main): Get(\"x\") -> \"1\"",
		}},
		{"keys are apart", func(t *sched.Task, h *simtest.KVHistory) {
			h.Invoke(t, put("x", "1")).Return(t, none)
			h.Invoke(t, put("y", "2")).Return(t, none)
			h.Invoke(t, get("x")).Return(t, read("1"))
			h.Invoke(t, get("y")).Return(t, read("1"))
		}, simtest.ErrNotLinearizable, []string{`partition "y": 2 operations`, `the model answers Get("y") -> "2"`}},
		{"compare and swap", func(t *sched.Task, h *simtest.KVHistory) {
			a, b := h.Invoke(t, simtest.KVCAS("x", "", "a")), h.Invoke(t, simtest.KVCAS("x", "", "b"))
			b.Return(t, none)
			a.Return(t, simtest.KVOutput{OK: true})
			h.Invoke(t, get("x")).Return(t, read("a"))
		}, nil, nil},
		{"two swaps from one value", func(t *sched.Task, h *simtest.KVHistory) {
			a, b := h.Invoke(t, simtest.KVCAS("x", "", "a")), h.Invoke(t, simtest.KVCAS("x", "", "b"))
			b.Return(t, simtest.KVOutput{OK: true})
			a.Return(t, simtest.KVOutput{OK: true})
		}, simtest.ErrNotLinearizable, []string{
			`CAS("x", "", "a") -> true`,
			`CAS("x", "", "b") -> true`,
			`the model answers CAS("x", "", "b") -> false`,
		}},
		{"a lost append", func(t *sched.Task, h *simtest.KVHistory) {
			a, b := h.Invoke(t, simtest.KVAppend("x", "a")), h.Invoke(t, simtest.KVAppend("x", "b"))
			a.Return(t, none)
			b.Return(t, none)
			h.Invoke(t, get("x")).Return(t, read("b"))
		}, simtest.ErrNotLinearizable, []string{`leaves the state "ab"`, `the model answers Get("x") -> "ab"`}},
		{"a put that answers something", func(t *sched.Task, h *simtest.KVHistory) {
			h.Invoke(t, put("x", "1")).Return(t, read("1"))
		}, simtest.ErrNotLinearizable, []string{`Put("x", "1") -> {Value:1 OK:false}`, `the model answers Put("x", "1")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h simtest.KVHistory
			err := once(func(task *sched.Task) error {
				tt.write(task, &h)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			err = simtest.CheckLinearizable(&h, simtest.KV())
			if tt.want == nil {
				if err != nil {
					t.Fatalf("%v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the error does not say %q:\n%v", s, err)
				}
			}
			if again := simtest.CheckLinearizable(&h, simtest.KV()); again == nil || again.Error() != err.Error() {
				t.Errorf("checked again:\n%v\nthe first time:\n%v", again, err)
			}
		})
	}
}

// A history of many concurrent operations on one key runs out of a small
// budget: undecided, which is not "not linearizable", and the same each time.
func TestCheckLinearizableUndecided(t *testing.T) {
	var h simtest.KVHistory
	once(func(t *sched.Task) error {
		var ops []simtest.Op[simtest.KVInput, simtest.KVOutput]
		for i := range 8 {
			ops = append(ops, h.Invoke(t, simtest.KVAppend("x", fmt.Sprint(i%3))))
		}
		for _, op := range ops {
			op.Return(t, none)
		}
		h.Invoke(t, get("x")).Return(t, read("nothing like it"))
		return nil
	})
	for range 2 {
		err := simtest.CheckLinearizable(&h, simtest.KV(), simtest.CheckSteps(50))
		if !errors.Is(err, simtest.ErrUndecided) || errors.Is(err, simtest.ErrNotLinearizable) {
			t.Fatalf("got %v, want ErrUndecided", err)
		}
		const want = `simtest: linearizability undecided: partition "x": 9 operations: the check stopped after 50 steps of the model (CheckSteps)`
		if err.Error() != want {
			t.Fatalf("got %q, want %q", err, want)
		}
	}
	if err := simtest.CheckLinearizable(&h, simtest.KV()); !errors.Is(err, simtest.ErrNotLinearizable) {
		t.Fatalf("with the default budget: %v, want ErrNotLinearizable", err)
	}
}

func TestCheckLinearizableHistoryFile(t *testing.T) {
	var h simtest.KVHistory
	once(func(t *sched.Task) error {
		h.Invoke(t, put("x", "1")).Return(t, none)
		h.Invoke(t, get("x")).Return(t, read("2"))
		return nil
	})
	path := filepath.Join(t.TempDir(), "history.html")
	err := simtest.CheckLinearizable(&h, simtest.KV(), simtest.HistoryFile(path))
	if !errors.Is(err, simtest.ErrNotLinearizable) || !strings.HasSuffix(err.Error(), "\nhistory: "+path) {
		t.Fatalf("got %v", err)
	}
	page, rerr := os.ReadFile(path)
	if rerr != nil {
		t.Fatal(rerr)
	}
	for _, s := range []string{"<html", `Get(\"x\") -\u003e \"2\"`, `task 1 (main), +0s`} {
		if !strings.Contains(string(page), s) {
			t.Errorf("the page has no %q", s)
		}
	}

	// The flag of `go test` overrides the option.
	flagged := filepath.Join(t.TempDir(), "flagged.html")
	if err := flag.Set("weave.history", flagged); err != nil {
		t.Fatal(err)
	}
	defer flag.Set("weave.history", "")
	err = simtest.CheckLinearizable(&h, simtest.KV(), simtest.HistoryFile(path+".not"))
	if !strings.HasSuffix(err.Error(), "\nhistory: "+flagged) {
		t.Fatalf("with -weave.history: %v", err)
	}
	if _, err := os.Stat(flagged); err != nil {
		t.Fatal(err)
	}
	flag.Set("weave.history", "")

	bad := filepath.Join(t.TempDir(), "no such directory", "history.html")
	err = simtest.CheckLinearizable(&h, simtest.KV(), simtest.HistoryFile(bad))
	if !errors.Is(err, simtest.ErrNotLinearizable) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("writing to %s: %v", bad, err)
	}
}

func TestHistoryMisuse(t *testing.T) {
	var h simtest.KVHistory
	tests := []struct {
		name string
		do   func(t *sched.Task)
		want string
	}{
		{"return twice", func(t *sched.Task) {
			op := h.Invoke(t, get("x"))
			op.Return(t, none)
			op.Return(t, none)
		}, "simtest: Op.Return of an operation that returned already"},
		{"fail after return", func(t *sched.Task) {
			op := h.Invoke(t, get("x"))
			op.Return(t, none)
			op.Fail()
		}, "simtest: Op.Fail of an operation that returned already"},
		{"return after fail", func(t *sched.Task) {
			op := h.Invoke(t, get("x"))
			op.Fail()
			op.Return(t, none)
		}, "simtest: Op.Return of an operation that failed already"},
		{"zero op", func(t *sched.Task) {
			var op simtest.Op[simtest.KVInput, simtest.KVOutput]
			op.Fail()
		}, "simtest: Op.Fail of the zero Op"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := once(func(task *sched.Task) (err error) {
				defer func() { err = fmt.Errorf("%v", recover()) }()
				tt.do(task)
				return nil
			})
			if err == nil || !strings.HasSuffix(err.Error(), ": "+tt.want) {
				t.Fatalf("got %v, want a panic %q", err, tt.want)
			}
		})
	}
	// The History still works.
	if n := h.Len(); n != 3 {
		t.Fatalf("Len() = %d, want 3", n)
	}
	once(func(t *sched.Task) error {
		h.Invoke(t, get("x")).Return(t, none)
		return nil
	})
	if err := simtest.CheckLinearizable(&h, simtest.KV()); err != nil {
		t.Fatal(err)
	}
	panics := func(m simtest.Model[string, simtest.KVInput, simtest.KVOutput]) (r any) {
		defer func() { r = recover() }()
		simtest.CheckLinearizable(&h, m)
		return nil
	}
	if r := panics(simtest.Model[string, simtest.KVInput, simtest.KVOutput]{}); r != "simtest: CheckLinearizable: the Model has no Step" {
		t.Fatalf("with no Step: recovered %v", r)
	}
	// A panic of the model, on the checker's goroutine, comes back to the
	// caller, with its stack.
	m := simtest.KV()
	m.Step = func(string, simtest.KVInput) (string, simtest.KVOutput) { panic("boom") }
	r, _ := panics(m).(string)
	if !strings.HasPrefix(r, "simtest: CheckLinearizable: the Model's Step panicked: boom\n\ngoroutine ") ||
		!strings.Contains(r, "TestHistoryMisuse") {
		t.Fatalf("with a Step that panics: recovered %q", r)
	}
}

// The stores below are reached as over a network: a request and its response
// each give the other tasks a chance to run.
type store interface {
	get(t *sched.Task, key string) string
	put(t *sched.Task, key, value string)
	append(t *sched.Task, key, value string)
}

// memory is a store that serves each request under one lock: linearizable,
// unless splitAppend makes an append read, then write in a second request.
type memory struct {
	mu          sched.Mutex
	data        map[string]string
	splitAppend bool
}

func (m *memory) get(t *sched.Task, key string) string {
	t.Yield()
	m.mu.Lock(t)
	v := m.data[key]
	m.mu.Unlock()
	t.Yield()
	return v
}

func (m *memory) put(t *sched.Task, key, value string) {
	t.Yield()
	m.mu.Lock(t)
	m.data[key] = value
	m.mu.Unlock()
	t.Yield()
}

func (m *memory) append(t *sched.Task, key, value string) {
	if m.splitAppend {
		m.put(t, key, m.get(t, key)+value)
		return
	}
	t.Yield()
	m.mu.Lock(t)
	m.data[key] += value
	m.mu.Unlock()
	t.Yield()
}

// cached is a client of a memory with a cache of its own that it never
// invalidates: it reads back its own writes, and misses the others'.
type cached struct {
	*memory
	cache map[string]string
}

func (c *cached) get(t *sched.Task, key string) string {
	if v, ok := c.cache[key]; ok {
		return v
	}
	v := c.memory.get(t, key)
	c.cache[key] = v
	return v
}

func (c *cached) put(t *sched.Task, key, value string) {
	c.memory.put(t, key, value)
	c.cache[key] = value
}

// clients returns a program in which n clients, each with the store open
// returns, put, append and get two keys, and then check judges the history.
func clients(n int, open func(shared *memory) store, check func(*simtest.KVHistory) error) func(*sched.Task) error {
	return func(t *sched.Task) error {
		shared := &memory{data: map[string]string{}}
		h := new(simtest.KVHistory)
		var wg sched.WaitGroup
		for c := range n {
			wg.Go(t, func(t *sched.Task) error {
				db := open(shared)
				for i, key := range []string{"x", "y", "x"} {
					v := fmt.Sprint(c*10 + i)
					op := h.Invoke(t, simtest.KVGet(key))
					op.Return(t, read(db.get(t, key)))
					op = h.Invoke(t, simtest.KVPut(key, v))
					db.put(t, key, v)
					op.Return(t, none)
					op = h.Invoke(t, simtest.KVAppend(key, "+"))
					db.append(t, key, "+")
					op.Return(t, none)
				}
				return nil
			})
		}
		wg.Wait(t)
		if got, want := h.Len(), n*9; got != want {
			return fmt.Errorf("%d operations recorded, want %d", got, want)
		}
		return check(h)
	}
}

func checkKV(h *simtest.KVHistory) error { return simtest.CheckLinearizable(h, simtest.KV()) }

func seeds(n int) simtest.Option {
	if raceEnabled {
		n /= 5
	}
	return simtest.Seeds(n)
}

func TestLinearizableStore(t *testing.T) {
	body := clients(3, func(m *memory) store { return m }, checkKV)
	for _, s := range []simtest.Strategy{simtest.Random(), simtest.PCT(2)} {
		if f, _ := simtest.Explore(body, s, seeds(500)); f != nil {
			t.Fatalf("%v: %v", s, f)
		}
	}
	// Recording takes no step and no choice: a seed is one run still.
	if f, _ := simtest.Explore(body, simtest.CheckDeterminism(), seeds(50)); f != nil {
		t.Fatal(f)
	}
}

func TestNonLinearizableStores(t *testing.T) {
	tests := []struct {
		name   string
		open   func(m *memory) store
		budget int // seeds of Random
		says   []string
	}{
		{"non-atomic append", func(m *memory) store {
			m.splitAppend = true
			return m
		}, 20, []string{`Append(`, "the model answers"}},
		{"stale cache", func(m *memory) store {
			return &cached{m, map[string]string{}}
		}, 20, []string{`Get(`, "the model answers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := clients(3, tt.open, checkKV)
			f, stats := simtest.Explore(body, simtest.Seeds(tt.budget))
			if f == nil {
				t.Fatalf("linearizable in %d runs", stats.Runs)
			}
			if !errors.Is(f, simtest.ErrNotLinearizable) || f.Replayed != "" {
				t.Fatalf("%v", f)
			}
			for _, s := range tt.says {
				if !strings.Contains(f.Error(), s) {
					t.Errorf("the failure does not say %q:\n%v", s, f)
				}
			}
			// The same seed gives the same history, and the same verdict.
			again, _ := simtest.Explore(body, f.Strategy, simtest.FirstSeed(f.Seed), simtest.Seeds(1))
			if again == nil || again.Step != f.Step || again.Err.Error() != f.Err.Error() {
				t.Fatalf("seed %d again:\n%v\nthe first time:\n%v", f.Seed, again, f)
			}
		})
	}
}

// A server applies requests one at a time, each taking a millisecond of
// virtual time, and its clients give up on a reply after three: an operation
// that timed out may still take effect, later. Recorded as pending, the
// history is linearizable; recorded as failed, it is not, under some
// schedules.
func TestTimedOutOperations(t *testing.T) {
	type request struct {
		key, value string // a put of value, or a get if it is ""
		reply      *sched.Chan[string]
	}
	program := func(timedOut func(simtest.Op[simtest.KVInput, simtest.KVOutput])) func(*sched.Task) error {
		return func(t *sched.Task) error {
			h := new(simtest.KVHistory)
			requests := sched.NewChan[request](16)
			t.GoNamed("server", func(t *sched.Task) error {
				data := map[string]string{}
				for i := 1; ; i++ {
					req, ok := requests.Recv(t)
					if !ok {
						return nil
					}
					t.Sleep(time.Millisecond)
					if i%7 == 0 {
						t.Sleep(6 * time.Millisecond) // a pause
					}
					if req.value != "" {
						data[req.key] = req.value
					}
					req.reply.Send(t, data[req.key]) // buffered: the client may be gone
				}
			})
			call := func(t *sched.Task, key, value string) {
				in := get(key)
				if value != "" {
					in = put(key, value)
				}
				op := h.Invoke(t, in)
				reply := sched.NewChan[string](1)
				requests.Send(t, request{key, value, reply})
				var got string
				if sched.Select(t, sched.OnRecv(reply, func(v string, _ bool) { got = v }), sched.OnTimeout(4*time.Millisecond, nil)) == 1 {
					timedOut(op)
					return
				}
				if value != "" {
					got = ""
				}
				op.Return(t, read(got))
			}
			var wg sched.WaitGroup
			for c := range 3 {
				wg.Go(t, func(t *sched.Task) error {
					for i := range 3 {
						call(t, "x", fmt.Sprint(c*10+i))
						t.Sleep(3 * time.Millisecond)
						call(t, "x", "")
						t.Sleep(3 * time.Millisecond)
					}
					return nil
				})
			}
			wg.Wait(t)
			requests.Close()
			return simtest.CheckLinearizable(h, simtest.KV())
		}
	}

	pending := program(func(simtest.Op[simtest.KVInput, simtest.KVOutput]) {})
	if f, _ := simtest.Explore(pending, seeds(300)); f != nil {
		t.Fatal(f)
	}
	failed := program(simtest.Op[simtest.KVInput, simtest.KVOutput].Fail)
	f, stats := simtest.Explore(failed, simtest.Seeds(50))
	if f == nil {
		t.Fatalf("linearizable in %d runs", stats.Runs)
	}
	if !errors.Is(f, simtest.ErrNotLinearizable) || !strings.Contains(f.Error(), "that failed, left out") {
		t.Fatal(f)
	}
}

// BenchmarkHistory is the cost of recording an operation, Invoke and Return.
func BenchmarkHistory(b *testing.B) {
	b.ReportAllocs()
	once(func(t *sched.Task) error {
		h := new(simtest.KVHistory)
		for b.Loop() {
			if h.Len() == 1_000 {
				h = new(simtest.KVHistory)
			}
			h.Invoke(t, get("x")).Return(t, none)
		}
		return nil
	})
}

// BenchmarkLinearizable is the cost of a run of 3 clients of 9 operations
// each on 2 keys, recorded, and then checked or not: the difference is the
// check's.
func BenchmarkLinearizable(b *testing.B) {
	open := func(m *memory) store { return m }
	for _, bb := range []struct {
		name  string
		check func(*simtest.KVHistory) error
	}{
		{"recorded", func(*simtest.KVHistory) error { return nil }},
		{"checked", checkKV},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if f, _ := simtest.Explore(clients(3, open, bb.check), simtest.Seeds(1)); f != nil {
					b.Fatal(f)
				}
			}
		})
	}
}
