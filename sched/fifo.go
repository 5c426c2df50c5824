package sched

// The queues of tasks (taskList) and of a channel's waiters (waitq) are
// linked through a field of each element, as the runtime links the
// goroutines waiting on a channel: waiting allocates nothing. Their zero
// values are empty.
//
// Rejected: one generic fifo[E, P] for both, with the link behind a method
// of P. Under Go's generics the method is called through the instantiation's
// dictionary, an indirect call that kept push and pop from inlining, and cost
// about a tenth of a channel round trip between two tasks.

// taskList is a queue of tasks, linked through Task.next.
type taskList struct{ head, tail *Task }

func (l *taskList) empty() bool { return l.head == nil }

func (l *taskList) push(t *Task) {
	t.next = nil
	if l.tail == nil {
		l.head = t
	} else {
		l.tail.next = t
	}
	l.tail = t
}

// pop takes the first of l, or returns nil.
func (l *taskList) pop() *Task {
	t := l.head
	if t != nil {
		if l.head = t.next; l.head == nil {
			l.tail = nil
		}
		t.next = nil
	}
	return t
}

// remove takes t out of l, if it is there.
func (l *taskList) remove(t *Task) {
	var prev *Task
	for u := l.head; u != nil; prev, u = u, u.next {
		if u != t {
			continue
		}
		if prev == nil {
			l.head = u.next
		} else {
			prev.next = u.next
		}
		if l.tail == u {
			l.tail = prev
		}
		u.next = nil
		return
	}
}

// waitq is a queue of a channel's waiters, linked through waiter.next.
type waitq[T any] struct{ head, tail *waiter[T] }

func (q *waitq[T]) push(w *waiter[T]) {
	w.next = nil
	if q.tail == nil {
		q.head = w
	} else {
		q.tail.next = w
	}
	q.tail = w
}

// pop takes the first of q, or returns nil.
func (q *waitq[T]) pop() *waiter[T] {
	w := q.head
	if w != nil {
		if q.head = w.next; q.head == nil {
			q.tail = nil
		}
		w.next = nil
	}
	return w
}

// remove takes w out of q, if it is there.
func (q *waitq[T]) remove(w *waiter[T]) {
	var prev *waiter[T]
	for u := q.head; u != nil; prev, u = u, u.next {
		if u != w {
			continue
		}
		if prev == nil {
			q.head = u.next
		} else {
			prev.next = u.next
		}
		if q.tail == u {
			q.tail = prev
		}
		u.next = nil
		return
	}
}
