// Package runq is a worker's local run queue: a fixed ring of 256 entries that
// one owner pushes to and pops from, and that other workers steal half of.
//
// It is the queue of Go's runtime (runqput, runqget, runqgrab) with the same
// size, written with sync/atomic: the owner writes a slot and then publishes
// it by storing tail; consumers (the owner's Pop and thieves' Steal) claim
// entries by a compare-and-swap on head. A thief that read a slot the owner
// has since reused finds head moved and retries, so a claimed entry is always
// the one that was published.
//
// Rejected: a mutex around a slice. Its cost is close on the uncontended
// path, but a thief would hold up the owner, and the owner's pops are the
// scheduler's hottest path.
package runq

import "sync/atomic"

// Size is the capacity of a Queue, the figure Go's runtime and Tokio share.
const Size = 256

// Queue is a single-producer, multi-consumer ring of *T. The zero value is an
// empty queue. Push, Pop and PopHalf may be called only by the owner; Steal
// may be called by any goroutine, for a destination queue it owns.
type Queue[T any] struct {
	head atomic.Uint32 // next entry to consume; advanced by CAS
	tail atomic.Uint32 // next slot to fill; stored by the owner only
	buf  [Size]atomic.Pointer[T]
}

// Len reports the number of entries, which may be stale when called by
// anyone but the owner.
func (q *Queue[T]) Len() int {
	for {
		h := q.head.Load()
		t := q.tail.Load()
		if q.head.Load() == h {
			return int(t - h)
		}
	}
}

// Push appends x and reports true, or reports false and changes nothing if
// the queue is full. Owner only.
func (q *Queue[T]) Push(x *T) bool {
	h := q.head.Load()
	t := q.tail.Load()
	if t-h >= Size {
		return false
	}
	q.buf[t%Size].Store(x)
	q.tail.Store(t + 1) // publishes the slot
	return true
}

// Pop removes and returns the oldest entry, or nil if the queue is empty.
// Owner only.
func (q *Queue[T]) Pop() *T {
	for {
		h := q.head.Load()
		t := q.tail.Load()
		if t == h {
			return nil
		}
		x := q.buf[h%Size].Load()
		if q.head.CompareAndSwap(h, h+1) {
			return x
		}
	}
}

// PopHalf removes the oldest half of the entries (rounded up) into dst, which
// must have room for Size/2 entries, and returns how many it moved. The owner
// calls it when Push reports a full queue, to move work to a global queue.
func (q *Queue[T]) PopHalf(dst []*T) int {
	for {
		h, n := q.half()
		if n == 0 {
			return 0
		}
		for i := range n {
			dst[i] = q.buf[(h+i)%Size].Load()
		}
		if q.head.CompareAndSwap(h, h+n) {
			return int(n)
		}
	}
}

// Steal moves the oldest half of q's entries (rounded up) to the end of dst
// and returns the last one moved, taking it out of dst; it returns nil if q
// is empty. The caller must own dst, and dst must have room for Size/2
// entries (a worker steals only when its own queue is empty).
func (q *Queue[T]) Steal(dst *Queue[T]) *T {
	dt := dst.tail.Load()
	n := q.grab(dst, dt)
	if n == 0 {
		return nil
	}
	n--
	x := dst.buf[(dt+n)%Size].Load()
	if n > 0 {
		dst.tail.Store(dt + n)
	}
	return x
}

// half reads q's head and how many entries are half of q's, rounded up.
func (q *Queue[T]) half() (h, n uint32) {
	h = q.head.Load()
	n = q.tail.Load() - h
	return h, n - n/2
}

// grab copies half of q's entries into dst's free slots from index at, then
// claims them in q. It returns how many it claimed.
func (q *Queue[T]) grab(dst *Queue[T], at uint32) uint32 {
	for {
		h, n := q.half()
		if n == 0 {
			return 0
		}
		if n > Size/2 {
			continue // h and t were read at different moments: read again
		}
		for i := range n {
			dst.buf[(at+i)%Size].Store(q.buf[(h+i)%Size].Load())
		}
		if q.head.CompareAndSwap(h, h+n) {
			return n
		}
	}
}
