package proc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// The framing of a Conn, apart from how it waits (wait.go).
//
// recvOnce and sendOnce each make as much progress as the stream allows and
// keep their state in the Conn, so that a call that stops early — a
// non-blocking descriptor with nothing to read or no room to write — is
// taken up by the next call where it stopped. The blocking methods of Conn
// call them in a loop; a poller could call them when the descriptor is ready,
// with no goroutine waiting.

const (
	headerLen = 4
	// A frame whose header and payload fit in smallFrame is copied into one
	// buffer and written with one write(2); larger ones are written with
	// writev(2) straight from the caller's slice, so a 64 KiB message is never
	// copied in user space.
	smallFrame = 4096
	readBuf    = 4096
	// growStart is the most that a frame's header makes the receiver
	// allocate before its payload arrives. The room then doubles as bytes
	// come, up to the announced length: a peer costs at most twice what it
	// sent, whatever it announced (up to 2 GiB with the largest MaxFrame).
	growStart = 64 << 10
)

// errWouldBlock is returned by recvOnce and sendOnce when a non-blocking
// descriptor is not ready; the Conn keeps what was done so far.
var errWouldBlock = errors.New("proc: would block")

// reader is the receiving half of a Conn's framing: the bytes that arrived
// beyond the frame being read, and that frame. Only the holder of rmu uses
// it.
type reader struct {
	buf  []byte // readBuf bytes, more after one readv brought several frames
	r, w int    // unread bytes are buf[r:w]

	// The frame being read, if inFrame: its announced length n, where its
	// payload goes (dst, whose length is the room there is so far; the
	// caller's buffer if user), and how much of it has arrived.
	inFrame bool
	user    bool
	n       int
	dst     []byte
	got     int

	// drained is set when a read returned less than it asked for, which
	// for a descriptor means it emptied what there was: the next read
	// would only say EAGAIN, so it waits for the descriptor first.
	drained bool
	// edge is set while a RawIO drives the reads (RecvVia). Its poller
	// is edge-triggered, and then drained is never set: the end of the
	// stream that came with the last bytes, before the edge that announced
	// them was taken, brings no edge of its own, and a wait in its place
	// would wait for good.
	edge bool

	iov [2][]byte
	// The arguments and results of recvFD, which RawConn.Read calls, and
	// of recvVia, which a RawIO calls.
	arg, msg []byte
	err      error
	fn       func(uintptr) bool
	viaFn    func(int) bool
}

// begin starts reading a frame of n bytes, of which arrived are at hand, into
// buf's array if it fits, or into a new slice that grows as the payload
// comes.
func (in *reader) begin(n int, buf []byte, arrived int) {
	in.inFrame, in.n, in.got = true, n, 0
	if n <= cap(buf) {
		in.dst, in.user = buf[:n], true
		return
	}
	in.dst, in.user = make([]byte, min(n, max(growStart, arrived))), false
}

// detach copies the part of a frame that arrived into the caller's buffer,
// if so, to memory of the Conn's: a call that returns before the frame is
// whole must leave the caller free to reuse its buffer.
func (in *reader) detach() {
	if !in.inFrame || !in.user {
		return
	}
	own := make([]byte, min(in.n, max(growStart, in.got)))
	copy(own, in.dst[:in.got])
	in.dst, in.user = own, false
}

// resume moves a frame that an earlier call began into buf, if it fits.
func (in *reader) resume(buf []byte) {
	if !in.inFrame || in.user || in.n > cap(buf) {
		return
	}
	copy(buf[:in.n], in.dst[:in.got])
	in.dst, in.user = buf[:in.n], true
}

// grow doubles the room for the frame's payload, up to its length.
func (in *reader) grow() {
	next := make([]byte, min(in.n, 2*len(in.dst)))
	copy(next, in.dst[:in.got])
	in.dst = next
}

// take ends the frame that has fully arrived and returns its payload.
func (in *reader) take() []byte {
	msg := in.dst[:in.n]
	in.inFrame, in.user, in.dst, in.n, in.got = false, false, nil, 0, 0
	return msg
}

// recvOnce reads the next frame into buf's array if it fits in cap(buf), or
// into a new slice. fd is the descriptor to read, or -1 for the Conn's
// stream. Calls that take up a frame where an earlier one stopped must pass
// the same buf.
func (c *Conn) recvOnce(fd int, buf []byte) ([]byte, error) {
	in := &c.in
	for {
		if in.inFrame {
			if in.got == in.n {
				return in.take(), nil
			}
			var k int
			var err error
			if in.got < len(in.dst) {
				k, err = c.read(fd, in.dst[in.got:])
				in.got += k
			} else {
				// No room left: read into the read buffer (empty while a
				// frame is under way), and grow only for bytes that came.
				k, err = c.read(fd, in.buf)
				if k > 0 {
					in.grow()
					m := copy(in.dst[in.got:], in.buf[:k])
					in.got += m
					in.r, in.w = m, k // the next frames' first bytes, if any
				}
			}
			if err != nil {
				return nil, c.payloadErr(err)
			}
			continue
		}
		if in.w-in.r >= headerLen {
			n := binary.BigEndian.Uint32(in.buf[in.r:])
			if uint64(n) > uint64(c.max) {
				return nil, c.tooLarge(n)
			}
			in.r += headerLen
			in.begin(int(n), buf, in.w-in.r)
			in.got = copy(in.dst, in.buf[in.r:in.w])
			in.r += in.got
			continue
		}
		// Too few bytes for a header.
		if in.r > 0 {
			in.w = copy(in.buf, in.buf[in.r:in.w])
			in.r = 0
		}
		if in.w == 0 && fd >= 0 && cap(buf) > readBuf {
			if err := c.recvv(fd, buf); err != nil {
				return nil, err
			}
			continue
		}
		k, err := c.read(fd, in.buf[in.w:])
		in.w += k
		if err != nil {
			return nil, c.headerErr(err)
		}
	}
}

// recvv reads with one readv(2) a header into the read buffer and what
// follows straight into buf: with nothing buffered and a large buffer to
// fill, one system call where two would be needed.
func (c *Conn) recvv(fd int, buf []byte) error {
	in := &c.in
	in.iov = [2][]byte{in.buf[:headerLen], buf[:cap(buf)]}
	k, err := c.readv(fd, in.iov[:])
	in.iov[1] = nil
	if k < headerLen {
		in.w = k
		if err != nil {
			return c.headerErr(err)
		}
		return nil
	}
	n := binary.BigEndian.Uint32(in.buf)
	if uint64(n) > uint64(c.max) {
		return c.tooLarge(n)
	}
	in.r, in.w = 0, 0
	p := k - headerLen // bytes after the header, in buf
	in.begin(int(n), buf, p)
	if p > int(n) {
		// The next frames' first bytes came too: keep them.
		extra := buf[n:p]
		if len(extra) > len(in.buf) {
			in.buf = make([]byte, len(extra))
		}
		in.w = copy(in.buf, extra)
		p = int(n)
	}
	in.got = copy(in.dst, buf[:p]) // in place when dst is buf
	return nil
}

// read does one read into b, which is not empty: read(2) on fd, or the
// stream's Read if fd is -1. A descriptor's end of stream is io.EOF, and a
// non-blocking one with nothing to read is errWouldBlock.
func (c *Conn) read(fd int, b []byte) (int, error) {
	if fd < 0 {
		return c.rw.Read(b)
	}
	c.in.iov[0] = b
	n, err := c.readv(fd, c.in.iov[:1])
	c.in.iov[0] = nil
	return n, err
}

// readv is read with readv(2) into iov, for a descriptor. After a read that
// emptied the descriptor, it returns errWouldBlock without a system call:
// a message that answers one just sent is rarely there yet, and ppoll then
// read costs two system calls where read, ppoll and read cost three. So
// errWouldBlock means that the last read of the descriptor either said
// EAGAIN or took all there was, which ppoll, level-triggered, tells apart
// from the end of the stream. Under an edge-triggered poller (RecvVia) every
// read is a system call: see reader.edge.
func (c *Conn) readv(fd int, iov [][]byte) (int, error) {
	if c.in.drained {
		c.in.drained = false
		return 0, errWouldBlock
	}
	for {
		n, err, again := settle(unix.Readv(fd, iov))
		if again {
			continue
		}
		if n == 0 && err == nil {
			err = io.EOF
		}
		want := 0
		for _, b := range iov {
			want += len(b)
		}
		c.in.drained = err == nil && n < want && !c.in.edge
		return n, err
	}
}

// settle turns the result of a read or write system call into the framing's:
// again after EINTR, errWouldBlock for EAGAIN.
func settle(n int, err error) (int, error, bool) {
	switch {
	case err == unix.EINTR:
		return 0, nil, true
	case err == unix.EAGAIN:
		return 0, errWouldBlock, false
	case err != nil:
		return 0, err, false
	}
	return n, nil, false
}

func (c *Conn) headerErr(err error) error {
	switch {
	case err == errWouldBlock:
		return err
	case !isEOF(err):
		return fmt.Errorf("proc: recv: %w", err)
	case c.in.w-c.in.r == 0:
		return io.EOF
	}
	return fmt.Errorf("proc: recv: stream ended inside a frame header: %w", io.ErrUnexpectedEOF)
}

func (c *Conn) payloadErr(err error) error {
	switch {
	case err == errWouldBlock:
		return err
	case isEOF(err):
		return fmt.Errorf("proc: recv: stream ended after %d of %d bytes of a frame: %w", c.in.got, c.in.n, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("proc: recv: %w", err)
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

// writer is the sending half of a Conn's framing: the frame being sent. Only
// the holder of wmu uses it.
type writer struct {
	buf  []byte // small frames are copied here behind their header
	hdr  [headerLen]byte
	iovs [2][]byte
	iov  [][]byte // what is left of the frame to write
	n    int      // the frame's length, header included
	sent int      // how much of it has been written

	// The result of sendFD, which RawConn.Write calls, and of sendVia,
	// which a RawIO calls.
	err   error
	fn    func(uintptr) bool
	viaFn func(int) bool
}

// beginSend prepares msg's frame for sendOnce. Nothing is copied but a small
// frame.
func (c *Conn) beginSend(msg []byte) {
	out := &c.out
	out.n, out.sent = headerLen+len(msg), 0
	if out.n <= smallFrame {
		if out.buf == nil {
			out.buf = make([]byte, smallFrame)
		}
		b := out.buf[:out.n]
		binary.BigEndian.PutUint32(b, uint32(len(msg)))
		copy(b[headerLen:], msg)
		out.iovs = [2][]byte{b, nil}
		out.iov = out.iovs[:1]
		return
	}
	binary.BigEndian.PutUint32(out.hdr[:], uint32(len(msg)))
	out.iovs = [2][]byte{out.hdr[:], msg}
	out.iov = out.iovs[:]
}

// sendOnce writes what is left of the frame that beginSend prepared: with
// writev(2) on fd, or the stream's Write if fd is -1.
func (c *Conn) sendOnce(fd int) error {
	out := &c.out
	for len(out.iov) > 0 {
		k, err := c.writev(fd, out.iov)
		out.sent += k
		for k > 0 {
			if k >= len(out.iov[0]) {
				k -= len(out.iov[0])
				out.iov = out.iov[1:]
			} else {
				out.iov[0] = out.iov[0][k:]
				k = 0
			}
		}
		if err != nil {
			return err
		}
	}
	out.iovs[1] = nil // don't keep the caller's message alive
	return nil
}

// writev does one write of iov's first slices.
func (c *Conn) writev(fd int, iov [][]byte) (int, error) {
	if fd < 0 {
		return c.rw.Write(iov[0])
	}
	for {
		if n, err, again := settle(unix.Writev(fd, iov)); !again {
			return n, err
		}
	}
}
