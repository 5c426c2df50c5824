package sched

import (
	"slices"
	"testing"
)

// nopOwner is a timer owner for the model test: firing does nothing.
type nopOwner struct{}

func (nopOwner) fire(*worker, int64, uint64) {}
func (nopOwner) wakes() bool                 { return true }

// FuzzTimers runs random sequences of add, remove and take on the timer heap
// and on its trivial reference, a slice kept sorted, and checks that they
// agree after every step: what remove reports, which timers take returns in
// which order of deadlines, and the earliest deadline published for readers
// without the lock.
func FuzzTimers(f *testing.F) {
	f.Add([]byte{0, 5, 0, 3, 0, 9, 2, 4, 1, 1, 2, 200})
	f.Add([]byte{0, 1, 0, 1, 0, 1, 1, 0, 1, 2, 2, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var ts timers
		ts.init()
		var all []*timer // every timer made, in order
		var model []*timer
		now := int64(0)
		for len(ops) >= 2 {
			op, arg := ops[0], ops[1]
			ops = ops[2:]
			switch op % 3 {
			case 0: // add a new timer, or re-add one that is out
				tm := &timer{owner: nopOwner{}}
				if op%2 == 1 && len(all) > 0 {
					if old := all[int(arg)%len(all)]; !slices.Contains(model, old) {
						tm = old
					}
				} else {
					all = append(all, tm)
				}
				when := now + int64(arg%16)
				ts.add(tm, when)
				model = append(model, tm) // tm.when is when: the heap set it
			case 1: // remove
				if len(all) == 0 {
					continue
				}
				tm := all[int(arg)%len(all)]
				i := slices.Index(model, tm)
				if got := ts.remove(tm); got != (i >= 0) {
					t.Fatalf("remove = %v, want %v", got, i >= 0)
				}
				if i >= 0 {
					model = slices.Delete(model, i, i+1)
				}
			case 2: // take what is due
				now += int64(arg % 8)
				got := ts.take(now, nil)
				var want []int64
				model = slices.DeleteFunc(model, func(tm *timer) bool {
					if tm.when <= now {
						want = append(want, tm.when)
						return true
					}
					return false
				})
				slices.Sort(want)
				var whens []int64
				for _, d := range got {
					whens = append(whens, d.tm.when)
					if slices.Contains(model, d.tm) {
						t.Fatalf("take returned a timer that is not due")
					}
				}
				if !slices.Equal(whens, want) {
					t.Fatalf("take(%d) = %v, want %v", now, whens, want)
				}
			}
			next := int64(never)
			for _, tm := range model {
				next = min(next, tm.when)
			}
			if got := ts.next.Load(); got != next {
				t.Fatalf("next = %d, want %d", got, next)
			}
			if len(ts.h) != len(model) {
				t.Fatalf("%d timers in the heap, %d in the model", len(ts.h), len(model))
			}
			for i, tm := range ts.h {
				if tm.i != i {
					t.Fatalf("timer at %d records index %d", i, tm.i)
				}
			}
		}
	})
}
