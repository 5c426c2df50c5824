package runq_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/weavert/weave/internal/runq"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// model is the trivial reference: a slice used as a FIFO.
type model []*int

// FuzzQueue runs random operation sequences on two queues and on two models,
// and checks that they agree after every step. The queues count their
// positions from just below 2^32, so that every sequence of more than a few
// hundred pushes runs across the wrap-around of head and tail.
func FuzzQueue(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 2, 3, 1, 1})
	f.Add(make([]byte, 600))
	f.Add([]byte{0, 0, 0, 0, 0, 3, 0, 4, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var q [2]runq.Queue[int]
		var m [2]model
		for i := range q {
			runq.StartAt(&q[i], ^uint32(0)-uint32(len(ops)%300))
		}
		next := 0
		half := make([]*int, runq.Size/2)
		for step, op := range ops {
			i := int(op>>7) & 1 // which queue the op is on
			q1, m1 := &q[i], &m[i]
			q2, m2 := &q[1-i], &m[1-i]
			switch op % 5 {
			case 0, 1: // Push (twice as likely, so queues fill)
				x := new(int)
				*x = next
				next++
				ok := q1.Push(x)
				if ok != (len(*m1) < runq.Size) {
					t.Fatalf("step %d: Push = %v with %d entries", step, ok, len(*m1))
				}
				if ok {
					*m1 = append(*m1, x)
				}
			case 2: // Pop
				got := q1.Pop()
				var want *int
				if len(*m1) > 0 {
					want, *m1 = (*m1)[0], (*m1)[1:]
				}
				if got != want {
					t.Fatalf("step %d: Pop = %v, want %v", step, got, want)
				}
			case 3: // PopHalf
				n := q1.PopHalf(half)
				k := len(*m1) - len(*m1)/2
				if n != k {
					t.Fatalf("step %d: PopHalf moved %d, want %d", step, n, k)
				}
				for j := range n {
					if half[j] != (*m1)[j] {
						t.Fatalf("step %d: PopHalf[%d] differs", step, j)
					}
				}
				*m1 = (*m1)[n:]
			case 4: // Steal from q2 into q1, if q1 has room as required
				k := len(*m2) - len(*m2)/2
				if len(*m1)+k > runq.Size {
					continue
				}
				got := q2.Steal(q1)
				var want *int
				if k > 0 {
					moved := (*m2)[:k]
					*m1 = append(*m1, moved[:k-1]...)
					want = moved[k-1]
					*m2 = (*m2)[k:]
				}
				if got != want {
					t.Fatalf("step %d: Steal = %v, want %v", step, got, want)
				}
			}
			for j := range q {
				if q[j].Len() != len(m[j]) {
					t.Fatalf("step %d: queue %d Len = %d, want %d", step, j, q[j].Len(), len(m[j]))
				}
			}
		}
	})
}

// TestStealConcurrent has one owner push and pop while thieves steal into
// their own queues: every entry must be consumed exactly once. The queues
// start just below 2^32, so that they all wrap around meanwhile.
func TestStealConcurrent(t *testing.T) {
	const n = 200_000
	const thieves = 3
	var owner runq.Queue[int]
	runq.StartAt(&owner, ^uint32(0)-1000)
	seen := make([]atomic.Int32, n)
	var done atomic.Bool
	var wg sync.WaitGroup
	consume := func(x *int) { seen[*x].Add(1) }
	for range thieves {
		wg.Go(func() {
			var mine runq.Queue[int]
			runq.StartAt(&mine, ^uint32(0)-100)
			for {
				stop := done.Load() // read before stealing: a final pass after the owner stops
				if x := owner.Steal(&mine); x != nil {
					consume(x)
				}
				for x := mine.Pop(); x != nil; x = mine.Pop() {
					consume(x)
				}
				if stop {
					return
				}
			}
		})
	}
	for i := range n {
		x := new(int)
		*x = i
		for !owner.Push(x) {
			if y := owner.Pop(); y != nil {
				consume(y)
			}
		}
		if i%3 == 0 {
			if y := owner.Pop(); y != nil {
				consume(y)
			}
		}
	}
	for x := owner.Pop(); x != nil; x = owner.Pop() {
		consume(x)
	}
	done.Store(true)
	wg.Wait()
	for i := range seen {
		if c := seen[i].Load(); c != 1 {
			t.Fatalf("entry %d consumed %d times", i, c)
		}
	}
}

// FuzzRing checks Ring against the slice model.
func FuzzRing(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 1, 1, 1})
	f.Add(make([]byte, 300))
	f.Fuzz(func(t *testing.T, ops []byte) {
		var r runq.Ring[int]
		var m model
		for step, op := range ops {
			if op%3 != 2 {
				x := new(int)
				*x = step
				r.Push(x)
				m = append(m, x)
			} else {
				got := r.Pop()
				var want *int
				if len(m) > 0 {
					want, m = m[0], m[1:]
				}
				if got != want {
					t.Fatalf("step %d: Pop = %v, want %v", step, got, want)
				}
			}
			if r.Len() != len(m) {
				t.Fatalf("step %d: Len = %d, want %d", step, r.Len(), len(m))
			}
		}
	})
}
