// Package poll is a scheduler's poller: epoll, edge-triggered, for the
// descriptors tasks wait on, and an eventfd that wakes a thread blocked in
// Wait. It knows nothing of tasks: each registered descriptor carries a
// token, which Wait hands back with the readiness it saw.
package poll

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Poller is one epoll instance with its eventfd. Its methods may be called
// from any goroutine; Close after every other call.
type Poller struct {
	epfd   int
	wakefd int
	// woken: a Wake is pending, so another need not write the eventfd.
	woken atomic.Bool
}

// Event is the readiness Wait saw on a descriptor.
type Event struct {
	Token       uint64
	Read, Write bool // readable (or at the end of its input), writable
	Hup, Err    bool // the peer hung up both ways; an error is pending
	// End: the peer will send nothing more (it shut down its side, or hung
	// up), or an error is pending. A state, not an edge: reads report it
	// again and again, and no new edge comes for it.
	End bool
}

// wakeToken marks the eventfd's own events.
const wakeToken = ^uint64(0)

// Open makes a poller.
func Open() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	p := &Poller{epfd: epfd, wakefd: wakefd}
	if err := p.ctl(unix.EPOLL_CTL_ADD, wakefd, unix.EPOLLIN, wakeToken); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Add registers fd, edge-triggered, for reading and writing at once, as Go's
// netpoller does: readiness is reported once per change, so a reader reads
// until the descriptor says it would block, and only then waits.
func (p *Poller) Add(fd int, token uint64) error {
	return p.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLRDHUP|unix.EPOLLET, token)
}

// Del unregisters fd. Call it before closing fd.
func (p *Poller) Del(fd int) error {
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

func (p *Poller) ctl(op, fd int, events uint32, token uint64) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(uint32(token)), Pad: int32(uint32(token >> 32))}
	return unix.EpollCtl(p.epfd, op, fd, &ev)
}

// Wait waits for readiness until timeout (forever if negative, not at all if
// zero) or a Wake, and appends what it saw to dst. It reports whether a Wake
// ended it. A Wait that does not block (timeout 0) leaves a Wake pending for
// the one that does: several goroutines may wait at once, each with its own
// raw buffer, and a Wake is for the one that blocks.
func (p *Poller) Wait(dst []Event, raw []unix.EpollEvent, timeout time.Duration) (events []Event, woken bool, err error) {
	ms := -1
	if timeout >= 0 {
		// Round up: a wait that ends a little early would spin.
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	var n int
	for {
		if ms == 0 {
			n, err = waitNow(p.epfd, raw)
		} else {
			n, err = unix.EpollWait(p.epfd, raw, ms)
		}
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return dst, false, err
	}
	for _, e := range raw[:n] {
		token := uint64(uint32(e.Fd)) | uint64(uint32(e.Pad))<<32
		if token == wakeToken {
			if timeout == 0 {
				continue // the eventfd stays readable for the blocking Wait
			}
			var buf [8]byte
			unix.Read(p.wakefd, buf[:])
			p.woken.Store(false)
			woken = true
			continue
		}
		dst = append(dst, Event{
			Token: token,
			Read:  e.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0,
			Write: e.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0,
			Hup:   e.Events&unix.EPOLLHUP != 0,
			Err:   e.Events&unix.EPOLLERR != 0,
			End:   e.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0,
		})
	}
	return dst, woken, nil
}

// Wake makes a Wait under way return, or the next one return at once.
func (p *Poller) Wake() {
	if !p.woken.CompareAndSwap(false, true) {
		return // one is pending
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(p.wakefd, one[:])
}

// Close releases the poller's descriptors.
func (p *Poller) Close() error {
	err1 := unix.Close(p.epfd)
	err2 := unix.Close(p.wakefd)
	return errors.Join(err1, err2)
}

// waitNow is epoll_pwait with no timeout, as a raw system call: it cannot
// block, so it need not tell Go's scheduler (entersyscall, exitsyscall), as
// Go's own netpoll does not. A worker polls so at each scheduling decision
// where it may (pollNow): the wrapper's cost was a quarter of a ping-pong's
// user time.
func waitNow(epfd int, raw []unix.EpollEvent) (int, error) {
	if len(raw) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&raw[0])), uintptr(len(raw)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
