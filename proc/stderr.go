package proc

import (
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// stderrTail catches the standard error of a child that runs Main, from its
// start to its handshake, when the Spec leaves standard error to the parent:
// it copies what the child writes there to the parent's standard error and
// keeps the last tailSize bytes, so that Start can say why a child died
// before it was ready (a runtime that failed under a tight memory limit says
// so only there). At the handshake, Main puts the parent's standard error,
// passed as another descriptor, in place of the pipe: from then on the child
// and its own children write there directly, and nothing is copied.
//
// Rejected: copying the child's standard error for its whole life, which
// would also give Wait's error a tail. Every line would then cross an extra
// pipe and goroutine, a child's writes would wait on the parent's reading,
// and a descendant that outlived the child would lose its standard error.
type stderrTail struct {
	childPipe // the child writes, the parent reads
	dst       io.Writer
	tail      []byte
}

// tailSize is how much of a child's standard error Start reports.
const tailSize = 4 << 10

func newStderrTail(dst io.Writer) (*stderrTail, error) {
	p, err := newChildPipe(false)
	if err != nil {
		return nil, err
	}
	return &stderrTail{childPipe: p, dst: dst}, nil
}

// started starts copying if the child runs.
func (t *stderrTail) started(ok bool) { t.childPipe.started(ok, t.copy) }

func (t *stderrTail) copy() {
	buf := make([]byte, 4096)
	for {
		n, err := t.own.Read(buf)
		t.keep(buf[:n])
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.drain(buf) // stop says so
		}
		return
	}
}

// drain takes what is in the pipe without waiting for more.
func (t *stderrTail) drain(buf []byte) {
	t.own.SetReadDeadline(time.Time{})
	rc, err := t.own.SyscallConn()
	if err != nil {
		return
	}
	for {
		n := 0
		if rc.Read(func(fd uintptr) bool { n, _ = unix.Read(int(fd), buf); return true }) != nil || n <= 0 {
			return
		}
		t.keep(buf[:n])
	}
}

func (t *stderrTail) keep(b []byte) {
	if len(b) == 0 {
		return
	}
	t.dst.Write(b)
	t.tail = append(t.tail, b...)
	if len(t.tail) > 2*tailSize {
		t.tail = append(t.tail[:0], t.tail[len(t.tail)-tailSize:]...)
	}
}

// stop ends the copy once the child has handed its standard error over or
// exited: everything it wrote is in the pipe then, and nothing is waited for
// beyond it (a descendant may hold the pipe open). It returns the tail.
func (t *stderrTail) stop() string {
	t.own.SetReadDeadline(time.Now())
	<-t.done
	t.own.Close()
	tail := t.tail[max(0, len(t.tail)-tailSize):]
	return strings.TrimRight(string(tail), "\n")
}
