package sched

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weavert/weave/internal/poll"
	"golang.org/x/sys/unix"
)

// FD is a descriptor that tasks wait on: a socket, a pipe, an eventfd, a
// signalfd, a terminal — anything epoll can watch, which regular files are
// not (read and write those through Await). Its waits park the task, never
// its worker: the scheduler's poller wakes it when the descriptor is ready,
// as Tokio's AsyncFd and Go's netpoller do. Package socket builds TCP, Unix
// and UDP sockets on it.
//
// An FD belongs to the Run of the task that made it: any task of that Run
// may use it, and the end of the Run closes it. At most one task at a time
// should read it, and one write it, as with a net.Conn; more wait their turn.
//
// Every wait of an FD ends with the error the net package gives: net.ErrClosed
// once the FD is closed (Close wakes every task waiting on it), an error
// matching os.ErrDeadlineExceeded once a deadline passed, and the task's
// context's error, unchanged, if it ends first. A task waiting on an FD
// counts as waiting for the world outside: the run is never deadlocked on it.
type FD struct {
	s     *state
	fd    int
	token uint64 // its slot in the run's registry, and the slot's generation
	name  string // for reports: what the descriptor is

	// ops counts the calls under way, which must not see the descriptor
	// closed and its number reused under them; closing is set by Close.
	ops     atomic.Int32
	closing atomic.Bool

	mu   sync.Mutex // guards the directions and closed
	r, w fdDir
	// ended: the poller saw the end of the input or an error, which reads
	// report again and again with no new edge (see Read). Set with mu held,
	// read without it.
	ended  atomic.Bool
	closed bool
	// drains: a read that returns less than it asked for leaves the
	// descriptor empty, as it does a stream socket or a pipe (see Read).
	drains bool
}

// fdDir is one direction of an FD: its waiting tasks, whether an edge of
// readiness came while none waited, and its deadline.
type fdDir struct {
	fd      *FD
	waiters taskList
	timer   timer // the deadline's
	// edges counts the edges of readiness, and emptyAt is edges+1 as of
	// a read that found the descriptor empty, or 0 (see Read). Written
	// with the FD's mu held (edges) or by the reader (emptyAt), read
	// without a lock.
	edges, emptyAt atomic.Uint32
	// expired: the deadline passed. Written with the FD's mu held, read
	// without it by check, on every read and write.
	expired atomic.Bool
	write   bool
	ready   bool
}

// ErrNotPollable is what NewFD returns for a descriptor epoll cannot watch,
// such as a regular file: read and write those through Await.
var ErrNotPollable = errors.New("sched: the descriptor cannot be polled (a regular file?): use Await")

// NewFD makes fd, an open descriptor, an FD of t's run: it sets it to
// non-blocking and registers it with the run's poller. name says what it is,
// for reports ("tcp 127.0.0.1:8080"). The FD owns fd from then on: Close
// closes it. In a deterministic run it returns ErrDeterministic: real I/O
// cannot be replayed; with a Clock other than the real one, an error too.
// If fd cannot be polled (a regular file) it returns ErrNotPollable, and
// fd stays the caller's.
func NewFD(t *Task, fd int, name string) (*FD, error) {
	t.running("NewFD")
	s := t.s
	if s.mode == modeSim {
		return nil, ErrDeterministic
	}
	if _, ok := s.clock.(realClock); !ok {
		return nil, errors.New("sched: an FD needs the real clock: its poller's timeouts are real time")
	}
	p, err := s.openPoller()
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, err
	}
	f := &FD{s: s, fd: fd, name: name, drains: drains(fd)}
	f.r = fdDir{fd: f}
	f.w = fdDir{fd: f, write: true}
	f.r.timer.owner, f.w.timer.owner = &f.r, &f.w
	f.r.timer.maybe, f.w.timer.maybe = true, true // see fdDir.wakes
	f.token = s.fds.add(f)
	if err := p.Add(fd, f.token); err != nil {
		s.fds.remove(f.token)
		unix.SetNonblock(fd, false)
		if errors.Is(err, unix.EPERM) {
			return nil, ErrNotPollable
		}
		return nil, fmt.Errorf("sched: registering fd %d: %w", fd, err)
	}
	return f, nil
}

// drains reports whether a read of fd that returns less than it asked for
// has taken everything there was: true of a stream socket (TCP, a Unix
// stream) and of a pipe, whose reads copy all they hold up to the size asked.
// Not of a datagram socket (a datagram a read), a terminal (a line a read)
// or an eventfd in semaphore mode.
func drains(fd int) bool {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return false
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return true
	case unix.S_IFSOCK:
		typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		return err == nil && typ == unix.SOCK_STREAM
	}
	return false
}

// Fd returns the descriptor. It stays valid until Close.
func (f *FD) Fd() int { return f.fd }

// Name returns what the FD was made with as its name.
func (f *FD) Name() string { return f.name }

// Read reads from the FD into p, parking t until data, the end of the
// input (io.EOF) or an error comes. It must be called by t while it runs.
//
// After a read of a stream socket or a pipe that returned less than it
// asked for, which means that it took all there was, the next Read waits
// for an edge of readiness first, unless one came meanwhile, rather than
// make a read that would fail with EAGAIN: as Tokio does, and one system
// call fewer in each round trip of a request and its answer. Data comes
// only with an edge, so whoever read meanwhile, the descriptor is still
// empty if no edge came. Not so the end of the input or an error: they
// stay, and a read after the data reports them with no new edge, so once
// the poller has seen one, Read always tries first.
//
// Read and Write call the system themselves rather than through RawRead's
// closure: the frames of a task parked in Read are what its stack holds,
// and with these it stays at Go's smallest, 2 KiB, where RawRead's chain
// grows it to 4 KiB.
func (f *FD) Read(t *Task, p []byte) (int, error) {
	t.enter("FD.Read")
	if !f.begin() {
		return 0, net.ErrClosed
	}
	defer f.end()
	d := &f.r
	for {
		if err := d.check(); err != nil {
			return 0, err
		}
		edges := d.edges.Load()
		if d.emptyAt.Load() == edges+1 && !f.ended.Load() {
			if err := d.wait(t); err != nil {
				return 0, err
			}
			continue
		}
		n, err := unix.Read(f.fd, p)
		switch err {
		case nil:
			if n == 0 && len(p) > 0 {
				return 0, io.EOF
			}
			if n < len(p) && f.drains {
				d.emptyAt.Store(edges + 1)
			}
			return n, nil
		case unix.EINTR:
		case unix.EAGAIN:
			if err := d.wait(t); err != nil {
				return 0, err
			}
		default:
			return 0, os.NewSyscallError("read", err)
		}
	}
}

// Write writes all of p to the FD, parking t whenever the descriptor would
// block, and returns how much it wrote and the first error.
func (f *FD) Write(t *Task, p []byte) (n int, err error) {
	t.enter("FD.Write")
	if !f.begin() {
		return 0, net.ErrClosed
	}
	defer f.end()
	for n < len(p) {
		if err := f.w.check(); err != nil {
			return n, err
		}
		m, err := unix.Write(f.fd, p[n:])
		switch err {
		case nil:
			n += m
		case unix.EINTR:
		case unix.EAGAIN:
			if err := f.w.wait(t); err != nil {
				return n, err
			}
		default:
			return n, os.NewSyscallError("write", err)
		}
	}
	return n, nil
}

// RawRead calls op with the descriptor until op reports that it is done,
// parking t between calls until the descriptor is readable again: op makes
// one non-blocking attempt (a read, an accept, a recvfrom) and reports false
// if it would block. It returns an error if the FD is closed, a deadline
// passes or t's context ends before op is done; op's own result is op's to
// keep. It must be called by t while it runs.
func (f *FD) RawRead(t *Task, op func(fd int) (done bool)) error {
	return f.raw(t, "FD.RawRead", &f.r, op)
}

// RawWrite is RawRead for writing: op makes one non-blocking attempt to
// write (a write, a sendto, the end of a connect).
func (f *FD) RawWrite(t *Task, op func(fd int) (done bool)) error {
	return f.raw(t, "FD.RawWrite", &f.w, op)
}

func (f *FD) raw(t *Task, name string, d *fdDir, op func(fd int) bool) error {
	t.enter(name)
	if !f.begin() {
		return net.ErrClosed
	}
	defer f.end()
	for {
		if err := d.check(); err != nil {
			return err
		}
		if op(f.fd) {
			return nil
		}
		if err := d.wait(t); err != nil {
			return err
		}
	}
}

// Control calls op with the descriptor, which stays open until op returns,
// as syscall.RawConn's Control does: for a setsockopt, a shutdown, a
// getpeername. It returns net.ErrClosed if the FD is closed. op must not
// block or close the descriptor.
func (f *FD) Control(op func(fd int)) error {
	if !f.begin() {
		return net.ErrClosed
	}
	defer f.end()
	op(f.fd)
	return nil
}

// WaitRead parks t until the FD is readable, its deadline passes, it is
// closed or t's context ends.
func (f *FD) WaitRead(t *Task) error { return f.waitOne(t, &f.r) }

// WaitWrite parks t until the FD is writable, as WaitRead.
func (f *FD) WaitWrite(t *Task) error { return f.waitOne(t, &f.w) }

func (f *FD) waitOne(t *Task, d *fdDir) error {
	t.enter("FD.Wait")
	if !f.begin() {
		return net.ErrClosed
	}
	defer f.end()
	return d.wait(t)
}

// check returns why d can be used no more, or nil. It takes no lock: a
// Close or a deadline that comes just after it is seen by the wait that
// follows the attempt.
func (d *fdDir) check() error {
	switch {
	case d.fd.closing.Load():
		return net.ErrClosed
	case d.expired.Load():
		return os.ErrDeadlineExceeded
	}
	return nil
}

// wait parks t until an edge of readiness in d (or returns at once if one
// came meanwhile), or until d can be used no more.
func (d *fdDir) wait(t *Task) error {
	f := d.fd
	s := f.s
	f.mu.Lock()
	for {
		switch {
		case f.closed:
			f.mu.Unlock()
			return net.ErrClosed
		case d.expired.Load():
			f.mu.Unlock()
			return os.ErrDeadlineExceeded
		case d.ready:
			d.ready = false
			f.mu.Unlock()
			return nil
		}
		kind := WaitIORead
		if d.write {
			kind = WaitIOWrite
		}
		d.waiters.push(t)
		s.ioWaiting.Add(1) // the world outside will wake it: not a deadlock
		switch t.park(kind, d, &f.mu) {
		case intrCancel:
			return t.ctx.Err()
		case intrUnwind:
			t.unwind()
		}
		f.mu.Lock()
		if !f.closed && !d.expired.Load() {
			f.mu.Unlock()
			return nil // woken by readiness
		}
	}
}

// signal records an edge of readiness in d: the waiting tasks are woken (to
// try again), or, if none waits, the next wait returns at once. Called with
// f.mu held.
func (d *fdDir) signal(woken *taskList) {
	d.edges.Add(1)
	n := takeWakeable(&d.waiters, woken)
	if n == 0 {
		d.ready = true
	}
	d.fd.s.ioDone(n)
}

// wakeAll wakes every waiting task, which will find d unusable. Called with
// f.mu held.
func (d *fdDir) wakeAll(woken *taskList) {
	d.fd.s.ioDone(takeWakeable(&d.waiters, woken))
}

// ioDone counts n tasks that no longer wait on a descriptor.
func (s *state) ioDone(n int) {
	if n > 0 {
		s.ioWaiting.Add(int64(-n))
	}
}

func (d *fdDir) dequeueLocked(t *Task) taskList {
	d.waiters.remove(t)
	d.fd.s.ioDone(1)
	return taskList{}
}

func (d *fdDir) appendWait(b []byte, name func(any) string, _ bool) []byte {
	b = append(b, name(d.fd)...)
	return fmt.Appendf(b, " (fd %d, %s)", d.fd.fd, d.fd.name)
}

// SetReadDeadline sets the time after which reads and read waits fail with
// os.ErrDeadlineExceeded, by the clock of the FD's scheduler; the zero time
// means none. A deadline in the past makes them fail at once; moving it on
// lets them wait again. It may be called at any time, by any task.
func (f *FD) SetReadDeadline(when time.Time) error { return f.setDeadline(&f.r, when) }

// SetWriteDeadline is SetReadDeadline for writes.
func (f *FD) SetWriteDeadline(when time.Time) error { return f.setDeadline(&f.w, when) }

// SetDeadline sets both deadlines.
func (f *FD) SetDeadline(when time.Time) error {
	return errors.Join(f.setDeadline(&f.r, when), f.setDeadline(&f.w, when))
}

func (f *FD) setDeadline(d *fdDir, when time.Time) error {
	s := f.s
	// Under f.mu, so that two calls at once, or a call and Close, arm the
	// timer once at most: f.mu comes before the timer heap's lock.
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return net.ErrClosed
	}
	s.timers.remove(&d.timer)
	d.expired.Store(false)
	var woken taskList
	if !when.IsZero() {
		at := s.now() + int64(when.Sub(s.clock.Now()))
		if at <= s.now() {
			d.expired.Store(true)
			d.wakeAll(&woken)
		} else {
			d.timer.seq++
			s.addTimer(&d.timer, at)
		}
	}
	f.mu.Unlock()
	readyAll(&woken)
	return nil
}

// fire passes d's deadline.
func (d *fdDir) fire(w *worker, _ int64, seq uint64) {
	f := d.fd
	f.mu.Lock()
	if seq != d.timer.seq {
		f.mu.Unlock()
		return // a deadline moved since
	}
	d.expired.Store(true)
	var woken taskList
	d.wakeAll(&woken)
	f.mu.Unlock()
	for t := woken.pop(); t != nil; t = woken.pop() {
		f.s.readyOn(w, t)
	}
}

// A deadline's timer wakes a task only if one waits: it keeps no run going.
func (d *fdDir) wakes() bool { return false }

// Close closes the FD: every task waiting on it wakes with net.ErrClosed,
// and the descriptor is closed once no call uses it any more. It may be
// called by any task of the FD's Run, more than once.
func (f *FD) Close() error {
	if f.closing.Swap(true) {
		return net.ErrClosed
	}
	s := f.s
	f.mu.Lock()
	s.timers.remove(&f.r.timer)
	s.timers.remove(&f.w.timer)
	f.closed = true
	var woken taskList
	f.r.wakeAll(&woken)
	f.w.wakeAll(&woken)
	f.mu.Unlock()
	readyAll(&woken)
	if p := s.poller.Load(); p != nil {
		p.Del(f.fd)
	}
	s.fds.remove(f.token)
	f.end() // the reference the FD held on itself
	return nil
}

// begin counts a call that uses the descriptor, unless the FD is closed.
func (f *FD) begin() bool {
	f.ops.Add(1)
	if f.closing.Load() {
		f.end()
		return false
	}
	return true
}

// end ends a call that used the descriptor; the last one after Close closes
// it. The FD holds a reference on itself until Close, so that ops reaches 0
// only then.
func (f *FD) end() {
	if f.ops.Add(-1) == -1 {
		unix.Close(f.fd)
	}
}

// fdTable is the run's registry of FDs, by the slot that their poller token
// names, with a generation that tells a late event of a closed FD from one
// of the FD now in its slot.
type fdTable struct {
	mu    sync.Mutex
	slots []*FD
	gens  []uint32
	free  []uint32
}

func (ft *fdTable) add(f *FD) uint64 {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	var slot uint32
	if n := len(ft.free); n > 0 {
		slot = ft.free[n-1]
		ft.free = ft.free[:n-1]
	} else {
		slot = uint32(len(ft.slots))
		ft.slots = append(ft.slots, nil)
		ft.gens = append(ft.gens, 0)
	}
	ft.gens[slot]++
	ft.slots[slot] = f
	return uint64(slot) | uint64(ft.gens[slot])<<32
}

func (ft *fdTable) remove(token uint64) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	slot := uint32(token)
	if int(slot) < len(ft.slots) && ft.gens[slot] == uint32(token>>32) && ft.slots[slot] != nil {
		ft.slots[slot] = nil
		ft.free = append(ft.free, slot)
	}
}

func (ft *fdTable) get(token uint64) *FD {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	slot := uint32(token)
	if int(slot) < len(ft.slots) && ft.gens[slot] == uint32(token>>32) {
		return ft.slots[slot]
	}
	return nil
}

// open returns the FDs not closed yet.
func (ft *fdTable) open() []*FD {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	var fs []*FD
	for _, f := range ft.slots {
		if f != nil {
			fs = append(fs, f)
		}
	}
	return fs
}

// openPoller returns the run's poller, opening it at the first FD.
func (s *state) openPoller() (*poll.Poller, error) {
	s.pollOnce.Do(func() {
		p, err := poll.Open()
		if err != nil {
			s.pollErr = err
			return
		}
		s.poller.Store(p)
	})
	return s.poller.Load(), s.pollErr
}

// ioEvents wakes, on w, the tasks waiting for the readiness in evs. Each
// may wake an idle worker to share them, except the first if idle says that
// w has nothing else to run: w runs that one itself, as Go's findRunnable
// runs the first goroutine its netpoll returns. Waking a worker for it sent
// a thread through a futex wake, a search and a futex sleep at each hop of
// a ping-pong between two tasks.
func (s *state) ioEvents(w *worker, evs []poll.Event, idle bool) {
	for _, e := range evs {
		f := s.fds.get(e.Token)
		if f == nil {
			continue // closed since
		}
		var woken taskList
		f.mu.Lock()
		if e.End {
			f.ended.Store(true)
		}
		if e.Read {
			f.r.signal(&woken)
		}
		if e.Write {
			f.w.signal(&woken)
		}
		f.mu.Unlock()
		for t := woken.pop(); t != nil; t = woken.pop() {
			if idle && (!s.locked || t.co == nil || t.co.home == w) {
				idle = false
				s.readyQuiet(w, t)
				continue
			}
			s.readyOn(w, t)
		}
	}
}
