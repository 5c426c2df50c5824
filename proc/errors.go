package proc

import (
	"errors"
	"os"
	"strconv"
	"syscall"
)

var (
	// ErrUnknownEntry is wrapped by the error of Start when the child does
	// not know the entry point named in the Spec (Register was not called
	// for it before Main in that binary).
	ErrUnknownEntry = errors.New("proc: unknown entry point")

	// ErrLimit is wrapped by the error of Start for Limits under which the
	// child could not run (see Limits for the least each one allows).
	ErrLimit = errors.New("proc: unworkable limit")

	// ErrFrameTooLarge is wrapped by the error of a Send whose message
	// exceeds the Conn's maximum, and of a Recv whose peer announced such a
	// frame.
	ErrFrameTooLarge = errors.New("proc: frame too large")

	// ErrClosed is returned by Send and Recv on a Conn that has been closed
	// in this process.
	ErrClosed = errors.New("proc: connection closed")

	// ErrTooManyRestarts is wrapped by the error of Supervisor.Run when a
	// child failed more often than the restart intensity allows.
	ErrTooManyRestarts = errors.New("proc: too many restarts")

	// ErrTerminated is context.Cause of an Entry's context after the child
	// received SIGTERM (from Process.Stop or a Supervisor shutting it down).
	ErrTerminated = errors.New("proc: terminated by SIGTERM")

	// ErrParentGone is context.Cause of an Entry's context after the
	// parent's end of the connection closed.
	ErrParentGone = errors.New("proc: parent closed the connection")
)

// ExitError is the error of Wait for a process that did not exit with
// status 0: it exited with another status or was killed by a signal.
type ExitError struct {
	Name  string // the Spec's Entry, or its Path
	PID   int
	State *os.ProcessState
}

// Error reads like "proc: worker (pid 4242): signal: killed".
func (e *ExitError) Error() string {
	return "proc: " + e.Name + " (pid " + strconv.Itoa(e.PID) + "): " + e.State.String()
}

// Signal returns the signal that killed the process, or 0 if it exited.
func (e *ExitError) Signal() syscall.Signal {
	ws, ok := e.State.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0
	}
	return ws.Signal()
}

// ExitCode returns the exit status, or -1 if a signal killed the process.
func (e *ExitError) ExitCode() int { return e.State.ExitCode() }
