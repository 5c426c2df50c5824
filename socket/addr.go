package socket

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/weavert/weave/sched"
	"golang.org/x/sys/unix"
)

// kind is what a network name means: its socket type and address families.
type kind struct {
	typ    int  // unix.SOCK_STREAM or unix.SOCK_DGRAM
	unix   bool // a Unix socket: the address is a path
	family int  // unix.AF_INET or AF_INET6 if the network name fixes it, else 0
}

func parseNetwork(op, network string, stream bool) (kind, error) {
	k := kind{typ: unix.SOCK_STREAM}
	if !stream {
		k.typ = unix.SOCK_DGRAM
	}
	switch network {
	case "tcp", "udp":
	case "tcp4", "udp4":
		k.family = unix.AF_INET
	case "tcp6", "udp6":
		k.family = unix.AF_INET6
	case "unix", "unixgram":
		k.unix = true
	default:
		return k, &net.OpError{Op: op, Net: network, Err: net.UnknownNetworkError(network)}
	}
	if want := network[:3] == "tcp" || network == "unix"; want != stream {
		return k, &net.OpError{Op: op, Net: network, Err: net.UnknownNetworkError(network)}
	}
	return k, nil
}

// endpoint is one address to bind or connect to.
type endpoint struct {
	family int
	sa     unix.Sockaddr
	addr   net.Addr
}

// resolve turns address into the endpoints to try, in order. A host that is
// not an IP address is looked up through sched.Await: the resolver may block
// its thread. An empty host means every address (to listen) or this host
// (to dial), as with package net. A lookup ends at deadline, if not zero.
func resolve(t *sched.Task, op, network string, k kind, address string, listen bool, deadline time.Time) ([]endpoint, error) {
	if k.unix {
		if address == "" {
			return nil, &net.OpError{Op: op, Net: network, Err: &net.AddrError{Err: "missing address", Addr: address}}
		}
		return []endpoint{{family: unix.AF_UNIX, sa: &unix.SockaddrUnix{Name: address}, addr: &net.UnixAddr{Name: address, Net: network}}}, nil
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &net.OpError{Op: op, Net: network, Err: err}
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		p, lerr := net.LookupPort(network, portStr)
		if lerr != nil {
			return nil, &net.OpError{Op: op, Net: network, Err: lerr}
		}
		port = uint64(p)
	}
	var ips []netip.Addr
	switch ip, perr := netip.ParseAddr(host); {
	case host == "" && listen:
		// The wildcard: IPv6, taking IPv4 too, where the network allows.
		if k.family == unix.AF_INET {
			ips = []netip.Addr{netip.IPv4Unspecified()}
		} else {
			ips = []netip.Addr{netip.IPv6Unspecified()}
			if k.family == 0 {
				ips = append(ips, netip.IPv4Unspecified()) // if IPv6 is not there
			}
		}
	case host == "":
		ips = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}
		if k.family == unix.AF_INET6 {
			ips = []netip.Addr{netip.IPv6Loopback()}
		}
	case perr == nil:
		ips = []netip.Addr{ip}
	default:
		ips, err = sched.Await(t, func(ctx context.Context) ([]netip.Addr, error) {
			if !deadline.IsZero() {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, deadline)
				defer cancel()
			}
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		})
		if err != nil {
			return nil, &net.OpError{Op: op, Net: network, Err: err}
		}
	}
	var eps []endpoint
	for _, ip := range ips {
		if ep, ok := ipEndpoint(k, ip, uint16(port)); ok {
			eps = append(eps, ep)
		}
	}
	if len(eps) == 0 {
		return nil, &net.OpError{Op: op, Net: network, Err: &net.AddrError{Err: "no suitable address found", Addr: address}}
	}
	return eps, nil
}

// ipEndpoint is ip:port as the network takes it, if it does.
func ipEndpoint(k kind, ip netip.Addr, port uint16) (endpoint, bool) {
	ip = ip.Unmap()
	var ep endpoint
	switch {
	case ip.Is4() && k.family != unix.AF_INET6:
		ep = endpoint{family: unix.AF_INET, sa: &unix.SockaddrInet4{Port: int(port), Addr: ip.As4()}}
	case ip.Is6() && k.family != unix.AF_INET:
		sa := &unix.SockaddrInet6{Port: int(port), Addr: ip.As16()}
		if z := ip.Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				sa.ZoneId = uint32(ifi.Index)
			} else if n, err := strconv.ParseUint(z, 10, 32); err == nil {
				sa.ZoneId = uint32(n)
			}
		}
		ep = endpoint{family: unix.AF_INET6, sa: sa}
	default:
		return ep, false
	}
	ep.addr = toAddr(k, ep.sa)
	return ep, true
}

// toAddr is sa as package net names it.
func toAddr(k kind, sa unix.Sockaddr) net.Addr {
	var ap netip.AddrPort
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		ap = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			ip = ip.WithZone(zoneName(sa.ZoneId))
		}
		ap = netip.AddrPortFrom(ip, uint16(sa.Port))
	case *unix.SockaddrUnix:
		network := "unix"
		if k.typ == unix.SOCK_DGRAM {
			network = "unixgram"
		}
		return &net.UnixAddr{Name: sa.Name, Net: network}
	default:
		return nil
	}
	if k.typ == unix.SOCK_DGRAM {
		return net.UDPAddrFromAddrPort(ap)
	}
	return net.TCPAddrFromAddrPort(ap)
}

func zoneName(id uint32) string {
	if ifi, err := net.InterfaceByIndex(int(id)); err == nil {
		return ifi.Name
	}
	return strconv.FormatUint(uint64(id), 10)
}

// toSockaddr is addr as the kernel takes it, for WriteTo.
func toSockaddr(k kind, family int, addr net.Addr) (unix.Sockaddr, error) {
	switch a := addr.(type) {
	case *net.UDPAddr:
		return addrPortSockaddr(family, a.AddrPort())
	case *net.TCPAddr:
		return addrPortSockaddr(family, a.AddrPort())
	case *net.UnixAddr:
		if k.unix {
			return &unix.SockaddrUnix{Name: a.Name}, nil
		}
	}
	return nil, &net.AddrError{Err: fmt.Sprintf("unsupported address type %T", addr), Addr: addrString(addr)}
}

// addrPortSockaddr is ap for a socket of family: an IPv4 address goes to an
// IPv6 socket mapped.
func addrPortSockaddr(family int, ap netip.AddrPort) (unix.Sockaddr, error) {
	ip := ap.Addr()
	switch {
	case family == unix.AF_INET && ip.Unmap().Is4():
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.Unmap().As4()}, nil
	case family == unix.AF_INET6 && ip.IsValid():
		sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
		if z := ip.Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				sa.ZoneId = uint32(ifi.Index)
			}
		}
		return sa, nil
	}
	return nil, &net.AddrError{Err: "address of the wrong family", Addr: ap.String()}
}

func addrString(a net.Addr) string {
	if a == nil {
		return "<nil>"
	}
	return a.String()
}
