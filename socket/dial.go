package socket

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/weavert/weave/internal/simnet"
	"github.com/weavert/weave/sched"
	"golang.org/x/sys/unix"
)

// Dialer holds options for connecting. The zero Dialer has none: Dial uses
// it.
type Dialer struct {
	// Timeout bounds the whole Dial, the name lookup included, by the
	// scheduler's clock; 0 means none. The task's context bounds it too.
	Timeout time.Duration
	// LocalAddr is the address to connect from; nil lets the kernel choose.
	LocalAddr net.Addr
}

// Dial connects to address on network ("tcp", "tcp4", "tcp6" or "unix"),
// parking t until the connection is made, refused, or t's context ends.
func Dial(t *sched.Task, network, address string) (*Conn, error) {
	var d Dialer
	return d.Dial(t, network, address)
}

// Dial connects to address on network, as the package's Dial does. A host
// with several addresses is tried address by address until one connects.
func (d *Dialer) Dial(t *sched.Task, network, address string) (*Conn, error) {
	k, err := parseNetwork("dial", network, true)
	if err != nil {
		return nil, err
	}
	var deadline time.Time
	if d.Timeout > 0 {
		deadline = t.Now().Add(d.Timeout)
	}
	if h := simnet.HostOf(t.Context()); h != nil {
		return simDial(t, h, network, k, address, deadline)
	}
	eps, err := resolve(t, "dial", network, k, address, false, deadline)
	if err != nil {
		return nil, err
	}
	var first error
	for _, ep := range eps {
		c, err := d.dialOne(t, network, k, ep, deadline)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if errors.Is(err, os.ErrDeadlineExceeded) || t.Context().Err() != nil {
			break
		}
	}
	return nil, first
}

func (d *Dialer) dialOne(t *sched.Task, network string, k kind, ep endpoint, deadline time.Time) (*Conn, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Source: d.LocalAddr, Addr: ep.addr, Err: err}
	}
	fd, err := newSocket(k, ep.family)
	if err != nil {
		return nil, opErr(err)
	}
	if d.LocalAddr != nil {
		sa, err := toSockaddr(k, ep.family, d.LocalAddr)
		if err == nil {
			err = os.NewSyscallError("bind", unix.Bind(fd, sa))
		}
		if err != nil {
			unix.Close(fd)
			return nil, opErr(err)
		}
	}
	c, err := newConn(t, fd, network, k, ep.addr, true)
	if err != nil {
		return nil, opErr(err)
	}
	if !deadline.IsZero() {
		c.fd.SetWriteDeadline(deadline)
	}
	if err := c.connect(t, ep.sa); err != nil {
		c.fd.Close()
		return nil, opErr(err)
	}
	if !deadline.IsZero() {
		c.fd.SetWriteDeadline(time.Time{})
	}
	if sa, err := unix.Getsockname(c.fd.Fd()); err == nil {
		c.laddr = toAddr(k, sa) // bound by the connect
	}
	return c, nil
}

// connect connects c's socket to sa without blocking the thread: it parks
// t until the socket is writable, then asks the kernel how the connect
// ended, as package net does.
func (c *Conn) connect(t *sched.Task, sa unix.Sockaddr) error {
	var cerr error
	if err := c.fd.Control(func(fd int) { cerr = unix.Connect(fd, sa) }); err != nil {
		return err
	}
	switch cerr {
	case nil, unix.EISCONN:
		return nil
	case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
	default:
		return os.NewSyscallError("connect", cerr)
	}
	err := c.fd.RawWrite(t, func(fd int) bool {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			cerr = err
			return true
		}
		switch e := unix.Errno(v); e {
		case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
			return false
		case 0, unix.EISCONN:
			// Writable with no error may still be early: the peer's
			// name says whether the connection is made.
			if _, err := unix.Getpeername(fd); err == nil {
				cerr = nil
				return true
			}
			return false
		default:
			cerr = e
			return true
		}
	})
	if err != nil {
		return err
	}
	if cerr != nil {
		return os.NewSyscallError("connect", cerr)
	}
	return nil
}
