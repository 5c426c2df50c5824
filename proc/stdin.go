package proc

import (
	"io"
	"os"
	"os/exec"
)

// childPipe is a pipe between the parent and a child, served on the parent's
// side by a goroutine that copies.
type childPipe struct {
	child, own *os.File // the child's end, and the parent's
	done       chan struct{}
}

// newChildPipe makes a pipe whose read end is the child's if childReads.
func newChildPipe(childReads bool) (childPipe, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return childPipe{}, err
	}
	if childReads {
		return childPipe{child: r, own: w, done: make(chan struct{})}, nil
	}
	return childPipe{child: w, own: r, done: make(chan struct{})}, nil
}

// started closes the parent's copy of the child's end and, if the child
// runs (ok), calls copy on a goroutine; done is closed when it returns.
func (p *childPipe) started(ok bool, copy func()) {
	p.child.Close()
	if !ok {
		p.own.Close()
		close(p.done)
		return
	}
	go func() {
		defer close(p.done)
		copy()
	}()
}

// stdinCopy feeds a Spec.Stdin that is not a file to the child through a
// pipe, on a goroutine of its own.
//
// os/exec would do the copying itself, but its Wait waits for the copy to
// end: a Stdin that never ends (an io.Pipe nobody closes) held up the news
// of the child's exit for ever, and then WaitDelay reported ErrWaitDelay for
// a child that had exited with status 0. Here the reaper stops the copy when
// the child has exited and does not wait for it.
type stdinCopy struct {
	childPipe
	src io.Reader
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
	p, err := newChildPipe(true)
	if err != nil {
		return nil, err
	}
	cmd.Stdin = p.child
	return &stdinCopy{childPipe: p, src: stdin}, nil
}

// started starts copying if the child runs.
func (s *stdinCopy) started(ok bool) {
	s.childPipe.started(ok, func() {
		io.Copy(s.own, s.src)
		s.own.Close() // the child reads the end of its input
	})
}

// stop ends the copy after the child has exited, without waiting for it:
// closing the pipe ends a Write in progress, and closing Stdin, if it can be
// closed, a Read. A copy that has already ended leaves Stdin as it is.
func (s *stdinCopy) stop() {
	s.own.Close()
	select {
	case <-s.done:
		return
	default:
	}
	if c, ok := s.src.(io.Closer); ok {
		c.Close()
	}
}
