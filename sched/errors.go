package sched

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
)

// ErrDeadlock is what a *DeadlockError matches with errors.Is.
var ErrDeadlock = errors.New("sched: deadlock")

// ErrGoexit is the error of a task that called runtime.Goexit (as
// testing.T.FailNow does). The task ends there; its worker goes on.
var ErrGoexit = errors.New("sched: task called runtime.Goexit")

// TaskError is the error of one task, as Run returns it: the error the task
// returned, or a *coro.PanicError if it panicked.
type TaskError struct {
	ID   uint64
	Name string
	Err  error
}

func (e *TaskError) Error() string {
	return fmt.Sprintf("sched: task %s: %v", taskLabel(e.ID, e.Name), e.Err)
}

// Unwrap returns the task's own error.
func (e *TaskError) Unwrap() error { return e.Err }

func taskLabel(id uint64, name string) string {
	if name == "" {
		return fmt.Sprint(id)
	}
	return fmt.Sprintf("%d (%s)", id, name)
}

// DeadlockError reports that no task could run any more: none was runnable,
// no timer was pending, and the tasks listed were parked. Run returns it
// instead of hanging.
type DeadlockError struct {
	Tasks []ParkedTask // ordered by ID
}

// ParkedTask describes a task parked for good: one of a deadlock, or a task
// leaked past its group.
type ParkedTask struct {
	ID      uint64
	Name    string
	Created string // the task's function and where it is defined: "pkg.F.func1 (file.go:42)"
	WaitsOn string // what the task waits for, and who holds it if known
	Stack   []byte // the task's stack where it parked, as debug.Stack formats it
}

func (e *DeadlockError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sched: deadlock: all %d live tasks are parked and nothing can wake them:", len(e.Tasks))
	writeParked(&b, e.Tasks, true)
	return b.String()
}

// Is reports whether target is ErrDeadlock.
func (e *DeadlockError) Is(target error) bool { return target == ErrDeadlock }

// writeParked writes a line per task of a report, and then, if stacks, the
// stack of each.
func writeParked(b *strings.Builder, tasks []ParkedTask, stacks bool) {
	for _, t := range tasks {
		fmt.Fprintf(b, "\n\ttask %s waits on %s", taskLabel(t.ID, t.Name), t.WaitsOn)
		if t.Created != "" {
			fmt.Fprintf(b, ", running %s", t.Created)
		}
	}
	for _, t := range tasks {
		if stacks && len(t.Stack) > 0 {
			fmt.Fprintf(b, "\n\ntask %s:\n%s", taskLabel(t.ID, t.Name), bytes.TrimSpace(t.Stack))
		}
	}
}

// LockCycleError is the panic of a Lock or RLock that would wait forever:
// each task of the cycle waits for a lock (a Mutex, or an RWMutex) that the
// next one holds, or, for a reader, that a writer queued ahead of it wants;
// and the last holds the lock the first (the task that panics) wanted. It
// matches ErrDeadlock with errors.Is.
type LockCycleError struct {
	Cycle []LockWait
}

// LockWait is one edge of a lock cycle: Task waits for Mutex, a lock (a
// Mutex or an RWMutex: its type and address), held by Holder.
type LockWait struct {
	Task, Mutex, Holder string
}

func (e *LockCycleError) Error() string {
	var b strings.Builder
	b.WriteString("sched: lock cycle:")
	for _, w := range e.Cycle {
		fmt.Fprintf(&b, "\n\ttask %s wants %s, held by task %s", w.Task, w.Mutex, w.Holder)
	}
	return b.String()
}

// Is reports whether target is ErrDeadlock.
func (e *LockCycleError) Is(target error) bool { return target == ErrDeadlock }

// trimParkStack cuts from a parked task's stack the frames of the machinery
// above it (taking the stack, suspending) and below it (the coroutine that
// runs tasks), so that a report shows the task's own frames, from the
// primitive it waits in down to its function.
func trimParkStack(st []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(st), []byte("\n"))
	if len(lines) < 3 {
		return st
	}
	head, frames := lines[0], lines[1:]
	const pkg = "github.com/weavert/weave/sched."
	internal := func(fn []byte) bool {
		for _, p := range []string{"runtime/debug.Stack", pkg + "stack", pkg + "trimParkStack",
			pkg + "(*Task).park", pkg + "(*Task).beginUnwind", pkg + "(*Task).unwind", pkg + "(*Task).yield",
			pkg + "(*Task).Yield", pkg + "(*Task).enter", pkg + "(*sim).point"} {
			if bytes.HasPrefix(fn, []byte(p)) {
				return true
			}
		}
		return false
	}
	for len(frames) >= 2 && internal(frames[0]) {
		frames = frames[2:]
	}
	for i := 0; i+1 < len(frames); i += 2 {
		if bytes.HasPrefix(frames[i], []byte(pkg+"(*coroutine).runTask")) {
			frames = frames[:i]
			break
		}
	}
	// The stack was taken while the task ran for the report; it is parked.
	out := bytes.Replace(head, []byte("[running]"), []byte("[parked]"), 1)
	for _, l := range frames {
		out = append(out, '\n')
		out = append(out, l...)
	}
	return append(out, '\n')
}

func stack() []byte { return debug.Stack() }
