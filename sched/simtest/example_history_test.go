package simtest_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/sched/simtest"
)

// kvStore is a key-value store whose clients reach it as over a network:
// each request gives the other tasks a chance to run.
type kvStore struct {
	mu   sched.Mutex
	data map[string]string
}

func (s *kvStore) request(t *sched.Task, f func()) {
	t.Yield()
	s.mu.Lock(t)
	f()
	s.mu.Unlock()
	t.Yield()
}

// appendTwice runs two clients that each append to a key, then read it;
// appendTo appends. Each operation is recorded, and the history checked.
func appendTwice(appendTo func(t *sched.Task, s *kvStore, key, value string)) func(*sched.Task) error {
	return func(t *sched.Task) error {
		s := &kvStore{data: map[string]string{}}
		h := new(simtest.KVHistory)
		var wg sched.WaitGroup
		for _, value := range []string{"a", "b"} {
			wg.Go(t, func(t *sched.Task) error {
				op := h.Invoke(t, simtest.KVAppend("x", value))
				appendTo(t, s, "x", value)
				op.Return(t, simtest.KVOutput{})

				op = h.Invoke(t, simtest.KVGet("x"))
				var v string
				s.request(t, func() { v = s.data["x"] })
				op.Return(t, simtest.KVOutput{Value: v})
				return nil
			})
		}
		wg.Wait(t)
		return simtest.CheckLinearizable(h, simtest.KV())
	}
}

// A store whose Append reads the value in one request and writes it back
// in another can lose an append under some schedules. Recording what the
// clients asked and got, and checking it against the model of a key-value
// store, finds it: no hand-written assertion needed.
func ExampleCheckLinearizable() {
	split := func(t *sched.Task, s *kvStore, key, value string) {
		var v string
		s.request(t, func() { v = s.data[key] })
		s.request(t, func() { s.data[key] = v + value })
	}
	f, _ := simtest.Explore(appendTwice(split), simtest.Seeds(100))
	fmt.Println("not linearizable:", errors.Is(f, simtest.ErrNotLinearizable), "seed", f.Seed)
	_, why, _ := strings.Cut(f.Err.Error(), "simtest: ")
	fmt.Println(why)

	atomic := func(t *sched.Task, s *kvStore, key, value string) {
		s.request(t, func() { s.data[key] += value })
	}
	f, stats := simtest.Explore(appendTwice(atomic), simtest.Seeds(1000))
	fmt.Println("fixed:", f == nil, "after", stats.Runs, "runs")
	// Output:
	// not linearizable: true seed 4
	// history not linearizable: partition "x": 4 operations: no order of them fits the model and the order of events
	// the longest order that fits takes 2 of them, and leaves the state "ab":
	// 	events 1-5: task 2: Append("x", "a")
	// 	events 2-3: task 3: Append("x", "b")
	// none of the operations that could come next fits:
	// 	events 4-7: task 3: Get("x") -> "a"
	// 		the model answers Get("x") -> "ab"
	// 	events 6-8: task 2: Get("x") -> "a"
	// 		the model answers Get("x") -> "ab"
	// add -weave.history=FILE to see this history in a browser
	// fixed: true after 1000 runs
}

// A model of a counter whose Add returns the new total, and a counter that
// reads, yields, then writes: two concurrent Adds of 1 can both answer 1.
func ExampleModel() {
	counter := simtest.Model[int, int, int]{
		Step:     func(total, n int) (int, int) { return total + n, total + n },
		Describe: func(n, total int) string { return fmt.Sprintf("Add(%d) -> %d", n, total) },
	}
	body := func(t *sched.Task) error {
		h := new(simtest.History[int, int])
		total := 0
		var wg sched.WaitGroup
		for range 2 {
			wg.Go(t, func(t *sched.Task) error {
				op := h.Invoke(t, 1)
				v := total
				t.Yield()
				total = v + 1
				op.Return(t, total)
				return nil
			})
		}
		wg.Wait(t)
		return simtest.CheckLinearizable(h, counter)
	}
	f, _ := simtest.Explore(body, simtest.Seeds(100))
	_, why, _ := strings.Cut(f.Err.Error(), "simtest: ")
	fmt.Println(why)
	// Output:
	// history not linearizable: 2 operations: no order of them fits the model and the order of events
	// the longest order that fits takes 1 of them, and leaves the state 1:
	// 	events 1-4: task 3: Add(1) -> 1
	// none of the operations that could come next fits:
	// 	events 2-3: task 2: Add(1) -> 1
	// 		the model answers Add(1) -> 2
	// add -weave.history=FILE to see this history in a browser
}
