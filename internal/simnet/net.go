// Package simnet is the network of a simulated world: hosts with addresses,
// TCP-like streams and UDP-like datagrams between them, each delivery taking
// a latency drawn from the run's seed, and the faults that package simtest
// injects (partitions, held messages, latency spikes, resets, crashes).
// Package socket sends a deterministic run's sockets here; package simtest
// builds the world on it. It runs on the public API of package sched: a
// Notify per thing a task waits for, and one FuncTimer for every delivery.
//
// A deterministic run has one thread, so nothing here takes a lock: the
// run's tasks and its worker (the timer's function) take turns.
package simnet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/weavert/weave/internal/simhost"
	"github.com/weavert/weave/sched"
)

// Config is how the network behaves. Every random draw comes from the
// run's seed.
type Config struct {
	// MinLatency and MaxLatency bound the one-way latency of a delivery,
	// drawn uniformly for each.
	MinLatency, MaxLatency time.Duration
	// Loss and Duplicate are the probabilities that a datagram is dropped,
	// or delivered twice. Streams lose nothing.
	Loss, Duplicate float64
	// ConnectTimeout ends a Dial that gets no answer (the host is down, or
	// cut off), with ETIMEDOUT.
	ConnectTimeout time.Duration
	// Window is how many bytes a stream holds per direction, in flight and
	// unread together, before Write waits.
	Window int
	// Backlog is how many connections a listener holds before Accept takes
	// them; a Dial beyond is refused.
	Backlog int
}

// DefaultConfig is a local network: 1 to 5 ms of latency, no loss.
var DefaultConfig = Config{
	MinLatency:     time.Millisecond,
	MaxLatency:     5 * time.Millisecond,
	ConnectTimeout: 5 * time.Second,
	Window:         256 << 10,
	Backlog:        128,
}

// Net is a run's simulated network.
type Net struct {
	cfg    Config
	rng    *rand.Rand
	clock  *sched.Task // a task of no host, whose Now is the world's time
	hosts  []*Host
	byAddr map[netip.Addr]*Host
	byName map[string]*Host
	links  map[[2]*Host]*link

	events eventQueue
	seq    uint64
	timer  *sched.FuncTimer
	armed  int64 // when timer falls due, or -1

	// Log, if set, is told of every fault, for the run's trace.
	Log func(format string, args ...any)
}

// New makes a network for the run of t, a task of no host, with the random
// source seed.
func New(t *sched.Task, cfg Config, seed uint64) *Net {
	n := &Net{
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(seed, 0x5eed_0f_11e7)),
		clock:  t,
		byAddr: make(map[netip.Addr]*Host),
		byName: make(map[string]*Host),
		links:  make(map[[2]*Host]*link),
		armed:  -1,
	}
	n.timer = sched.AfterFunc(t, time.Hour, n.fire)
	n.timer.Stop()
	return n
}

// Config returns the network's behaviour.
func (n *Net) Config() Config { return n.cfg }

// SetLatency changes the latency of every later delivery.
func (n *Net) SetLatency(min, max time.Duration) {
	n.cfg.MinLatency, n.cfg.MaxLatency = min, max
}

// SetLoss changes the datagrams' loss and duplication rates.
func (n *Net) SetLoss(loss, dup float64) { n.cfg.Loss, n.cfg.Duplicate = loss, dup }

// Rand returns the network's random source, which the world's other
// choices may share: one sequence of draws per seed.
func (n *Net) Rand() *rand.Rand { return n.rng }

func (n *Net) now() int64 { return n.clock.Now().UnixNano() }

// Now returns the world's time, with no host's skew.
func (n *Net) Now() time.Time { return n.clock.Now() }

// Stop ends the network: what is in flight is never delivered.
func (n *Net) Stop() {
	n.timer.Stop()
	n.armed = -1
	clear(n.events)
	n.events = n.events[:0]
	for _, l := range n.links {
		l.queue = nil
	}
}

func (n *Net) logf(format string, args ...any) {
	if n.Log != nil {
		n.Log(format, args...)
	}
}

// Host is a simulated host on the network.
type Host struct {
	net  *Net
	Sim  *simhost.Host
	Addr netip.Addr
	up   bool

	listeners map[uint16]*Listener
	packets   map[uint16]*PacketConn
	conns     []*Conn // its open stream ends, in the order they opened
	nextPort  uint16
}

// AddHost adds a host named name, with the next address of 10.0.0.0/8.
func (n *Net) AddHost(name string, sim *simhost.Host) *Host {
	i := len(n.hosts) + 1
	addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	h := &Host{net: n, Sim: sim, Addr: addr, up: true,
		listeners: make(map[uint16]*Listener), packets: make(map[uint16]*PacketConn), nextPort: 40000}
	n.hosts = append(n.hosts, h)
	n.byAddr[addr] = h
	n.byName[name] = h
	return h
}

// now is the time by h's clock, with its skew.
func (h *Host) now() time.Time {
	return h.net.clock.Now().Add(h.Sim.Offset)
}

// Net returns the host's network.
func (h *Host) Net() *Net { return h.net }

// Name returns the host's name.
func (h *Host) Name() string { return h.Sim.Name }

// Up reports whether the host runs: it has not crashed, or has restarted.
func (h *Host) Up() bool { return h.up }

type hostKey struct{}

// WithHost returns ctx for the tasks of h: socket finds its network, and
// the address its sockets bind to, there.
func WithHost(ctx context.Context, h *Host) context.Context {
	return context.WithValue(ctx, hostKey{}, h)
}

// HostOf returns the simulated host of a task's context, or nil.
func HostOf(ctx context.Context) *Host {
	h, _ := ctx.Value(hostKey{}).(*Host)
	return h
}

// Crash takes h down: its sockets are gone, and the peers of its
// connections are reset, once the reset reaches them. What it sent before
// still arrives first.
func (h *Host) Crash() {
	h.up = false
	for _, c := range h.conns {
		c.die()
	}
	h.conns = nil
	for _, port := range sortedPorts(h.listeners) {
		l := h.listeners[port]
		for _, c := range l.backlog {
			c.die()
		}
		l.backlog = nil
		l.closed = true
		l.ready.Notify()
	}
	clear(h.listeners)
	for _, port := range sortedPorts(h.packets) {
		pc := h.packets[port]
		pc.closed = true
		pc.ready.Notify()
	}
	clear(h.packets)
}

// Restart brings h up again, with no socket.
func (h *Host) Restart() { h.up = true }

func sortedPorts[V any](m map[uint16]V) []uint16 {
	ports := make([]uint16, 0, len(m))
	for p := range m {
		ports = append(ports, p)
	}
	// Insertion sort: few ports, and no import for it.
	for i := 1; i < len(ports); i++ {
		for j := i; j > 0 && ports[j] < ports[j-1]; j-- {
			ports[j], ports[j-1] = ports[j-1], ports[j]
		}
	}
	return ports
}

// ephemeral returns a free port of h for an outgoing connection or socket.
func (h *Host) ephemeral() uint16 {
	for {
		p := h.nextPort
		h.nextPort++
		if h.nextPort == 0 {
			h.nextPort = 40000
		}
		_, udp := h.packets[p]
		_, tcp := h.listeners[p]
		if !udp && !tcp {
			return p
		}
	}
}

// link is the state of the deliveries from one host to another.
type link struct {
	cut   bool          // partitioned: datagrams are lost, stream data waits
	held  bool          // held: everything waits until released
	extra time.Duration // a latency spike
	queue []event       // deliveries that waited
}

func (n *Net) link(from, to *Host) *link {
	k := [2]*Host{from, to}
	l := n.links[k]
	if l == nil {
		l = &link{}
		n.links[k] = l
	}
	return l
}

// Partition cuts the links between a and b, both ways: datagrams between
// them are lost, and stream data waits, as TCP retransmits it, until Heal.
func (n *Net) Partition(a, b *Host) {
	n.link(a, b).cut, n.link(b, a).cut = true, true
	n.logf("partition %s | %s", a.Name(), b.Name())
}

// Heal restores the links between a and b, and what waited goes on.
func (n *Net) Heal(a, b *Host) {
	n.link(a, b).cut, n.link(b, a).cut = false, false
	n.logf("heal %s | %s", a.Name(), b.Name())
	n.flush(a, b)
	n.flush(b, a)
}

// Hold holds every delivery from a to b, datagrams too, until Release.
func (n *Net) Hold(a, b *Host) {
	n.link(a, b).held = true
	n.logf("hold %s -> %s", a.Name(), b.Name())
}

// Release delivers what Hold held, in order, and what comes next.
func (n *Net) Release(a, b *Host) {
	n.link(a, b).held = false
	n.logf("release %s -> %s", a.Name(), b.Name())
	n.flush(a, b)
}

// Spike adds extra to the latency from a to b, until another Spike.
func (n *Net) Spike(a, b *Host, extra time.Duration) {
	n.link(a, b).extra = extra
	n.logf("latency %s -> %s +%v", a.Name(), b.Name(), extra)
}

// ResetBetween resets every connection between a and b.
func (n *Net) ResetBetween(a, b *Host) {
	n.logf("reset connections %s <-> %s", a.Name(), b.Name())
	for _, c := range append([]*Conn(nil), a.conns...) {
		if c.peer.host == b {
			c.reset()
		}
	}
}

// reachable reports whether a delivery from a to b can go now.
func (n *Net) reachable(a, b *Host) bool {
	if a == b {
		return true
	}
	l := n.links[[2]*Host{a, b}]
	return l == nil || (!l.cut && !l.held)
}

// latency draws the one-way latency from a to b.
func (n *Net) latency(a, b *Host) int64 {
	d := n.cfg.MinLatency
	if span := n.cfg.MaxLatency - n.cfg.MinLatency; span > 0 {
		d += time.Duration(n.rng.Int64N(int64(span) + 1))
	}
	if a == b {
		d /= 10 // the loopback
	}
	if l := n.links[[2]*Host{a, b}]; l != nil {
		d += l.extra
	}
	return int64(d)
}

// event is a delivery: of a stream's bytes up to end (with its end of
// stream or reset), or of a datagram.
type event struct {
	at   int64
	seq  uint64
	p    *pipe
	end  int64
	mark mark
	dg   *datagram
}

type mark uint8

const (
	markData mark = iota
	markFIN
	markRST
)

// eventQueue is a binary min-heap of events by time, then by the order
// they were scheduled: typed, so that a push allocates nothing.
type eventQueue []event

func (q eventQueue) less(i, j int) bool {
	return q[i].at < q[j].at || q[i].at == q[j].at && q[i].seq < q[j].seq
}

func (q *eventQueue) push(e event) {
	*q = append(*q, e)
	h := *q
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *eventQueue) pop() event {
	h := *q
	e := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = event{}
	h = h[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && h.less(l, m) {
			m = l
		}
		if r < len(h) && h.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return e
}

// schedule queues e, and arms the timer if e comes first.
func (n *Net) schedule(e event) {
	n.seq++
	e.seq = n.seq
	n.events.push(e)
	n.arm()
}

func (n *Net) arm() {
	if len(n.events) == 0 {
		return
	}
	at := n.events[0].at
	if n.armed >= 0 && n.armed <= at {
		return
	}
	n.armed = at
	n.timer.Reset(time.Duration(at - n.now()))
}

// fire delivers what is due: the FuncTimer's function.
func (n *Net) fire() {
	n.armed = -1
	now := n.now()
	for len(n.events) > 0 && n.events[0].at <= now {
		e := n.events.pop()
		n.deliver(e)
	}
	n.arm()
}

func (n *Net) deliver(e event) {
	from, to := e.from(), e.to()
	if !n.reachable(from, to) {
		l := n.link(from, to)
		if l.cut && !l.held && e.dg != nil {
			n.logf("lost datagram %v -> %v (partition)", e.dg.from, e.dg.to)
			return
		}
		l.queue = append(l.queue, e)
		return
	}
	if e.dg != nil {
		e.dg.arrive()
		return
	}
	e.p.arrive(e.end, e.mark)
}

func (e *event) from() *Host {
	if e.dg != nil {
		return e.dg.src
	}
	return e.p.from
}

func (e *event) to() *Host {
	if e.dg != nil {
		return e.dg.dst
	}
	return e.p.to
}

// flush sends on what waited on the link from a to b, in order, each after
// a new latency.
func (n *Net) flush(a, b *Host) {
	l := n.links[[2]*Host{a, b}]
	if l == nil || !n.reachable(a, b) {
		return
	}
	q := l.queue
	l.queue = nil
	now := n.now()
	for _, e := range q {
		e.at = now + n.latency(a, b)
		if e.p != nil {
			e.at = max(e.at, e.p.last)
			e.p.last = e.at
		}
		n.schedule(e)
	}
}

// resolve parses address, "host:port", where host is an address or the
// name of a host of the network.
func (n *Net) resolve(address string) (*Host, uint16, error) {
	host, portStr, err := splitHostPort(address)
	if err != nil {
		return nil, 0, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("bad port %q", portStr)
	}
	if h := n.byName[host]; h != nil {
		return h, uint16(port), nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if h := n.byAddr[ip.Unmap()]; h != nil {
			return h, uint16(port), nil
		}
		return nil, uint16(port), syscall.EHOSTUNREACH
	}
	return nil, 0, fmt.Errorf("no simulated host %q", host)
}

func splitHostPort(address string) (host, port string, err error) {
	i := len(address) - 1
	for i >= 0 && address[i] != ':' {
		i--
	}
	if i < 0 {
		return "", "", fmt.Errorf("address %s: missing port", address)
	}
	host, port = address[:i], address[i+1:]
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host, port, nil
}
