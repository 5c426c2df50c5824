package socket

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/weavert/weave/internal/simnet"
	"github.com/weavert/weave/sched"
	"golang.org/x/sys/unix"
)

// PacketConn is a datagram socket: UDP, or a Unix datagram socket.
type PacketConn struct {
	fd      *sched.FD
	sim     *simnet.PacketConn
	network string
	k       kind
	family  int
	laddr   net.Addr
	unlink  string
}

// ListenPacket opens a datagram socket bound to address on network: "udp",
// "udp4", "udp6" or "unixgram". Port 0 lets the kernel choose one.
func ListenPacket(t *sched.Task, network, address string) (*PacketConn, error) {
	k, err := parseNetwork("listen", network, false)
	if err != nil {
		return nil, err
	}
	if h := simnet.HostOf(t.Context()); h != nil {
		return simListenPacket(t, h, network, k, address)
	}
	return eachEndpoint(t, network, k, address, func(ep endpoint) (*PacketConn, error) {
		b, err := bindTo(t, network, k, ep, false)
		if err != nil {
			return nil, err
		}
		return &PacketConn{fd: b.fd, network: network, k: k, family: ep.family, laddr: b.addr, unlink: b.unlink}, nil
	})
}

// ReadFrom parks t until a datagram comes, reads it into p, and returns its
// length and sender. A datagram longer than p is cut to fit.
func (c *PacketConn) ReadFrom(t *sched.Task, p []byte) (int, net.Addr, error) {
	if c.sim != nil {
		n, from, err := c.ReadFromAddrPort(t, p)
		if err != nil {
			return n, nil, err
		}
		return n, net.UDPAddrFromAddrPort(from), nil
	}
	n, sa, err := c.recvfrom(t, p)
	if err != nil {
		return n, nil, err
	}
	var from net.Addr
	if sa != nil {
		from = toAddr(c.k, sa)
	}
	return n, from, nil
}

// ReadFromAddrPort is ReadFrom for UDP with the sender as a value.
func (c *PacketConn) ReadFromAddrPort(t *sched.Task, p []byte) (int, netip.AddrPort, error) {
	if c.sim != nil {
		n, from, err := c.sim.ReadFrom(t, p)
		if err != nil {
			return n, from, c.opError("read", nil, err)
		}
		return n, from, nil
	}
	n, sa, err := c.recvfrom(t, p)
	if err != nil {
		return n, netip.AddrPort{}, err
	}
	var from netip.AddrPort
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		from = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		from = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return n, from, nil
}

func (c *PacketConn) recvfrom(t *sched.Task, p []byte) (int, unix.Sockaddr, error) {
	var n int
	var sa unix.Sockaddr
	var rerr error
	err := c.fd.RawRead(t, func(fd int) bool {
		for {
			n, sa, rerr = unix.Recvfrom(fd, p, 0)
			switch rerr {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			return true
		}
	})
	if err == nil && rerr != nil {
		err = os.NewSyscallError("recvfrom", rerr)
	}
	if err != nil {
		return 0, nil, c.opError("read", nil, err)
	}
	return n, sa, nil
}

// WriteTo sends p as one datagram to addr, parking t while the socket's
// buffer is full.
func (c *PacketConn) WriteTo(t *sched.Task, p []byte, addr net.Addr) (int, error) {
	if c.sim != nil {
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			return 0, c.opError("write", addr, &net.AddrError{Err: "not a UDP address", Addr: addrString(addr)})
		}
		return c.WriteToAddrPort(t, p, ua.AddrPort())
	}
	sa, err := toSockaddr(c.k, c.family, addr)
	if err != nil {
		return 0, c.opError("write", addr, err)
	}
	return c.sendto(t, p, sa, addr)
}

// WriteToAddrPort is WriteTo for UDP with the address as a value.
func (c *PacketConn) WriteToAddrPort(t *sched.Task, p []byte, addr netip.AddrPort) (int, error) {
	if c.sim != nil {
		n, err := c.sim.WriteTo(t, p, addr)
		if err != nil {
			return n, c.opError("write", net.UDPAddrFromAddrPort(addr), err)
		}
		return n, nil
	}
	sa, err := addrPortSockaddr(c.family, addr)
	if err != nil {
		return 0, c.opError("write", net.UDPAddrFromAddrPort(addr), err)
	}
	return c.sendto(t, p, sa, nil)
}

func (c *PacketConn) sendto(t *sched.Task, p []byte, sa unix.Sockaddr, addr net.Addr) (int, error) {
	var serr error
	err := c.fd.RawWrite(t, func(fd int) bool {
		for {
			serr = unix.Sendto(fd, p, 0, sa)
			switch serr {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			return true
		}
	})
	if err == nil && serr != nil {
		err = os.NewSyscallError("sendto", serr)
	}
	if err != nil {
		if addr == nil {
			addr = toAddr(c.k, sa)
		}
		return 0, c.opError("write", addr, err)
	}
	return len(p), nil
}

func (c *PacketConn) opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.laddr, Addr: addr, Err: err}
}

// Close closes the socket: tasks parked on it wake with an error matching
// net.ErrClosed. A Unix socket's file is removed.
func (c *PacketConn) Close() error {
	if c.sim != nil {
		if err := c.sim.Close(); err != nil {
			return c.opError("close", nil, err)
		}
		return nil
	}
	if err := c.fd.Close(); err != nil {
		return c.opError("close", nil, err)
	}
	if c.unlink != "" {
		os.Remove(c.unlink)
	}
	return nil
}

// LocalAddr returns the address the socket is bound to.
func (c *PacketConn) LocalAddr() net.Addr { return c.laddr }

// SetDeadline sets the read and write deadlines (see Conn.SetDeadline).
func (c *PacketConn) SetDeadline(when time.Time) error {
	return errors.Join(c.SetReadDeadline(when), c.SetWriteDeadline(when))
}

// SetReadDeadline sets the read deadline.
func (c *PacketConn) SetReadDeadline(when time.Time) error {
	if c.sim != nil {
		return c.sim.SetReadDeadline(when)
	}
	return c.fd.SetReadDeadline(when)
}

// SetWriteDeadline sets the write deadline. A simulated datagram socket
// never waits to write: there it does nothing.
func (c *PacketConn) SetWriteDeadline(when time.Time) error {
	if c.sim != nil {
		return nil
	}
	return c.fd.SetWriteDeadline(when)
}

// FD returns the socket's descriptor; nil in a simulated world.
func (c *PacketConn) FD() *sched.FD { return c.fd }

// Bind returns a net.PacketConn whose methods park t (see Conn.Bind).
func (c *PacketConn) Bind(t *sched.Task) net.PacketConn { return &boundPacketConn{c, t} }

type boundPacketConn struct {
	c *PacketConn
	t *sched.Task
}

func (b *boundPacketConn) ReadFrom(p []byte) (int, net.Addr, error) { return b.c.ReadFrom(b.t, p) }
func (b *boundPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	return b.c.WriteTo(b.t, p, addr)
}
func (b *boundPacketConn) Close() error                       { return b.c.Close() }
func (b *boundPacketConn) LocalAddr() net.Addr                { return b.c.laddr }
func (b *boundPacketConn) SetDeadline(t time.Time) error      { return b.c.SetDeadline(t) }
func (b *boundPacketConn) SetReadDeadline(t time.Time) error  { return b.c.SetReadDeadline(t) }
func (b *boundPacketConn) SetWriteDeadline(t time.Time) error { return b.c.SetWriteDeadline(t) }
