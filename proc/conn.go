package proc

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// DefaultMaxFrame is the largest message a Conn accepts when no other maximum
// is given: 16 MiB.
const DefaultMaxFrame = 16 << 20

// maxMaxFrame bounds the configurable maximum: the length prefix is 32 bits and
// a frame must fit an int on every platform.
const maxMaxFrame = 1<<31 - 1

const (
	headerLen = 4
	// A frame whose header and payload fit in smallFrame is copied into one
	// buffer and written with one write(2); larger ones are written with
	// writev(2) straight from the caller's slice, so a 64 KiB message is never
	// copied in user space.
	smallFrame = 4096
	readBuf    = 4096
)

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
type Conn struct {
	rw  io.ReadWriteCloser
	raw syscall.RawConn // set when rw is an *os.File: writev and shutdown(2)
	max int

	rmu     sync.Mutex
	rbuf    []byte
	r, w    int   // unread bytes are rbuf[r:w]
	rerr    error // sticky: once Recv failed it fails the same way
	riovs   [2][]byte
	ioN     int
	rErr    error
	readvFn func(uintptr) bool

	wmu      sync.Mutex
	wbuf     []byte
	werr     error
	hdr      [headerLen]byte
	iovs     [2][]byte
	iov      [][]byte // what is left of iovs to write
	ioErr    error
	writevFn func(uintptr) bool

	closed     atomic.Bool
	peerExited atomic.Bool // closed by Process.Wait: Recv says io.EOF
	closeOnce  sync.Once
	closeErr   error
}

// NewConn returns a Conn that frames messages over rw, accepting frames of at
// most max bytes (DefaultMaxFrame if max is 0). The Conn owns rw: Close closes
// it. This is the seam for other transports: a net.Conn to another machine
// works as well as the socketpair that Start uses.
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
	if f, ok := rw.(*os.File); ok {
		if raw, err := f.SyscallConn(); err == nil {
			c.raw = raw
			c.writevFn = c.writevOnce
			c.readvFn = c.readvOnce
		}
	}
	return c
}

// MaxFrame returns the largest message this Conn sends or accepts.
func (c *Conn) MaxFrame() int { return c.max }

// Send writes msg as one frame. It blocks until the whole frame has been
// handed to the kernel (or the stream), not until the peer reads it.
//
// A message longer than MaxFrame is refused with an error wrapping
// ErrFrameTooLarge and nothing is written; the connection stays usable. After
// Close, Send returns ErrClosed. If the peer has gone, Send returns the write
// error (such as EPIPE); it never raises SIGPIPE.
func (c *Conn) Send(msg []byte) error {
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
	var err error
	if n := headerLen + len(msg); n <= smallFrame || c.raw == nil {
		if cap(c.wbuf) < n {
			c.wbuf = make([]byte, n, max(n, smallFrame))
		}
		b := c.wbuf[:n]
		binary.BigEndian.PutUint32(b, uint32(len(msg)))
		copy(b[headerLen:], msg)
		_, err = c.rw.Write(b)
		if cap(c.wbuf) > smallFrame {
			c.wbuf = nil // don't keep a large buffer for a generic stream
		}
	} else {
		err = c.writev(msg)
	}
	if err != nil {
		if c.closed.Load() {
			return ErrClosed
		}
		c.werr = fmt.Errorf("proc: send: %w", err)
		return c.werr
	}
	return nil
}

// writev writes the header and msg with writev(2), resuming after short
// writes. Its state lives in the Conn (under wmu), and writevFn is bound once
// in NewConn, so a large Send allocates nothing.
func (c *Conn) writev(msg []byte) error {
	binary.BigEndian.PutUint32(c.hdr[:], uint32(len(msg)))
	c.iovs = [2][]byte{c.hdr[:], msg}
	c.iov = c.iovs[:]
	c.ioErr = nil
	err := c.raw.Write(c.writevFn)
	c.iovs[1] = nil // don't keep the caller's message alive
	if err != nil {
		return err
	}
	return c.ioErr
}

func (c *Conn) writevOnce(fd uintptr) bool {
	for len(c.iov) > 0 {
		n, err := unix.Writev(int(fd), c.iov)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return false // only for a non-blocking descriptor: wait and retry
		}
		if err != nil {
			c.ioErr = err
			return true
		}
		for n > 0 && len(c.iov) > 0 {
			if n >= len(c.iov[0]) {
				n -= len(c.iov[0])
				c.iov = c.iov[1:]
			} else {
				c.iov[0] = c.iov[0][n:]
				n = 0
			}
		}
	}
	return true
}

// Recv reads the next frame and returns its payload in a new slice that the
// caller owns.
//
// At a clean end of stream (the peer closed or exited between frames) Recv
// returns io.EOF itself. If the stream ends inside a frame — the peer died in
// the middle of a Send — the error wraps io.ErrUnexpectedEOF. A length prefix
// larger than MaxFrame is malformed input: Recv returns an error wrapping
// ErrFrameTooLarge, allocates nothing for it and closes the connection. Once
// Recv has failed, later calls return the same error. After Close, Recv
// returns ErrClosed; a Recv blocked in another goroutine returns ErrClosed too.
func (c *Conn) Recv() ([]byte, error) { return c.RecvBuf(nil) }

// RecvBuf is Recv into the caller's memory: the message is read into buf's
// array when it fits in cap(buf), and into a new slice only when it does not.
// On a hot path, receiving into one reused buffer saves an allocation, and
// for large messages the zeroing and garbage collection that go with it.
func (c *Conn) RecvBuf(buf []byte) ([]byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rerr != nil {
		return nil, c.rerr
	}
	msg, err := c.recv(buf)
	if err != nil {
		if c.closed.Load() {
			err = ErrClosed
			if c.peerExited.Load() {
				err = io.EOF
			}
		}
		c.rerr = err
		if errors.Is(err, ErrFrameTooLarge) {
			c.Close()
		}
	}
	return msg, err
}

func (c *Conn) recv(buf []byte) ([]byte, error) {
	if c.rbuf == nil {
		c.rbuf = make([]byte, readBuf)
	}
	if c.r == c.w && c.readvFn != nil && cap(buf) > readBuf {
		// Nothing buffered and a large buffer to fill: one readv(2) puts
		// the header in rbuf and the payload straight into buf, where two
		// reads would otherwise be needed.
		msg, err := c.recvv(buf[:cap(buf)])
		if msg != nil || err != nil {
			return msg, err
		}
	}
	for c.w-c.r < headerLen {
		if c.r > 0 {
			c.w = copy(c.rbuf, c.rbuf[c.r:c.w])
			c.r = 0
		}
		n, err := c.rw.Read(c.rbuf[c.w:])
		c.w += n
		if n > 0 {
			continue
		}
		if err == nil {
			continue // a Reader may return 0, nil; try again
		}
		return nil, c.headerErr(err)
	}
	n := binary.BigEndian.Uint32(c.rbuf[c.r:])
	c.r += headerLen
	if uint64(n) > uint64(c.max) {
		return nil, c.tooLarge(n)
	}
	var msg []byte
	if int(n) <= cap(buf) {
		msg = buf[:n]
	} else {
		msg = make([]byte, n)
	}
	k := copy(msg, c.rbuf[c.r:c.w])
	c.r += k
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	return c.readRest(msg, k)
}

// recvv is recv's one-readv(2) path. It returns (nil, nil) if fewer bytes than
// a header arrived: they are in rbuf, and recv goes on as usual.
func (c *Conn) recvv(buf []byte) ([]byte, error) {
	c.riovs = [2][]byte{c.rbuf[:headerLen], buf}
	c.ioN, c.rErr = 0, nil
	if err := c.raw.Read(c.readvFn); err != nil {
		c.rErr = err
	}
	c.riovs[1] = nil
	got := c.ioN
	if got < headerLen {
		c.r, c.w = 0, got
		if got == 0 && c.rErr == nil {
			c.rErr = io.EOF // readv returns 0 only at the end of the stream
		}
		if c.rErr != nil {
			return nil, c.headerErr(c.rErr)
		}
		return nil, nil
	}
	n := binary.BigEndian.Uint32(c.rbuf)
	if uint64(n) > uint64(c.max) {
		return nil, c.tooLarge(n)
	}
	got -= headerLen // payload bytes, in buf
	var msg []byte
	if int(n) <= len(buf) {
		msg = buf[:n]
	} else {
		msg = make([]byte, n)
		copy(msg, buf[:got])
	}
	if got > int(n) {
		// The next frames' first bytes came too: keep them in rbuf.
		extra := buf[n:got]
		if len(extra) > len(c.rbuf) {
			c.rbuf = make([]byte, len(extra))
		}
		c.r, c.w = 0, copy(c.rbuf, extra)
		got = int(n)
	}
	return c.readRest(msg, got)
}

func (c *Conn) readvOnce(fd uintptr) bool {
	for {
		n, err := unix.Readv(int(fd), c.riovs[:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return false // only for a non-blocking descriptor: wait and retry
		}
		c.ioN, c.rErr = n, err
		if n < 0 {
			c.ioN = 0
		}
		return true
	}
}

// readRest reads the rest of msg, of which k bytes are already there.
func (c *Conn) readRest(msg []byte, k int) ([]byte, error) {
	for k < len(msg) {
		m, err := c.rw.Read(msg[k:])
		k += m
		if m > 0 || err == nil {
			continue
		}
		if isEOF(err) {
			return nil, fmt.Errorf("proc: recv: stream ended after %d of %d bytes of a frame: %w", k, len(msg), io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("proc: recv: %w", err)
	}
	return msg, nil
}

func (c *Conn) headerErr(err error) error {
	if !isEOF(err) {
		return fmt.Errorf("proc: recv: %w", err)
	}
	if c.w-c.r == 0 {
		return io.EOF
	}
	return fmt.Errorf("proc: recv: stream ended inside a frame header: %w", io.ErrUnexpectedEOF)
}

func (c *Conn) tooLarge(n uint32) error {
	return fmt.Errorf("%w: peer announced %d bytes, maximum %d", ErrFrameTooLarge, n, c.max)
}

// isEOF reports whether err ends the stream. ECONNRESET on a Unix socket means
// the peer closed while our earlier messages were still unread in its
// buffer: for the reader that is the end of the stream like any other.
func isEOF(err error) bool {
	return err == io.EOF || errors.Is(err, syscall.ECONNRESET)
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
	// close(2) would not wake a thread blocked in read(2) on the same
	// descriptor; shutdown(2) does, and tells the peer at once.
	if c.raw != nil {
		c.raw.Control(func(fd uintptr) { unix.Shutdown(int(fd), unix.SHUT_RDWR) })
	}
	c.closeErr = c.rw.Close()
}

// closeExited closes the Conn of a child that has exited: a Recv blocked on
// it, or called later, returns io.EOF — the end of that child's stream —
// rather than ErrClosed.
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
