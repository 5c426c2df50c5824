package sched

// Tracer receives the events of every task's life. Its methods are called on
// the scheduler's threads, at the moment of the event, possibly from several
// threads at once: they must be quick and safe for concurrent use. A *Task
// passed to them may be read (ID, Name) but not used to run anything.
//
// With no tracer (the default), each event costs one branch.
type Tracer interface {
	// Spawn: task was created by parent (nil for the main task). Its ID,
	// Name and CreatedAt are set.
	Spawn(task, parent *Task)
	// Resume: task starts or resumes running on the numbered thread.
	Resume(task *Task, thread int)
	// Park: task stopped running, for the reason given: it yielded, or
	// what it waits for. Formatting the reason costs; comparing its Kind
	// does not.
	Park(task *Task, why WaitReason)
	// Rewait: task, still parked, waits for something else now, given in
	// why: an Await queued for a goroutine of the pool (WaitAwaitQueued)
	// got one, and runs (WaitAwait). It comes after the task's Park and
	// before its Wake, from the Await's goroutine.
	Rewait(task *Task, why WaitReason)
	// Wake: task became runnable, woken by the running task by, or with
	// by == nil when no waking task is known: a timer, Await, a context,
	// and Close, Unlock and Done, which take no task.
	Wake(task, by *Task)
	// Done: task ended, with the error it failed with, if any.
	Done(task *Task, err error)
}
