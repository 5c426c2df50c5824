package socket

import (
	"net"
	"os"
	"time"

	"github.com/weavert/weave/internal/simnet"
	"github.com/weavert/weave/sched"
	"golang.org/x/sys/unix"
)

// Listener accepts stream connections: TCP or Unix.
type Listener struct {
	fd      *sched.FD
	sim     *simnet.Listener
	network string
	k       kind
	addr    net.Addr
	unlink  string // the Unix socket's path, removed at Close
}

// Listen announces on address ("host:port", ":port", or a path for "unix")
// on network: "tcp", "tcp4", "tcp6" or "unix". A host that is not an IP
// address is looked up; an empty host listens on every address, IPv6 and
// IPv4 at once for "tcp".
func Listen(t *sched.Task, network, address string) (*Listener, error) {
	k, err := parseNetwork("listen", network, true)
	if err != nil {
		return nil, err
	}
	if h := simnet.HostOf(t.Context()); h != nil {
		return simListen(t, h, network, k, address)
	}
	return eachEndpoint(t, network, k, address, func(ep endpoint) (*Listener, error) {
		b, err := bindTo(t, network, k, ep, true)
		if err != nil {
			return nil, err
		}
		return &Listener{fd: b.fd, network: network, k: k, addr: b.addr, unlink: b.unlink}, nil
	})
}

// eachEndpoint resolves address to listen on, and returns the first of
// open's results that is not an error, or the first error.
func eachEndpoint[T any](t *sched.Task, network string, k kind, address string, open func(endpoint) (T, error)) (T, error) {
	var zero T
	eps, err := resolve(t, "listen", network, k, address, true, time.Time{})
	if err != nil {
		return zero, err
	}
	var first error
	for _, ep := range eps {
		v, err := open(ep)
		if err == nil {
			return v, nil
		}
		if first == nil {
			first = err
		}
	}
	return zero, first
}

// bound is a socket bound to its address, and listening if it is a stream.
type bound struct {
	fd     *sched.FD
	addr   net.Addr // with the port the kernel chose for port 0
	unlink string   // the path of a Unix socket's file, for Close to remove
}

func bindTo(t *sched.Task, network string, k kind, ep endpoint, listen bool) (bound, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: network, Addr: ep.addr, Err: err}
	}
	fd, err := newSocket(k, ep.family)
	if err != nil {
		return bound{}, opErr(err)
	}
	if listen && !k.unix {
		// As package net does: a restarted server can bind at once.
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if err := unix.Bind(fd, ep.sa); err != nil {
		unix.Close(fd)
		return bound{}, opErr(os.NewSyscallError("bind", err))
	}
	b := bound{addr: ep.addr}
	if sa, err := unix.Getsockname(fd); err == nil {
		b.addr = toAddr(k, sa)
	}
	if name := b.addr.String(); k.unix && name != "" && name[0] != '@' {
		b.unlink = name
	}
	fail := func(err error) (bound, error) {
		unix.Close(fd)
		if b.unlink != "" {
			os.Remove(b.unlink)
		}
		return bound{}, opErr(err)
	}
	if listen {
		if err := unix.Listen(fd, backlog()); err != nil {
			return fail(os.NewSyscallError("listen", err))
		}
	}
	name := network + " " + b.addr.String()
	if listen {
		name = network + " listen " + b.addr.String()
	}
	if b.fd, err = sched.NewFD(t, fd, name); err != nil {
		return fail(err)
	}
	return b, nil
}

// newSocket opens a non-blocking socket of k's type in family. An IPv6
// socket takes IPv4 too unless the network says IPv6 only.
func newSocket(k kind, family int) (int, error) {
	fd, err := unix.Socket(family, k.typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if family == unix.AF_INET6 {
		v6only := 0
		if k.family == unix.AF_INET6 {
			v6only = 1
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only)
	}
	return fd, nil
}

// backlog is the kernel's limit on pending connections, as package net
// reads it.
func backlog() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		return unix.SOMAXCONN
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	if n == 0 {
		return unix.SOMAXCONN
	}
	return min(n, 1<<16-1)
}

// Accept parks t until a connection comes, and returns it.
func (l *Listener) Accept(t *sched.Task) (*Conn, error) {
	if l.sim != nil {
		c, err := l.sim.Accept(t)
		if err != nil {
			return nil, &net.OpError{Op: "accept", Net: l.network, Addr: l.addr, Err: err}
		}
		return simConn(l.network, c), nil
	}
	var nfd int
	var sa unix.Sockaddr
	var aerr error
	err := l.fd.RawRead(t, func(fd int) bool {
		for {
			nfd, sa, aerr = unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			switch aerr {
			case unix.EINTR, unix.ECONNABORTED:
				continue // the next one, as package net does
			case unix.EAGAIN:
				return false
			}
			return true
		}
	})
	if err == nil && aerr != nil {
		err = os.NewSyscallError("accept", aerr)
	}
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: l.network, Addr: l.addr, Err: err}
	}
	var raddr net.Addr
	if sa != nil {
		raddr = toAddr(l.k, sa)
	}
	c, err := newConn(t, nfd, l.network, l.k, raddr, false)
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: l.network, Addr: l.addr, Err: err}
	}
	return c, nil
}

// Addr returns the address listened on, with the port the kernel chose if
// port 0 was asked for.
func (l *Listener) Addr() net.Addr { return l.addr }

// Close stops listening: a task parked in Accept wakes with an error
// matching net.ErrClosed. A Unix socket's file is removed.
func (l *Listener) Close() error {
	var err error
	if l.sim != nil {
		err = l.sim.Close()
	} else {
		err = l.fd.Close()
	}
	if l.unlink != "" && err == nil {
		os.Remove(l.unlink)
	}
	if err != nil {
		return &net.OpError{Op: "close", Net: l.network, Addr: l.addr, Err: err}
	}
	return nil
}

// SetDeadline sets the time after which Accept fails with an error matching
// os.ErrDeadlineExceeded; the zero time means none.
func (l *Listener) SetDeadline(when time.Time) error {
	if l.sim != nil {
		return l.sim.SetDeadline(when)
	}
	return l.fd.SetReadDeadline(when)
}

// FD returns the Listener's descriptor; nil in a simulated world.
func (l *Listener) FD() *sched.FD { return l.fd }

// Bind returns a net.Listener whose Accept parks t and returns Conns bound
// to t (see Conn.Bind), for code that takes a net.Listener.
func (l *Listener) Bind(t *sched.Task) net.Listener { return &boundListener{l, t} }

type boundListener struct {
	l *Listener
	t *sched.Task
}

func (b *boundListener) Accept() (net.Conn, error) {
	c, err := b.l.Accept(b.t)
	if err != nil {
		return nil, err
	}
	return c.Bind(b.t), nil
}

func (b *boundListener) Close() error   { return b.l.Close() }
func (b *boundListener) Addr() net.Addr { return b.l.addr }
