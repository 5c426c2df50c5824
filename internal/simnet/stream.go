package simnet

import (
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/weavert/weave/sched"
)

// pipe is one direction of a stream: the bytes written, of which those up
// to delivered have arrived, and the end of the stream or the reset that
// follows them.
type pipe struct {
	net      *Net
	from, to *Host

	buf       []byte // the bytes from offset base on
	base      int64
	read      int64 // what the reader took
	delivered int64 // what arrived
	written   int64 // what the writer gave
	last      int64 // when the last delivery arrives: the order of a stream

	finSent, finArrived bool // the writer's end of stream, sent and arrived
	rstArrived          bool // the writer's end reset the stream

	readable *sched.Notify // the reader waits for data, an end or a reset
	writable *sched.Notify // the writer waits for room in the window
	reader   *Conn         // the end that reads it
}

func newPipe(n *Net, from, to *Host, name string) *pipe {
	return &pipe{net: n, from: from, to: to,
		readable: sched.NewNotify("read from " + name), writable: sched.NewNotify("write to " + name)}
}

// send queues the bytes written so far, or a mark, for delivery.
func (p *pipe) send(m mark) {
	n := p.net
	at := max(n.now()+n.latency(p.from, p.to), p.last)
	p.last = at
	n.schedule(event{at: at, p: p, end: p.written, mark: m})
}

// arrive delivers the stream up to end, then m. Data that reaches an end
// closed or gone is answered with a reset, as a kernel answers it.
func (p *pipe) arrive(end int64, m mark) {
	if r := p.reader; (r.closed || r.dead) && end > p.delivered {
		r.sendRST()
	}
	p.delivered = max(p.delivered, end)
	switch m {
	case markFIN:
		p.finArrived = true
	case markRST:
		p.rstArrived = true
	}
	p.readable.Notify()
}

// Conn is one end of a stream between two hosts, or within one.
type Conn struct {
	net          *Net
	host         *Host
	epoch        uint64 // the host's incarnation it belongs to
	laddr, raddr netip.AddrPort
	in, out      *pipe
	peer         *Conn

	closed    bool // closed here
	dead      bool // its host crashed, or it was reset
	rstSent   bool
	wshut     bool // CloseWrite
	rd, wd    deadline
	connected bool
}

// deadline is a Conn's read or write deadline, on a FuncTimer made with the
// Conn, stopped while none is set.
type deadline struct {
	timer   *sched.FuncTimer
	expired bool
}

func (d *deadline) init(t *sched.Task, wake *sched.Notify) {
	d.timer = sched.AfterFunc(t, time.Hour, func() {
		d.expired = true
		wake.Notify()
	})
	d.timer.Stop()
}

// set sets the deadline to when, now being the time by the same clock: zero
// means none.
func (d *deadline) set(when, now time.Time, wake *sched.Notify) {
	d.timer.Stop()
	d.expired = false
	switch {
	case when.IsZero():
	case !when.After(now):
		d.expired = true
		wake.Notify()
	default:
		d.timer.Reset(when.Sub(now))
	}
}

// newStream makes the two ends of a stream from c's host to l's.
func (n *Net) newStream(t *sched.Task, src *Host, laddr netip.AddrPort, dst *Host, raddr netip.AddrPort) (*Conn, *Conn) {
	ab := newPipe(n, src, dst, "tcp "+laddr.String()+"->"+raddr.String())
	ba := newPipe(n, dst, src, "tcp "+raddr.String()+"->"+laddr.String())
	a := &Conn{net: n, host: src, epoch: src.Sim.Epoch, laddr: laddr, raddr: raddr, in: ba, out: ab}
	b := &Conn{net: n, host: dst, epoch: dst.Sim.Epoch, laddr: raddr, raddr: laddr, in: ab, out: ba}
	a.peer, b.peer = b, a
	ba.reader, ab.reader = a, b
	for _, c := range []*Conn{a, b} {
		c.rd.init(t, c.in.readable)
		c.wd.init(t, c.out.writable)
		c.host.conns = append(c.host.conns, c)
	}
	return a, b
}

// LocalAddr returns c's address.
func (c *Conn) LocalAddr() net.Addr { return net.TCPAddrFromAddrPort(c.laddr) }

// RemoteAddr returns its peer's.
func (c *Conn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.raddr) }

// Read reads what arrived into p, parking t until something does.
func (c *Conn) Read(t *sched.Task, p []byte) (int, error) {
	in := c.in
	for {
		switch {
		case c.closed:
			return 0, net.ErrClosed
		case in.delivered > in.read:
			k := copy(p, in.buf[in.read-in.base:in.delivered-in.base])
			in.read += int64(k)
			in.compact()
			in.writable.Notify() // room in the window
			return k, nil
		case in.rstArrived || c.dead:
			return 0, syscall.ECONNRESET
		case in.finArrived:
			return 0, io.EOF
		case c.rd.expired:
			return 0, os.ErrDeadlineExceeded
		case len(p) == 0:
			return 0, nil
		}
		if err := in.readable.Wait(t); err != nil {
			return 0, err
		}
	}
}

// compact drops the bytes read, once they are half the buffer.
func (p *pipe) compact() {
	done := int(p.read - p.base)
	if done < 4096 || done < len(p.buf)/2 {
		return
	}
	p.buf = p.buf[:copy(p.buf, p.buf[done:])]
	p.base = p.read
}

// Write writes all of p, parking t while the window is full.
func (c *Conn) Write(t *sched.Task, p []byte) (int, error) {
	out := c.out
	n := 0
	for {
		switch {
		case c.closed:
			return n, net.ErrClosed
		case c.dead || c.in.rstArrived:
			return n, syscall.ECONNRESET
		case c.wshut:
			return n, syscall.EPIPE
		case c.wd.expired:
			return n, os.ErrDeadlineExceeded
		case len(p) == n:
			return n, nil
		}
		room := int64(c.net.cfg.Window) - (out.written - out.read)
		if room <= 0 {
			if err := out.writable.Wait(t); err != nil {
				return n, err
			}
			continue
		}
		k := min(int(room), len(p)-n)
		out.buf = append(out.buf, p[n:n+k]...)
		out.written += int64(k)
		n += k
		out.send(markData)
	}
}

// CloseWrite sends the end of the stream, after what was written.
func (c *Conn) CloseWrite() error {
	if c.closed {
		return net.ErrClosed
	}
	if !c.wshut && !c.dead {
		c.wshut = true
		c.out.finSent = true
		c.out.send(markFIN)
	}
	return nil
}

// Close closes c: tasks parked on it wake with net.ErrClosed, and the peer
// reads the end of the stream after what c wrote, or a reset if c had data
// left unread, as a kernel does.
func (c *Conn) Close() error {
	if c.closed {
		return net.ErrClosed
	}
	c.closed = true
	c.rd.timer.Stop()
	c.wd.timer.Stop()
	if !c.dead {
		switch {
		case c.in.delivered > c.in.read:
			c.sendRST()
		case !c.out.finSent:
			c.out.finSent = true
			c.out.send(markFIN)
		}
	}
	c.in.readable.Notify()
	c.out.writable.Notify()
	c.forget()
	return nil
}

// forget takes c off its host's list of open ends.
func (c *Conn) forget() {
	h := c.host
	for i, x := range h.conns {
		if x == c {
			h.conns = append(h.conns[:i], h.conns[i+1:]...)
			return
		}
	}
}

// die ends c, whose host crashed: its peer is reset, after what c sent.
func (c *Conn) die() {
	if c.dead || c.closed {
		return
	}
	c.dead = true
	c.sendRST()
	c.in.readable.Notify()
	c.out.writable.Notify()
}

// sendRST resets the stream from c's end, once, after what c sent.
func (c *Conn) sendRST() {
	if !c.rstSent {
		c.rstSent = true
		c.out.send(markRST)
	}
}

// reset resets the stream at both ends at once: a reset that the network
// injects, not one a host sends.
func (c *Conn) reset() {
	for _, x := range []*Conn{c, c.peer} {
		if !x.closed && !x.dead {
			x.dead = true
			x.in.readable.Notify()
			x.out.writable.Notify()
			x.forget()
		}
	}
}

// SetReadDeadline sets the read deadline, a time by the clock of c's host.
func (c *Conn) SetReadDeadline(when time.Time) error {
	if c.closed {
		return net.ErrClosed
	}
	c.rd.set(when, c.host.now(), c.in.readable)
	return nil
}

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(when time.Time) error {
	if c.closed {
		return net.ErrClosed
	}
	c.wd.set(when, c.host.now(), c.out.writable)
	return nil
}

// Listener accepts the streams dialled to a port of a host.
type Listener struct {
	net     *Net
	host    *Host
	addr    netip.AddrPort
	backlog []*Conn
	ready   *sched.Notify
	closed  bool
	rd      deadline
}

// Listen listens on address ("host:port", host empty or the task's host)
// for t, a task of a simulated host.
func (n *Net) Listen(t *sched.Task, h *Host, address string) (*Listener, error) {
	addr, err := bindAddr(h, address, h.listeners)
	if err != nil {
		return nil, err
	}
	l := &Listener{net: n, host: h, addr: addr, ready: sched.NewNotify("accept on tcp " + addr.String())}
	l.rd.init(t, l.ready)
	h.listeners[addr.Port()] = l
	return l, nil
}

// bindAddr is the address of h that a socket on address binds to: the port
// given, or a free one for port 0, unless taken in bound.
func bindAddr[V any](h *Host, address string, bound map[uint16]V) (netip.AddrPort, error) {
	_, portStr, err := splitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := parsePort(portStr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if port == 0 {
		port = h.ephemeral()
	}
	if _, ok := bound[port]; ok {
		return netip.AddrPort{}, syscall.EADDRINUSE
	}
	return netip.AddrPortFrom(h.Addr, port), nil
}

// Addr returns the address listened on.
func (l *Listener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.addr) }

// Accept parks t until a connection comes.
func (l *Listener) Accept(t *sched.Task) (*Conn, error) {
	for {
		switch {
		case l.closed:
			return nil, net.ErrClosed
		case len(l.backlog) > 0:
			c := l.backlog[0]
			l.backlog = l.backlog[1:]
			c.connected = true
			return c, nil
		case l.rd.expired:
			return nil, os.ErrDeadlineExceeded
		}
		if err := l.ready.Wait(t); err != nil {
			return nil, err
		}
	}
}

// Close stops listening; connections not accepted yet are reset.
func (l *Listener) Close() error {
	if l.closed {
		return net.ErrClosed
	}
	l.closed = true
	l.rd.timer.Stop()
	if l.host.listeners[l.addr.Port()] == l {
		delete(l.host.listeners, l.addr.Port())
	}
	for _, c := range l.backlog {
		c.die()
		c.forget()
	}
	l.backlog = nil
	l.ready.Notify()
	return nil
}

// SetDeadline sets the deadline of Accept.
func (l *Listener) SetDeadline(when time.Time) error {
	if l.closed {
		return net.ErrClosed
	}
	l.rd.set(when, l.host.now(), l.ready)
	return nil
}

// Dial connects t, a task of host src, to address, by deadline if it is not
// zero: the connection is made after a round trip, refused if nothing
// listens, and, if the host is down or cut off, tried again with backoff
// until the network's ConnectTimeout, as TCP retransmits its SYN.
func (n *Net) Dial(t *sched.Task, src *Host, address string, deadline time.Time) (*Conn, error) {
	dst, port, err := n.resolveFrom(src, address)
	if err != nil {
		return nil, err
	}
	start := n.now()
	limit := start + int64(n.cfg.ConnectTimeout)
	timeoutErr := error(syscall.ETIMEDOUT)
	if !deadline.IsZero() {
		if d := start + int64(deadline.Sub(t.Now())); d < limit {
			limit, timeoutErr = d, os.ErrDeadlineExceeded
		}
	}
	backoff := int64(time.Second)
	for {
		if n.reachable(src, dst) && dst.up {
			if err := n.sleepUntil(t, n.now()+n.latency(src, dst), limit, timeoutErr); err != nil {
				return nil, err
			}
			if n.reachable(src, dst) && dst.up {
				return n.answer(t, src, dst, port, limit, timeoutErr)
			}
		}
		// The SYN is lost: it goes again after the backoff.
		next := n.now() + backoff
		backoff *= 2
		if err := n.sleepUntil(t, next, limit, timeoutErr); err != nil {
			return nil, err
		}
	}
}

// answer is the answer of dst to a SYN from src that reached it: a
// connection, or a refusal; either takes a latency back to src.
func (n *Net) answer(t *sched.Task, src, dst *Host, port uint16, limit int64, timeoutErr error) (*Conn, error) {
	l := dst.listeners[port]
	back := n.now() + n.latency(dst, src)
	if l == nil || len(l.backlog) >= n.cfg.Backlog {
		if err := n.sleepUntil(t, back, limit, timeoutErr); err != nil {
			return nil, err
		}
		return nil, syscall.ECONNREFUSED
	}
	laddr := netip.AddrPortFrom(src.Addr, src.ephemeral())
	c, peer := n.newStream(t, src, laddr, dst, l.addr)
	l.backlog = append(l.backlog, peer)
	l.ready.Notify()
	if err := n.sleepUntil(t, back, limit, timeoutErr); err != nil {
		c.Close()
		return nil, err
	}
	c.connected = true
	return c, nil
}

// sleepUntil parks t until at, or fails with err at limit, or with t's
// context's error.
func (n *Net) sleepUntil(t *sched.Task, at, limit int64, err error) error {
	if at > limit {
		if e := t.Sleep(time.Duration(limit - n.now())); e != nil {
			return e
		}
		return err
	}
	return t.Sleep(time.Duration(at - n.now()))
}

func (n *Net) resolveFrom(src *Host, address string) (*Host, uint16, error) {
	host, portStr, err := splitHostPort(address)
	if err != nil {
		return nil, 0, err
	}
	if host == "" || host == "localhost" || host == "127.0.0.1" || host == "::1" {
		port, err := parsePort(portStr)
		return src, port, err
	}
	return n.resolve(address)
}

func parsePort(s string) (uint16, error) {
	var p uint64
	if len(s) == 0 || len(s) > 5 {
		return 0, &net.AddrError{Err: "invalid port", Addr: s}
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, &net.AddrError{Err: "invalid port", Addr: s}
		}
		p = p*10 + uint64(c-'0')
	}
	if p > 65535 {
		return 0, &net.AddrError{Err: "invalid port", Addr: s}
	}
	return uint16(p), nil
}
