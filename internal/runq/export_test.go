package runq

// StartAt makes the empty queue q count its positions from n, so that tests
// can run it across the wrap-around of the uint32 counters.
func StartAt[T any](q *Queue[T], n uint32) {
	q.head.Store(n)
	q.tail.Store(n)
}
