package simnet

import (
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/weavert/weave/sched"
)

// PacketConn is a datagram socket of a host.
type PacketConn struct {
	net    *Net
	host   *Host
	addr   netip.AddrPort
	queue  []datagram
	ready  *sched.Notify
	closed bool
	rd     deadline
}

type datagram struct {
	src, dst *Host
	from, to netip.AddrPort
	data     []byte
}

// maxQueue is how many datagrams a socket holds unread before it drops
// what comes, as a full receive buffer does.
const maxQueue = 1024

// ListenPacket opens a datagram socket of h on address's port (0: any).
func (n *Net) ListenPacket(t *sched.Task, h *Host, address string) (*PacketConn, error) {
	addr, err := bindAddr(h, address, h.packets)
	if err != nil {
		return nil, err
	}
	pc := &PacketConn{net: n, host: h, addr: addr, ready: sched.NewNotify("read from udp " + addr.String())}
	pc.rd.init(t, pc.ready)
	h.packets[addr.Port()] = pc
	return pc, nil
}

// LocalAddr returns the socket's address.
func (pc *PacketConn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(pc.addr) }

// ReadFrom parks t until a datagram comes, and reads it into p.
func (pc *PacketConn) ReadFrom(t *sched.Task, p []byte) (int, netip.AddrPort, error) {
	for {
		switch {
		case pc.closed:
			return 0, netip.AddrPort{}, net.ErrClosed
		case len(pc.queue) > 0:
			d := pc.queue[0]
			pc.queue[0] = datagram{}
			pc.queue = pc.queue[1:]
			return copy(p, d.data), d.from, nil
		case pc.rd.expired:
			return 0, netip.AddrPort{}, os.ErrDeadlineExceeded
		}
		if err := pc.ready.Wait(t); err != nil {
			return 0, netip.AddrPort{}, err
		}
	}
}

// WriteTo sends p to addr. It never waits: a datagram the network loses is
// lost without a word, as with UDP.
func (pc *PacketConn) WriteTo(t *sched.Task, p []byte, addr netip.AddrPort) (int, error) {
	if pc.closed {
		return 0, net.ErrClosed
	}
	n := pc.net
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	dst := n.byAddr[addr.Addr()]
	if addr.Addr().IsLoopback() {
		dst = pc.host
	}
	if dst == nil {
		return len(p), nil // nobody there: lost
	}
	d := &datagram{src: pc.host, dst: dst, from: pc.addr, to: addr, data: append([]byte(nil), p...)}
	copies := 1
	switch r := n.rng.Float64(); {
	case r < n.cfg.Loss:
		n.logf("lost datagram %v -> %v", d.from, d.to)
		return len(p), nil
	case r < n.cfg.Loss+n.cfg.Duplicate:
		n.logf("duplicated datagram %v -> %v", d.from, d.to)
		copies = 2
	}
	for range copies {
		n.schedule(event{at: n.now() + n.latency(pc.host, dst), dg: d})
	}
	return len(p), nil
}

// arrive puts d in the queue of the socket it was sent to, if it is there.
func (d *datagram) arrive() {
	pc := d.dst.packets[d.to.Port()]
	if pc == nil || pc.closed || len(pc.queue) >= maxQueue {
		return
	}
	pc.queue = append(pc.queue, *d)
	pc.ready.Notify()
}

// Close closes the socket: tasks parked on it wake with net.ErrClosed.
func (pc *PacketConn) Close() error {
	if pc.closed {
		return net.ErrClosed
	}
	pc.closed = true
	pc.rd.timer.Stop()
	if pc.host.packets[pc.addr.Port()] == pc {
		delete(pc.host.packets, pc.addr.Port())
	}
	pc.queue = nil
	pc.ready.Notify()
	return nil
}

// SetReadDeadline sets the deadline of ReadFrom, a time by the clock of
// the socket's host.
func (pc *PacketConn) SetReadDeadline(when time.Time) error {
	if pc.closed {
		return net.ErrClosed
	}
	pc.rd.set(when, pc.host.now(), pc.ready)
	return nil
}
