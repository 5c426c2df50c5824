package proc

import (
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// How a Conn over a descriptor waits.
//
// The descriptor is non-blocking. recvOnce and sendOnce stop with
// errWouldBlock when it is not ready, and the waiting goroutine then blocks
// its thread in ppoll(2) on the descriptor and on an eventfd, until the
// descriptor is ready, the deadline passes, or the eventfd is written: by a
// change of deadline, or by Close. A blocking read(2) cannot be woken by a
// new deadline, and net.Conn's contract is that a deadline applies to calls
// waiting already. Go's netpoller would wait without holding a thread, but
// measured at 0.7× the speed of a raw socketpair for 64-byte round trips,
// against 0.9× for this (see the package doc).
//
// Each direction has its own eventfd: two goroutines that poll one and drain
// it could take each other's wake-up. It is made at the first wait, so that a
// Conn that never waits costs no descriptor more.

// deadline is a time after which a Conn's calls in one direction fail: in
// nanoseconds on the monotonic clock since monoStart, 0 for none, and -1 for
// one already past when it was set.
type deadline struct{ ns atomic.Int64 }

var monoStart = time.Now()

func (d *deadline) set(t time.Time) {
	if t.IsZero() {
		d.ns.Store(0)
		return
	}
	d.ns.Store(max(int64(time.Since(monoStart)+time.Until(t)), -1))
}

// left returns the time until the deadline, if there is one.
func (d *deadline) left() (time.Duration, bool) {
	ns := d.ns.Load()
	if ns == 0 {
		return 0, false
	}
	return time.Duration(ns) - time.Since(monoStart), true
}

// passed reports whether there is a deadline and it has passed.
func (d *deadline) passed() bool {
	left, ok := d.left()
	return ok && left <= 0
}

// waker is one direction's eventfd, and the arguments and results of its
// poll, which only the waiting goroutine (the holder of rmu or wmu) uses.
type waker struct {
	f   atomic.Pointer[os.File]
	rc  syscall.RawConn
	fn  func(uintptr) // poll, bound once
	fds [2]unix.PollFd
	ts  unix.Timespec
	tsp *unix.Timespec
	err error
	buf [8]byte
}

// one is what a wake-up writes to an eventfd.
var one = [8]byte{1}

// wake makes the goroutine waiting in this direction, if any, look at its
// deadline and the Conn again.
func (w *waker) wake() {
	if f := w.f.Load(); f != nil {
		f.Write(one[:])
	}
}

// close wakes the waiting goroutine and closes the eventfd once it has left
// ppoll (the file's reference count sees to that).
func (w *waker) close() {
	if f := w.f.Load(); f != nil {
		f.Write(one[:])
		f.Close()
	}
}

func (w *waker) poll(efd uintptr) {
	w.fds[1] = unix.PollFd{Fd: int32(efd), Events: unix.POLLIN}
	_, w.err = unix.Ppoll(w.fds[:], w.tsp, nil)
	if w.fds[1].Revents != 0 {
		unix.Read(int(efd), w.buf[:])
	}
}

// wait blocks until fd is ready for events (or has an error or hung up),
// and returns nil; or until the deadline d passes (os.ErrDeadlineExceeded)
// or the Conn is closed (ErrClosed).
func (c *Conn) wait(fd int, events int16, d *deadline, w *waker) error {
	f := w.f.Load()
	if f == nil {
		efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			return os.NewSyscallError("eventfd", err)
		}
		f = os.NewFile(uintptr(efd), "proc-wake")
		w.rc, _ = f.SyscallConn()
		w.fn = w.poll
		w.f.Store(f)
		// Close stores closed before it looks for the eventfd: one of the
		// two sees the other.
		if c.closed.Load() {
			f.Close()
			return ErrClosed
		}
	}
	for {
		if c.closed.Load() {
			return ErrClosed
		}
		w.tsp = nil
		if left, ok := d.left(); ok {
			if left <= 0 {
				return os.ErrDeadlineExceeded
			}
			w.ts = unix.NsecToTimespec(int64(left))
			w.tsp = &w.ts
		}
		w.fds[0] = unix.PollFd{Fd: int32(fd), Events: events}
		if err := w.rc.Control(w.fn); err != nil {
			return ErrClosed // the eventfd was closed: so was the Conn
		}
		if w.err != nil && w.err != unix.EINTR {
			return os.NewSyscallError("ppoll", w.err)
		}
		if w.fds[0].Revents != 0 {
			return nil
		}
	}
}
