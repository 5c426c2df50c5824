package sched

// fifo is a queue of *E linked through a field of each E (P's link), as the
// runtime links the goroutines waiting on a channel: waiting allocates
// nothing. Its zero value is empty. The queues of tasks (taskList) and of a
// channel's waiters (waitq) are fifos.
type fifo[E any, P linked[E]] struct{ head, tail *E }

// linked is a pointer to E, a type with a link to the next in a fifo.
type linked[E any] interface {
	*E
	link() **E
}

func (q *fifo[E, P]) empty() bool { return q.head == nil }

func (q *fifo[E, P]) push(x *E) {
	*P(x).link() = nil
	if q.tail == nil {
		q.head = x
	} else {
		*P(q.tail).link() = x
	}
	q.tail = x
}

// pop takes the first of q, or returns nil.
func (q *fifo[E, P]) pop() *E {
	x := q.head
	if x != nil {
		next := P(x).link()
		if q.head = *next; q.head == nil {
			q.tail = nil
		}
		*next = nil
	}
	return x
}

// remove takes x out of q, if it is there.
func (q *fifo[E, P]) remove(x *E) {
	var prev *E
	for y := q.head; y != nil; prev, y = y, *P(y).link() {
		if y != x {
			continue
		}
		if prev == nil {
			q.head = *P(y).link()
		} else {
			*P(prev).link() = *P(y).link()
		}
		if q.tail == y {
			q.tail = prev
		}
		*P(y).link() = nil
		return
	}
}

// taskList is a fifo of tasks, linked through Task.next.
type taskList = fifo[Task, *Task]

func (t *Task) link() **Task { return &t.next }

// waitq is a fifo of a channel's waiters.
type waitq[T any] = fifo[waiter[T], *waiter[T]]

func (w *waiter[T]) link() **waiter[T] { return &w.next }
