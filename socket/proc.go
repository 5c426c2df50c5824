package socket

import (
	"fmt"
	"time"

	"github.com/weavert/weave/proc"
	"github.com/weavert/weave/sched"
	"golang.org/x/sys/unix"
)

// ProcConn is a proc.Conn, the message connection between a parent and a
// child process, whose Send and Recv park the calling task on the
// scheduler's poller instead of blocking a thread: a task talks to a child
// with no goroutine and no Await. Messages, their framing and their errors
// are proc.Conn's (proc.Conn.SendVia and RecvVia); package proc does not
// depend on sched.
//
// One task at a time sends and one receives; others wait their turn,
// parked. Close and the deadlines may be called by any task of the run.
type ProcConn struct {
	c    *proc.Conn
	fd   *sched.FD
	r, w taskIO
	rmu  sched.Mutex
	wmu  sched.Mutex
}

// taskIO is the proc.RawIO of one direction of a ProcConn: it parks the task
// that sends or receives, set under that direction's Mutex.
type taskIO struct {
	fd *sched.FD
	t  *sched.Task
}

func (io *taskIO) RawRead(op func(fd int) bool) error  { return io.fd.RawRead(io.t, op) }
func (io *taskIO) RawWrite(op func(fd int) bool) error { return io.fd.RawWrite(io.t, op) }

// Proc makes c a ProcConn of t's run, which waits on a duplicate of c's
// descriptor. From then on, use c through the ProcConn only: a goroutine
// blocked in c's Recv would hold the lock that a task's Recv takes, and
// block its thread. Close closes both.
func Proc(t *sched.Task, c *proc.Conn) (*ProcConn, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := raw.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, fmt.Errorf("socket: proc conn: %w", err)
	}
	if derr != nil {
		return nil, fmt.Errorf("socket: proc conn: dup: %w", derr)
	}
	f, err := sched.NewFD(t, nfd, fmt.Sprintf("proc conn (fd %d)", nfd))
	if err != nil {
		unix.Close(nfd)
		return nil, fmt.Errorf("socket: proc conn: %w", err)
	}
	p := &ProcConn{c: c, fd: f}
	p.r.fd, p.w.fd = f, f
	return p, nil
}

// Send sends msg as one frame, parking t while the socket's buffer is full
// (see proc.Conn.Send).
func (p *ProcConn) Send(t *sched.Task, msg []byte) error {
	p.wmu.Lock(t)
	defer p.wmu.Unlock()
	p.w.t = t
	err := p.c.SendVia(&p.w, msg)
	p.w.t = nil
	return err
}

// Recv parks t until the next frame has come, and returns it in a new
// slice (see proc.Conn.Recv).
func (p *ProcConn) Recv(t *sched.Task) ([]byte, error) { return p.RecvBuf(t, nil) }

// RecvBuf is Recv into buf's memory when the message fits (see
// proc.Conn.RecvBuf).
func (p *ProcConn) RecvBuf(t *sched.Task, buf []byte) ([]byte, error) {
	p.rmu.Lock(t)
	defer p.rmu.Unlock()
	p.r.t = t
	msg, err := p.c.RecvVia(&p.r, buf)
	p.r.t = nil
	return msg, err
}

// Close closes the connection: the proc.Conn, then the descriptor, so that
// tasks parked on it wake with proc.ErrClosed.
func (p *ProcConn) Close() error {
	err := p.c.Close()
	p.fd.Close()
	return err
}

// SetDeadline sets the read and write deadlines (see Conn.SetDeadline).
func (p *ProcConn) SetDeadline(when time.Time) error { return p.fd.SetDeadline(when) }

// SetReadDeadline sets the deadline of Recv.
func (p *ProcConn) SetReadDeadline(when time.Time) error { return p.fd.SetReadDeadline(when) }

// SetWriteDeadline sets the deadline of Send.
func (p *ProcConn) SetWriteDeadline(when time.Time) error { return p.fd.SetWriteDeadline(when) }

// Conn returns the proc.Conn.
func (p *ProcConn) Conn() *proc.Conn { return p.c }
