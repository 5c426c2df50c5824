package socket

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/weavert/weave/sched"
	"golang.org/x/sys/unix"
)

// Adopt returns a Conn of a duplicate of f's descriptor: a socket, a pipe, a
// terminal, a character device, anything epoll can wait on. f stays the
// caller's to close; closing both ends the connection. A regular file is
// refused with an error matching sched.ErrNotPollable: epoll cannot wait on
// one (read and write files through sched.Await). To wait on a descriptor
// without a Conn around it (an eventfd, a signalfd), use sched.NewFD.
func Adopt(t *sched.Task, f *os.File) (*Conn, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, &net.OpError{Op: "adopt", Net: "file", Err: err}
	}
	return adopt(t, raw, f.Name())
}

// AdoptConn is Adopt for a net.Conn, or anything else with a descriptor
// (syscall.Conn): a *net.TCPConn, a *net.UnixConn. c stays the caller's to
// close.
func AdoptConn(t *sched.Task, c syscall.Conn) (*Conn, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, &net.OpError{Op: "adopt", Net: "conn", Err: err}
	}
	return adopt(t, raw, fmt.Sprintf("%T", c))
}

func adopt(t *sched.Task, raw syscall.RawConn, name string) (*Conn, error) {
	var nfd int
	var derr error
	var st unix.Stat_t
	err := raw.Control(func(fd uintptr) {
		if derr = unix.Fstat(int(fd), &st); derr != nil {
			return
		}
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err == nil {
		err = derr
	}
	if err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
		unix.Close(nfd)
		err = fmt.Errorf("%s: %w", errRegular, sched.ErrNotPollable)
	}
	if err != nil {
		return nil, &net.OpError{Op: "adopt", Net: "file", Addr: fileAddr(name), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		f, err := sched.NewFD(t, nfd, "file "+name)
		if err != nil {
			unix.Close(nfd)
			return nil, &net.OpError{Op: "adopt", Net: "file", Addr: fileAddr(name), Err: err}
		}
		return &Conn{fd: f, network: "file", laddr: fileAddr(name), raddr: fileAddr(name)}, nil
	}
	k, network := kind{typ: unix.SOCK_STREAM}, "tcp"
	if typ, err := unix.GetsockoptInt(nfd, unix.SOL_SOCKET, unix.SO_TYPE); err == nil && typ == unix.SOCK_DGRAM {
		unix.Close(nfd)
		return nil, &net.OpError{Op: "adopt", Net: "udp", Addr: fileAddr(name), Err: fmt.Errorf("a datagram socket is not a stream")}
	}
	if sa, err := unix.Getsockname(nfd); err == nil {
		if _, ok := sa.(*unix.SockaddrUnix); ok {
			k.unix, network = true, "unix"
		}
	}
	return newConn(t, nfd, network, k, nil, false)
}

// fileAddr is the address of an adopted descriptor that is not a socket:
// its name.
type fileAddr string

func (fileAddr) Network() string  { return "file" }
func (a fileAddr) String() string { return string(a) }
