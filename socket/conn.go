package socket

import (
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/weavert/weave/internal/simnet"
	"github.com/weavert/weave/sched"
	"golang.org/x/sys/unix"
)

// Conn is a stream connection: TCP, a Unix socket, or an adopted pollable
// descriptor. Its Read and Write park the calling task, never its thread.
// One task at a time should read it and one write it, as with a net.Conn;
// Close and the deadlines may be called by any task of its run at any time.
type Conn struct {
	fd           *sched.FD
	sim          *simnet.Conn // in a simulated world, instead of fd
	network      string
	laddr, raddr net.Addr
}

// newConn makes a Conn of fd, a socket connected to raddr (nil: ask the
// kernel), or, if dialing, about to be. Its name for reports says its
// peer, and its local address once known.
func newConn(t *sched.Task, fd int, network string, k kind, raddr net.Addr, dialing bool) (*Conn, error) {
	var laddr net.Addr
	if sa, err := unix.Getsockname(fd); err == nil {
		laddr = toAddr(k, sa)
	}
	if raddr == nil {
		if sa, err := unix.Getpeername(fd); err == nil {
			raddr = toAddr(k, sa)
		}
	}
	if network[:3] == "tcp" {
		// As package net does: small writes go out at once.
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	name := network + " peer " + addrString(raddr)
	if !dialing && laddr != nil {
		name = network + " " + addrString(laddr) + " peer " + addrString(raddr)
	}
	f, err := sched.NewFD(t, fd, name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &Conn{fd: f, network: network, laddr: laddr, raddr: raddr}, nil
}

// Read reads into p, parking t until data comes. At the end of the stream
// it returns io.EOF; data the peer sent before closing comes first.
func (c *Conn) Read(t *sched.Task, p []byte) (int, error) {
	var n int
	var err error
	if c.sim != nil {
		n, err = c.sim.Read(t, p)
	} else {
		n, err = c.fd.Read(t, p)
	}
	if err != nil && err != io.EOF {
		err = c.opError("read", err)
	}
	return n, err
}

// Write writes all of p, parking t whenever the socket's buffer is full. It
// returns how much it wrote and, if that is not all, why.
func (c *Conn) Write(t *sched.Task, p []byte) (int, error) {
	var n int
	var err error
	if c.sim != nil {
		n, err = c.sim.Write(t, p)
	} else {
		n, err = c.fd.Write(t, p)
	}
	if err != nil {
		err = c.opError("write", err)
	}
	return n, err
}

// Close closes the connection. Tasks parked on it wake with an error
// matching net.ErrClosed.
func (c *Conn) Close() error {
	if c.sim != nil {
		return c.opErrorOrNil("close", c.sim.Close())
	}
	if err := c.fd.Close(); err != nil {
		return c.opError("close", err)
	}
	return nil
}

// CloseWrite shuts down the sending side: the peer reads io.EOF once it has
// read everything sent before. Reading goes on.
func (c *Conn) CloseWrite() error {
	if c.sim != nil {
		return c.opErrorOrNil("close", c.sim.CloseWrite())
	}
	return c.shutdown("close", unix.SHUT_WR)
}

// CloseRead shuts down the receiving side. In a simulated world it does
// nothing.
func (c *Conn) CloseRead() error {
	if c.sim != nil {
		return nil
	}
	return c.shutdown("close", unix.SHUT_RD)
}

func (c *Conn) shutdown(op string, how int) error {
	var serr error
	if err := c.fd.Control(func(fd int) { serr = unix.Shutdown(fd, how) }); err != nil {
		return c.opError(op, err)
	}
	if serr != nil {
		return c.opError(op, os.NewSyscallError("shutdown", serr))
	}
	return nil
}

// SetNoDelay says whether TCP sends small writes at once (true, the default,
// as in package net) or gathers them (Nagle's algorithm).
func (c *Conn) SetNoDelay(noDelay bool) error {
	v := 0
	if noDelay {
		v = 1
	}
	return c.setsockopt("set", unix.IPPROTO_TCP, unix.TCP_NODELAY, v)
}

// SetKeepAlive turns TCP keep-alive probes on or off.
func (c *Conn) SetKeepAlive(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return c.setsockopt("set", unix.SOL_SOCKET, unix.SO_KEEPALIVE, v)
}

func (c *Conn) setsockopt(op string, level, opt, v int) error {
	if c.sim != nil {
		return nil // a simulated stream has no options
	}
	var serr error
	if err := c.fd.Control(func(fd int) { serr = unix.SetsockoptInt(fd, level, opt, v) }); err != nil {
		return c.opError(op, err)
	}
	if serr != nil {
		return c.opError(op, os.NewSyscallError("setsockopt", serr))
	}
	return nil
}

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets the read and write deadlines, as net.Conn's does: calls
// waiting now and later ones fail with an error matching
// os.ErrDeadlineExceeded once it passes; the zero time means none. The
// deadlines run on the scheduler's timers.
func (c *Conn) SetDeadline(when time.Time) error {
	return errors.Join(c.SetReadDeadline(when), c.SetWriteDeadline(when))
}

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(when time.Time) error {
	if c.sim != nil {
		return c.opErrorOrNil("set", c.sim.SetReadDeadline(when))
	}
	return c.fd.SetReadDeadline(when)
}

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(when time.Time) error {
	if c.sim != nil {
		return c.opErrorOrNil("set", c.sim.SetWriteDeadline(when))
	}
	return c.fd.SetWriteDeadline(when)
}

// FD returns the Conn's descriptor, for what Conn does not offer; nil in a
// simulated world.
func (c *Conn) FD() *sched.FD { return c.fd }

// opError wraps err as package net does, so that errors.Is finds
// net.ErrClosed, os.ErrDeadlineExceeded, syscall errors and a context's
// error through it.
func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.laddr, Addr: c.raddr, Err: err}
}

func (c *Conn) opErrorOrNil(op string, err error) error {
	if err == nil {
		return nil
	}
	return c.opError(op, err)
}

// Bind returns a net.Conn whose methods park t: bufio, encoding/json,
// encoding/binary and crypto/tls work over it inside t unchanged. Only t may
// call its Read and Write; Close and the deadlines, any task.
func (c *Conn) Bind(t *sched.Task) net.Conn { return &boundConn{c, t} }

type boundConn struct {
	c *Conn
	t *sched.Task
}

func (b *boundConn) Read(p []byte) (int, error)         { return b.c.Read(b.t, p) }
func (b *boundConn) Write(p []byte) (int, error)        { return b.c.Write(b.t, p) }
func (b *boundConn) Close() error                       { return b.c.Close() }
func (b *boundConn) LocalAddr() net.Addr                { return b.c.laddr }
func (b *boundConn) RemoteAddr() net.Addr               { return b.c.raddr }
func (b *boundConn) SetDeadline(when time.Time) error   { return b.c.SetDeadline(when) }
func (b *boundConn) SetReadDeadline(t time.Time) error  { return b.c.SetReadDeadline(t) }
func (b *boundConn) SetWriteDeadline(t time.Time) error { return b.c.SetWriteDeadline(t) }

// CloseWrite lets code that half-closes a *net.TCPConn through an interface
// do it here too.
func (b *boundConn) CloseWrite() error { return b.c.CloseWrite() }

// errRegular is what adopting a regular file gives.
var errRegular = errors.New("a regular file cannot be polled: read and write it through sched.Await")
