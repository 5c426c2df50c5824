package proc

import (
	"io"
	"os"
	"os/exec"
)

// stdinCopy feeds a Spec.Stdin that is not a file to the child through a
// pipe, on a goroutine of its own.
//
// os/exec would do the copying itself, but its Wait waits for the copy to
// end: a Stdin that never ends (an io.Pipe nobody closes) held up the news
// of the child's exit for ever, and then WaitDelay reported ErrWaitDelay for
// a child that had exited with status 0. Here the reaper stops the copy when
// the child has exited and does not wait for it.
type stdinCopy struct {
	src  io.Reader
	r, w *os.File // the pipe: the child's end, and the one the copy writes
	done chan struct{}
}

// newStdinCopy sets cmd.Stdin from stdin: a file as it is, any other Reader
// through a pipe, which the returned stdinCopy fills once the child runs.
func newStdinCopy(cmd *exec.Cmd, stdin io.Reader) (*stdinCopy, error) {
	if stdin == nil {
		return nil, nil
	}
	if f, ok := stdin.(*os.File); ok {
		cmd.Stdin = f
		return nil, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdin = r
	return &stdinCopy{src: stdin, r: r, w: w, done: make(chan struct{})}, nil
}

// started closes the parent's copy of the child's end and, if the child
// runs, starts copying.
func (s *stdinCopy) started(ok bool) {
	s.r.Close()
	if !ok {
		s.w.Close()
		close(s.done)
		return
	}
	go func() {
		defer close(s.done)
		io.Copy(s.w, s.src)
		s.w.Close() // the child reads the end of its input
	}()
}

// stop ends the copy after the child has exited, without waiting for it:
// closing the pipe ends a Write in progress, and closing Stdin, if it can be
// closed, a Read. A copy that has already ended leaves Stdin as it is.
func (s *stdinCopy) stop() {
	s.w.Close()
	select {
	case <-s.done:
		return
	default:
	}
	if c, ok := s.src.(io.Closer); ok {
		c.Close()
	}
}
