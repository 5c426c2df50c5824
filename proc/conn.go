package proc

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultMaxFrame is the largest message a Conn accepts when no other maximum
// is given: 16 MiB.
const DefaultMaxFrame = 16 << 20

// maxMaxFrame bounds the configurable maximum: the length prefix is 32 bits and
// a frame must fit an int on every platform.
const maxMaxFrame = 1<<31 - 1

// Conn is one end of a message connection: a byte stream cut into frames, each
// a 4-byte big-endian length followed by that many bytes. Between a parent and
// a child started with Start it runs over a Unix socketpair; NewConn puts one
// over any other stream.
//
// Send and Recv may be called from any goroutine. Concurrent Sends are
// serialized, as are concurrent Recvs; one Send and one Recv may run at the same
// time. A Send that returned nil synchronizes before the Recv that returns
// that message in the peer. Both block an OS thread while they wait (see the
// package doc for why).
//
// Deadlines work as net.Conn's: SetReadDeadline and SetWriteDeadline apply to
// calls that wait already and to later ones, and a call past its deadline
// fails with an error wrapping os.ErrDeadlineExceeded. A deadline never puts
// the stream out of step. Recv keeps a frame that the deadline cut in the
// middle, and the next Recv goes on with it. A Send that the deadline stops
// before any byte of its frame went out leaves the Conn as it was; one that
// cut its frame has left the peer half a message that cannot be taken back,
// so the Conn's sending side is then broken: that Send and every later one
// return the same error, and the sending side is shut down, so that the peer
// reads an error wrapping io.ErrUnexpectedEOF.
type Conn struct {
	rw  io.ReadWriteCloser
	raw syscall.RawConn // set when rw is an *os.File: its descriptor, non-blocking, is read and written directly
	max int

	rd, wd       deadline
	rwake, wwake waker

	rmu  sync.Mutex
	in   reader
	rerr error // sticky: once Recv failed it fails the same way

	wmu  sync.Mutex
	out  writer
	werr error

	closed     atomic.Bool
	peerExited atomic.Bool // closed by Process.Wait: Recv says how the child ended
	closeOnce  sync.Once
	closeErr   error

	// ended, set by Start for the parent's end, says how the child ended
	// once the stream has: Wait's error and true if it has exited or is
	// exiting (then it waits for the reaper), false if it lives on.
	ended func() (error, bool)
}

// NewConn returns a Conn that frames messages over rw, accepting frames of at
// most max bytes (DefaultMaxFrame if max is 0). The Conn owns rw: Close closes
// it. This is the seam for other transports: a net.Conn to another machine
// works as well as the socketpair that Start uses.
//
// An *os.File's descriptor is read and written directly, and put in
// non-blocking mode: do not pass a file whose open file description other
// programs share and read blocking (a terminal). Deadlines work over a file
// and over any rw with SetReadDeadline and SetWriteDeadline methods (a
// net.Conn); over other streams, setting one returns an error wrapping
// os.ErrNoDeadline.
//
// NewConn panics if max is negative or larger than 2³¹−1.
func NewConn(rw io.ReadWriteCloser, max int) *Conn {
	if max == 0 {
		max = DefaultMaxFrame
	}
	if max < 0 || max > maxMaxFrame {
		panic(fmt.Sprintf("proc: frame maximum %d out of range [1, 2^31-1]", max))
	}
	c := &Conn{rw: rw, max: max}
	c.in.buf = make([]byte, readBuf)
	if f, ok := rw.(*os.File); ok {
		var nonblock error
		raw, err := f.SyscallConn()
		if err == nil {
			err = raw.Control(func(fd uintptr) { nonblock = unix.SetNonblock(int(fd), true) })
		}
		if err == nil && nonblock == nil {
			c.raw = raw
			// Bound once: a method value made at each call would be an
			// allocation per message.
			c.in.fn = c.recvFD
			c.out.fn = c.sendFD
		}
	}
	c.in.viaFn = c.recvVia
	c.out.viaFn = c.sendVia
	return c
}

// MaxFrame returns the largest message this Conn sends or accepts.
func (c *Conn) MaxFrame() int { return c.max }

// Send writes msg as one frame. It blocks until the whole frame has been
// handed to the kernel (or the stream), not until the peer reads it, or until
// the write deadline.
//
// A message longer than MaxFrame is refused with an error wrapping
// ErrFrameTooLarge and nothing is written; the connection stays usable. After
// Close, Send returns ErrClosed. If the peer has gone, Send returns the write
// error (such as EPIPE); it never raises SIGPIPE. Send allocates nothing.
func (c *Conn) Send(msg []byte) error { return c.send(msg, nil) }

// SendVia is Send with via doing the waiting: it calls via.RawWrite, which
// calls back with a descriptor of the Conn's stream until the frame is
// written. Package socket gives a via that parks a task. An error of via's
// wait (a deadline, a cancelled context, a closed descriptor) is returned
// wrapped; the frame is then broken as one a deadline cut (see Conn), unless
// none of it went out.
func (c *Conn) SendVia(via RawIO, msg []byte) error { return c.send(msg, via) }

func (c *Conn) send(msg []byte, via RawIO) error {
	if len(msg) > c.max {
		return fmt.Errorf("%w: sending %d bytes, maximum %d", ErrFrameTooLarge, len(msg), c.max)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	if c.werr != nil {
		return c.werr
	}
	if c.wd.passed() {
		return errSendTimeout
	}
	c.beginSend(msg)
	var err error
	waited := false // err is the wait's, not the stream's
	switch {
	case via != nil:
		if err = via.RawWrite(c.out.viaFn); err == nil {
			err = c.out.err
		} else {
			waited = true
		}
	case c.raw != nil:
		if err = c.raw.Write(c.out.fn); err == nil {
			err = c.out.err
		}
	default:
		err = c.sendOnce(-1)
	}
	c.out.iovs[1] = nil
	timeout := errors.Is(err, os.ErrDeadlineExceeded)
	switch {
	case err == nil:
		return nil
	case c.closed.Load():
		return ErrClosed
	case timeout && c.out.sent == 0:
		return errSendTimeout // nothing went out: the Conn is as it was
	case waited && c.out.sent == 0:
		return fmt.Errorf("proc: send: %w", err)
	case timeout || waited:
		c.werr = fmt.Errorf("proc: send: %v cut a frame after %d of its %d bytes; sending is over: %w",
			waitName(err), c.out.sent, c.out.n, err)
		c.shutdownWrite()
		return c.werr
	}
	c.werr = fmt.Errorf("proc: send: %w", err)
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		c.werr = c.endOf(c.werr)
	}
	return c.werr
}

// waitName says what ended a wait, for an error.
func waitName(err error) string {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "the write deadline"
	}
	return "the end of the wait"
}

// RawIO waits on a Conn's descriptor in place of the Conn: RawRead calls op
// with a descriptor of the stream, and again each time it is readable, until
// op reports that it is done, and returns an error only if the wait ended
// otherwise; RawWrite does the same for writing. It is the seam through
// which a scheduler's poller drives a Conn, so that this package does not
// depend on one: package socket's ProcConn gives a RawIO that parks a task.
// sched.FD's RawRead and RawWrite have this form.
type RawIO interface {
	RawRead(op func(fd int) (done bool)) error
	RawWrite(op func(fd int) (done bool)) error
}

// SyscallConn returns the Conn's descriptor, for a RawIO to wait on, if its
// stream has one: a file or a socket.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if c.raw != nil {
		return c.raw, nil
	}
	if sc, ok := c.rw.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, fmt.Errorf("proc: the Conn's stream (%T) has no descriptor", c.rw)
}

var (
	errSendTimeout = fmt.Errorf("proc: send: %w", os.ErrDeadlineExceeded)
	errRecvTimeout = fmt.Errorf("proc: recv: %w", os.ErrDeadlineExceeded)
)

// sendFD is what RawConn.Write calls: sendOnce, and waits until it is done.
func (c *Conn) sendFD(fd uintptr) bool {
	for {
		err := c.sendOnce(int(fd))
		if err == errWouldBlock {
			if err = c.wait(int(fd), unix.POLLOUT, &c.wd, &c.wwake); err == nil {
				continue
			}
		}
		c.out.err = err
		return true
	}
}

// Recv reads the next frame and returns its payload in a new slice that the
// caller owns.
//
// At a clean end of stream (the peer closed or exited between frames) Recv
// returns io.EOF itself. If the stream ends inside a frame — the peer died in
// the middle of a Send — the error wraps io.ErrUnexpectedEOF.
//
// On the parent's Conn of a child started with Start, the end of the stream
// also says how the child ended, as Wait does. A child that exited with
// status 0 between frames gives io.EOF itself. A child that was killed or
// failed gives an error that wraps both io.EOF (or io.ErrUnexpectedEOF) and
// the child's *ExitError, such as "proc: recv: end of stream: worker (pid
// 4242): signal: killed". So a receive loop that ends on err == io.EOF takes
// a killed child for the failure it is, and one that ends on errors.Is(err,
// io.EOF) takes it for the end of the stream; errors.As finds the
// ExitError. When the stream ends while the child is exiting, Recv waits for
// it to be reaped to say so; a child that closed its end and lives on gives
// io.EOF. A Send that finds the child gone wraps its ExitError the same way.
//
// A length prefix
// larger than MaxFrame is malformed input: Recv returns an error wrapping
// ErrFrameTooLarge, allocates nothing for it and closes the connection.
// Memory for a message is allocated as its bytes arrive: a header costs at
// most 64 KiB before its payload comes, and the buffer then doubles as bytes
// come, so a peer that announces more than it sends costs at most twice what
// it sent. Once
// Recv has failed, later calls return the same error. After Close, Recv
// returns ErrClosed; a Recv blocked in another goroutine returns ErrClosed too.
func (c *Conn) Recv() ([]byte, error) { return c.RecvBuf(nil) }

// RecvBuf is Recv into the caller's memory: the message is read into buf's
// array when it fits in cap(buf), and into a new slice only when it does not.
// On a hot path, receiving into one reused buffer saves an allocation, and
// for large messages the zeroing and garbage collection that go with it.
// RecvBuf may write anywhere in buf[:cap(buf)]; into a buffer large enough,
// it allocates nothing.
func (c *Conn) RecvBuf(buf []byte) ([]byte, error) { return c.recv(buf, nil) }

// RecvVia is RecvBuf with via doing the waiting (see SendVia). An error of
// via's wait is returned wrapped, and leaves the Conn as it was: a frame
// under way stays for the next call, as with a deadline.
func (c *Conn) RecvVia(via RawIO, buf []byte) ([]byte, error) { return c.recv(buf, via) }

func (c *Conn) recv(buf []byte, via RawIO) ([]byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rerr != nil {
		return nil, c.rerr
	}
	if c.rd.passed() {
		return nil, errRecvTimeout
	}
	c.in.resume(buf)
	var msg []byte
	var err error
	waited := false // err is the wait's, not the stream's
	c.in.edge = via != nil
	switch {
	case via != nil:
		c.in.drained = false // set by a Recv that waited in ppoll
		c.in.arg = buf
		if err = via.RawRead(c.in.viaFn); err == nil {
			msg, err = c.in.msg, c.in.err
		} else {
			waited = true
		}
		c.in.arg, c.in.msg = nil, nil
	case c.raw != nil:
		c.in.arg = buf
		if err = c.raw.Read(c.in.fn); err == nil {
			msg, err = c.in.msg, c.in.err
		}
		c.in.arg, c.in.msg = nil, nil
	default:
		msg, err = c.recvOnce(-1, buf)
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && !c.closed.Load() {
			c.in.detach() // the frame cut short stays, for the next call
			return nil, errRecvTimeout
		}
		if waited && !c.closed.Load() {
			c.in.detach()
			return nil, fmt.Errorf("proc: recv: %w", err)
		}
		if c.closed.Load() {
			err = ErrClosed
			if c.peerExited.Load() {
				err = io.EOF
			}
		}
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			err = c.endOf(err)
		}
		c.rerr = err
		if errors.Is(err, ErrFrameTooLarge) {
			c.Close()
		}
		return nil, err
	}
	return msg, nil
}

// recvFD is what RawConn.Read calls: recvOnce, and waits until it is done.
func (c *Conn) recvFD(fd uintptr) bool {
	for {
		msg, err := c.recvOnce(int(fd), c.in.arg)
		if err == errWouldBlock {
			if err = c.wait(int(fd), unix.POLLIN, &c.rd, &c.rwake); err == nil {
				continue
			}
		}
		c.in.msg, c.in.err = msg, err
		return true
	}
}

// recvVia is what a RawIO calls: one attempt, done unless it would block.
func (c *Conn) recvVia(fd int) bool {
	msg, err := c.recvOnce(fd, c.in.arg)
	if err == errWouldBlock {
		return false
	}
	c.in.msg, c.in.err = msg, err
	return true
}

// sendVia is recvVia for sending.
func (c *Conn) sendVia(fd int) bool {
	err := c.sendOnce(fd)
	if err == errWouldBlock {
		return false
	}
	c.out.err = err
	return true
}

// SetDeadline sets both the read and the write deadline.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the time after which Recv and RecvBuf, those waiting
// now included, fail with an error wrapping os.ErrDeadlineExceeded; the zero
// time means none. A frame that a deadline cut stays in the Conn, and the
// next Recv goes on with it. It may be called from any goroutine.
func (c *Conn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(t, &c.rd, &c.rwake, "read", func(d deadliner) error { return d.SetReadDeadline(t) })
}

// SetWriteDeadline sets the time after which Send, those waiting now
// included, fails with an error wrapping os.ErrDeadlineExceeded; the zero
// time means none. A Send stopped by the deadline in the middle of its frame
// breaks the sending side (see Conn). It may be called from any goroutine.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(t, &c.wd, &c.wwake, "write", func(d deadliner) error { return d.SetWriteDeadline(t) })
}

// deadliner is a stream with deadlines of its own, such as a net.Conn.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

func (c *Conn) setDeadline(t time.Time, d *deadline, w *waker, which string, set func(deadliner) error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.raw == nil {
		dl, ok := c.rw.(deadliner)
		if !ok {
			return fmt.Errorf("proc: set %s deadline: %w", which, os.ErrNoDeadline)
		}
		if err := set(dl); err != nil {
			return err
		}
	}
	d.set(t)
	w.wake()
	return nil
}

// Close ends the connection in both directions: the peer's Recv returns io.EOF
// once it has read what was already sent, and a Send or Recv blocked in this
// process returns ErrClosed. Close is idempotent; it returns the error of
// closing the underlying stream the first time and nil after that.
//
// For the Conn of a child started with Start, closing it tells the child to
// finish: its context is cancelled and, if its entry has not returned a
// second later, it exits.
func (c *Conn) Close() error {
	c.closeOnce.Do(c.close)
	return c.closeErr
}

func (c *Conn) close() {
	c.closed.Store(true)
	// shutdown(2) wakes a thread that waits on the same descriptor, which
	// close(2) would not, and tells the peer at once; the eventfds wake the
	// waiters of a descriptor that is not a socket.
	if c.raw != nil {
		c.raw.Control(func(fd uintptr) { unix.Shutdown(int(fd), unix.SHUT_RDWR) })
	}
	c.rwake.close()
	c.wwake.close()
	c.closeErr = c.rw.Close()
}

// endOf adds to err, the end of the stream, how the child at the other end
// ended, if it has and not with status 0.
func (c *Conn) endOf(err error) error {
	if c.ended == nil {
		return err
	}
	if exit, ok := c.ended(); ok && exit != nil {
		return &endError{err: err, exit: exit}
	}
	return err
}

// endError is the error of a Recv or Send on the Conn of a child that ended
// otherwise than with status 0.
type endError struct {
	err  error // what the stream said: io.EOF, io.ErrUnexpectedEOF, EPIPE
	exit error // how the child ended: Wait's error
}

func (e *endError) Error() string {
	what := e.err.Error()
	if e.err == io.EOF {
		what = "proc: recv: end of stream"
	}
	return what + ": " + strings.TrimPrefix(e.exit.Error(), "proc: ")
}

func (e *endError) Unwrap() []error { return []error{e.err, e.exit} }

// closeExited closes the Conn of a child that has exited: a Recv blocked on
// it, or called later, returns the end of that child's stream, as endOf says
// it, rather than ErrClosed.
func (c *Conn) closeExited() {
	c.closeOnce.Do(func() {
		c.peerExited.Store(true) // before closed: Recv reads them in the other order
		c.close()
	})
}

// shutdownRead makes a blocked or later Recv see the end of the stream once the
// data already queued has been read, and the peer's Sends fail.
func (c *Conn) shutdownRead() {
	if c.raw != nil {
		c.raw.Control(func(fd uintptr) { unix.Shutdown(int(fd), unix.SHUT_RD) })
	}
}

// shutdownWrite makes the peer's Recv see the end of the stream after what
// was sent, for a sending side that is broken.
func (c *Conn) shutdownWrite() {
	if c.raw != nil {
		c.raw.Control(func(fd uintptr) { unix.Shutdown(int(fd), unix.SHUT_WR) })
	} else if cw, ok := c.rw.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// SendJSON sends v encoded as JSON in one frame.
func SendJSON[T any](c *Conn, v T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("proc: send json: %w", err)
	}
	return c.Send(b)
}

// RecvJSON receives one frame and decodes it as JSON into a T. A frame that
// does not decode is an error, but the connection stays usable: the next
// RecvJSON reads the next frame.
func RecvJSON[T any](c *Conn) (T, error) {
	var v T
	b, err := c.Recv()
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("proc: recv json: %w", err)
	}
	return v, nil
}

// SendGob sends v encoded with encoding/gob in one frame. Each frame is a
// complete gob stream, type description included, so frames can be decoded
// independently and in any order; that costs a few hundred bytes per message
// over a long-lived gob.Encoder.
func SendGob[T any](c *Conn, v T) error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&v); err != nil {
		return fmt.Errorf("proc: send gob: %w", err)
	}
	return c.Send(buf.Bytes())
}

// RecvGob receives one frame and decodes it with encoding/gob into a T. Like
// RecvJSON, a frame that does not decode leaves the connection usable.
func RecvGob[T any](c *Conn) (T, error) {
	var v T
	b, err := c.Recv()
	if err != nil {
		return v, err
	}
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&v); err != nil {
		return v, fmt.Errorf("proc: recv gob: %w", err)
	}
	return v, nil
}
