package socket

import (
	"net"
	"time"

	"github.com/weavert/weave/internal/simnet"
	"github.com/weavert/weave/sched"
)

// The seam of a simulated world (package simtest): a task of a simulated
// host finds its host in its context, and its sockets go to the world's
// network instead of the kernel, with the same API and the same errors.

func simListen(t *sched.Task, h *simnet.Host, network string, k kind, address string) (*Listener, error) {
	if k.unix {
		return nil, simUnsupported("listen", network, address)
	}
	l, err := h.Net().Listen(t, h, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	return &Listener{sim: l, network: network, k: k, addr: l.Addr()}, nil
}

func simDial(t *sched.Task, h *simnet.Host, network string, k kind, address string, deadline time.Time) (*Conn, error) {
	if k.unix {
		return nil, simUnsupported("dial", network, address)
	}
	c, err := h.Net().Dial(t, h, address, deadline)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	return simConn(network, c), nil
}

func simConn(network string, c *simnet.Conn) *Conn {
	return &Conn{sim: c, network: network, laddr: c.LocalAddr(), raddr: c.RemoteAddr()}
}

func simListenPacket(t *sched.Task, h *simnet.Host, network string, k kind, address string) (*PacketConn, error) {
	if k.unix {
		return nil, simUnsupported("listen", network, address)
	}
	pc, err := h.Net().ListenPacket(t, h, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	return &PacketConn{sim: pc, network: network, k: k, laddr: pc.LocalAddr()}, nil
}

func simUnsupported(op, network, address string) error {
	return &net.OpError{Op: op, Net: network, Err: &net.AddrError{Err: "no Unix sockets in a simulated world", Addr: address}}
}
