package runq

// Ring is an unbounded FIFO of *T for one goroutine: no atomics, no
// stealing. A worker that has no thieves (the only worker of an event loop)
// uses it instead of Queue, whose compare-and-swap on every pop would buy
// nothing there. The zero value is an empty ring.
type Ring[T any] struct {
	buf  []*T // len is a power of two, or 0
	head uint
	n    uint
}

// Len returns the number of entries.
func (r *Ring[T]) Len() int { return int(r.n) }

// Push appends x.
func (r *Ring[T]) Push(x *T) {
	if r.n == uint(len(r.buf)) {
		r.grow()
	}
	r.buf[(r.head+r.n)&uint(len(r.buf)-1)] = x
	r.n++
}

// Pop removes and returns the oldest entry, or nil if r is empty.
func (r *Ring[T]) Pop() *T {
	if r.n == 0 {
		return nil
	}
	x := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) & uint(len(r.buf)-1)
	r.n--
	return x
}

func (r *Ring[T]) grow() {
	size := max(2*len(r.buf), 64)
	buf := make([]*T, size)
	for i := range r.n {
		buf[i] = r.buf[(r.head+i)&uint(len(r.buf)-1)]
	}
	r.buf, r.head = buf, 0
}
