package inspect

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weavert/weave/proc"
	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/socket"
)

// ErrNoAnswer is the error of a request the other side did not answer in
// time.
var ErrNoAnswer = errors.New("inspect: no answer")

// ErrBadAnswer is the error of an answer that does not decode.
var ErrBadAnswer = errors.New("inspect: malformed answer")

// Frame kinds: the first byte of every frame a Peer sends.
const (
	kindMsg       byte = iota // a message of the program
	kindMsgFlow               // a message of the program, with a trace arrow: 8-byte id first
	kindSnapReq               // 8-byte request id, 1 byte of flags
	kindSnapResp              // 8-byte request id, then a Process in JSON
	kindTraceReq              // 8-byte request id
	kindTraceResp             // 8-byte request id, then the trace events in JSON
	kindErrResp               // 8-byte request id, then an error text
)

// A frame starts with its kind byte; all but kindMsg follow it with an ID
// (a request's, or an arrow's), big-endian.
const (
	idLen     = 8
	headerLen = 1 + idLen // kind byte and ID
)

// Peer is one end of a proc.Conn that carries both the program's messages
// and the control messages of snapshots and traces. Each side of the Conn
// makes one: the parent with Child, the child with Parent. A Peer reads the
// Conn itself: it answers requests for the snapshot and the trace of its
// process as they come, and hands the program's messages to Recv, through a
// buffer of 256 of them. So once a Conn has a Peer, the program sends and
// receives only through the Peer; a program that stops reading its messages
// stalls the reader once the buffer is full, and requests to it then go
// unanswered (and time out).
//
// Child and Parent read the Conn on a goroutine of the Peer's own, and Recv
// blocks its caller: a task calls it through sched.Await. ChildTask and
// ParentTask make a Peer that a task of a run reads, over socket.Proc,
// parking on the scheduler's poller: that run's tasks receive with RecvTask
// and send with SendFrom, with no goroutine and no Await.
type Peer struct {
	name  string
	pid   int
	child bool
	c     *proc.Conn
	lane  int

	msgs chan msg
	done chan struct{} // closed when the reader ends; then err is set
	err  error

	// Of a Peer that a task reads (ChildTask, ParentTask): the Conn as the
	// run's tasks use it, and the program's messages, in place of msgs.
	pc    *socket.ProcConn
	tmsgs *sched.Chan[msg]

	mu      sync.Mutex
	ended   bool // the reader has ended: no answer can come
	pending map[uint64]chan []byte
	events  []event // messages received with an arrow, on lane
	dropped uint64

	reqs atomic.Uint64
	bad  atomic.Uint64 // frames of an unknown kind, ignored
}

type msg struct {
	data []byte
}

var lanes atomic.Int64

// Child returns the Peer of the parent's end of child p, named name in the
// tree: Snapshot includes p's snapshot and WriteTrace its timeline until
// Close. p must run a Peer of its own on its end (Parent or ParentTask).
func Child(name string, p *proc.Process) *Peer {
	return newPeer(name, p.PID(), p.Conn(), true).start()
}

// Parent returns the Peer of a child's end of its Conn c, which answers the
// parent's requests for snapshots and traces of this process.
func Parent(c *proc.Conn) *Peer {
	return newPeer("parent", os.Getppid(), c, false).start()
}

// ChildTask is Child for a parent whose tasks talk to p: the Peer is read by
// a task of t's run, which parks on the scheduler's poller (socket.Proc),
// and the run's tasks receive with RecvTask and send with SendFrom, parking.
// Requests of Snapshot and WriteTrace, which any goroutine may make, are
// written to the Conn by their goroutine, and their answers come through
// the reading task. That task keeps its run going until Close, or until
// the child closes its end. It returns the error of socket.Proc, if any.
func ChildTask(t *sched.Task, name string, p *proc.Process) (*Peer, error) {
	return newPeer(name, p.PID(), p.Conn(), true).serve(t)
}

// ParentTask is Parent for a child whose tasks talk to the parent, read by
// a task of t's run as with ChildTask. The reading task ends when the parent
// closes the Conn, or at Close.
func ParentTask(t *sched.Task, c *proc.Conn) (*Peer, error) {
	return newPeer("parent", os.Getppid(), c, false).serve(t)
}

func newPeer(name string, pid int, c *proc.Conn, child bool) *Peer {
	return &Peer{
		name: name, pid: pid, child: child, c: c,
		lane:    peerLaneBase + int(lanes.Add(1)),
		done:    make(chan struct{}),
		pending: make(map[uint64]chan []byte),
	}
}

// register makes p seen by snapshots and traces.
func (p *Peer) register() {
	registry.mu.Lock()
	registry.peers = append(registry.peers, p)
	if p.child {
		registry.children = append(registry.children, p)
	}
	registry.mu.Unlock()
}

// start starts p's reader on a goroutine.
func (p *Peer) start() *Peer {
	p.msgs = make(chan msg, 256)
	p.register()
	go func() {
		defer close(p.done)
		p.finish(p.read(p.c.Recv, func(m msg) { p.msgs <- m }, func(kind byte, body []byte) {
			p.c.Send(p.answer(context.Background(), kind, body)) // a failed send ends the Conn, which the reader sees next
		}))
	}()
	return p
}

// serve starts p's reader as a task of t's run.
func (p *Peer) serve(t *sched.Task) (*Peer, error) {
	pc, err := socket.Proc(t, p.c)
	if err != nil {
		return nil, fmt.Errorf("inspect: %s: %w", p.name, err)
	}
	p.pc, p.tmsgs = pc, sched.NewChan[msg](256)
	p.register()
	t.GoNamed("inspect peer "+p.name, func(t *sched.Task) error {
		var err error
		defer func() {
			if err == nil {
				err = t.Context().Err() // unwound, parked on tmsgs: its context ended
			}
			p.finish(err)
			p.tmsgs.Close()
			close(p.done)
		}()
		err = p.read(func() ([]byte, error) { return pc.Recv(t) }, func(m msg) { p.tmsgs.Send(t, m) }, func(kind byte, body []byte) {
			// A snapshot reads /proc, and asks this process's own
			// children and waits: off the scheduler's threads.
			out, _ := sched.Await(t, func(ctx context.Context) ([]byte, error) { return p.answer(ctx, kind, body), nil })
			pc.Send(t, out) // a failed send ends the Conn, which the reader sees next
		})
		return nil
	})
	return p, nil
}

// Name returns the Peer's name: the child's, or "parent".
func (p *Peer) Name() string { return p.name }

// Send sends msg to the other side. It may be called from any goroutine;
// like proc.Conn.Send it blocks until the kernel has the message. A task
// calls SendFrom instead.
func (p *Peer) Send(msg []byte) error {
	return p.c.Send(append([]byte{kindMsg}, msg...))
}

// SendFrom sends msg to the other side for task t, which must be the
// running task calling it. In a trace with Config.Timeline, an arrow goes
// from t's run segment to the moment the other side received msg. On a
// Peer that a task reads (ChildTask, ParentTask), t must be of that task's
// run, and parks while the socket's buffer is full. On another, it blocks
// the task's thread while the kernel takes msg: for small messages, a
// moment.
func (p *Peer) SendFrom(t *sched.Task, msg []byte) error {
	registry.mu.Lock()
	recs := slices.Clone(registry.recs)
	registry.mu.Unlock()
	var flow uint64
	for _, r := range recs {
		if flow = r.messageOut(t, p.name); flow != 0 {
			break
		}
	}
	var b []byte
	if flow == 0 {
		b = append([]byte{kindMsg}, msg...)
	} else {
		b = make([]byte, headerLen+len(msg))
		b[0] = kindMsgFlow
		binary.BigEndian.PutUint64(b[1:], flow)
		copy(b[headerLen:], msg)
	}
	if p.pc != nil {
		return p.pc.Send(t, b)
	}
	return p.c.Send(b)
}

// Recv returns the next message of the program from the other side. It
// blocks until one comes, or returns the error that ended the Conn (io.EOF
// when the other side closed it) once the messages received are read.
// Called from a task, it belongs in sched.Await. On a Peer that a task
// reads (ChildTask, ParentTask) it panics: call RecvTask.
func (p *Peer) Recv() ([]byte, error) {
	if p.pc != nil {
		panic("inspect: Recv on a Peer that a task reads (ChildTask, ParentTask): call RecvTask")
	}
	select {
	case m := <-p.msgs:
		return m.data, nil
	case <-p.done:
		select {
		case m := <-p.msgs:
			return m.data, nil
		default:
			return nil, p.err
		}
	}
}

// RecvTask is Recv for task t of the run whose task reads the Peer
// (ChildTask, ParentTask): it parks t until a message comes. On a Peer that
// its goroutine reads (Child, Parent) it panics: call Recv, through
// sched.Await.
func (p *Peer) RecvTask(t *sched.Task) ([]byte, error) {
	if p.pc == nil {
		panic("inspect: RecvTask on a Peer that its goroutine reads (Child, Parent): call Recv, through sched.Await")
	}
	m, ok := p.tmsgs.Recv(t)
	if !ok {
		return nil, p.err // set before the reader closed tmsgs
	}
	return m.data, nil
}

// Close closes the Conn (which tells a child to finish) and removes the
// Peer from snapshots and traces. On a Peer that its goroutine reads, it
// waits for that reader to end. On one that a task reads, it must be
// called by a task of that run: the reading task wakes and ends, and its
// run, not Close, waits for it.
func (p *Peer) Close() error {
	var err error
	if p.pc != nil {
		err = p.pc.Close()
	} else {
		err = p.c.Close()
		<-p.done
	}
	registry.mu.Lock()
	registry.peers = slices.DeleteFunc(registry.peers, func(x *Peer) bool { return x == p })
	registry.children = slices.DeleteFunc(registry.children, func(x *Peer) bool { return x == p })
	registry.mu.Unlock()
	return err
}

// read reads every frame of the Conn with recv until the Conn ends, and
// returns why it ended: it hands the program's messages to deliver, the
// answers to the requests that wait for them, and the other side's
// requests to answer.
func (p *Peer) read(recv func() ([]byte, error), deliver func(msg), answer func(kind byte, body []byte)) error {
	for {
		b, err := recv()
		if err != nil {
			return err
		}
		if len(b) == 0 {
			p.bad.Add(1)
			continue
		}
		kind, body := b[0], b[1:]
		switch kind {
		case kindMsg:
			deliver(msg{data: body})
		case kindMsgFlow:
			if len(body) < idLen {
				p.bad.Add(1)
				continue
			}
			p.received(binary.BigEndian.Uint64(body))
			deliver(msg{data: body[idLen:]})
		case kindSnapReq, kindTraceReq:
			if len(body) < idLen {
				p.bad.Add(1)
				continue
			}
			answer(kind, body)
		case kindSnapResp, kindTraceResp, kindErrResp:
			if len(body) < idLen {
				p.bad.Add(1)
				continue
			}
			id := binary.BigEndian.Uint64(body)
			p.mu.Lock()
			ch := p.pending[id]
			delete(p.pending, id)
			p.mu.Unlock()
			if ch != nil {
				ch <- b // buffered: never blocks
			}
		default:
			p.bad.Add(1)
		}
	}
}

// finish records that the reader ended with err: no answer can come.
func (p *Peer) finish(err error) {
	p.err = err
	p.mu.Lock()
	p.ended = true
	for id, ch := range p.pending {
		close(ch)
		delete(p.pending, id)
	}
	p.mu.Unlock()
}

// received records the end of a message arrow on p's lane.
func (p *Peer) received(flow uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.events) >= defaultMaxEvents {
		p.dropped++
		return
	}
	p.events = append(p.events, event{kind: evMsgIn, ts: clock(), link: flow})
}

// answer makes the answer to a request of the other side: a snapshot or a
// trace of this process, with its own children, or the error that kept it
// from being made.
func (p *Peer) answer(ctx context.Context, kind byte, body []byte) []byte {
	id := body[:idLen]
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var v any
	resp := kindSnapResp
	if kind == kindSnapReq {
		opts := Options{EnvValues: len(body) > idLen && body[idLen]&1 != 0}
		v = Snapshot(ctx, opts).Process
	} else {
		resp = kindTraceResp
		v = gather(ctx)
	}
	js, err := json.Marshal(v)
	if err == nil && len(js)+headerLen > p.c.MaxFrame() {
		err = fmt.Errorf("inspect: answer of %d bytes is over the frame maximum %d", len(js), p.c.MaxFrame())
	}
	if err != nil {
		resp, js = kindErrResp, []byte(err.Error())
	}
	out := make([]byte, 0, headerLen+len(js))
	out = append(out, resp)
	out = append(out, id...)
	return append(out, js...)
}

// request sends a request of kind with extra bytes and waits for its
// answer, returning its body after the id.
func (p *Peer) request(ctx context.Context, kind byte, extra []byte, timeout time.Duration) ([]byte, byte, error) {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	id := p.reqs.Add(1)
	ch := make(chan []byte, 1)
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		return nil, 0, fmt.Errorf("inspect: %s: %w", p.name, p.readErr())
	}
	p.pending[id] = ch
	p.mu.Unlock()
	forget := func() {
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
	}
	req := make([]byte, headerLen, headerLen+len(extra))
	req[0] = kind
	binary.BigEndian.PutUint64(req[1:], id)
	req = append(req, extra...)
	if err := p.c.Send(req); err != nil {
		// Only a Conn that is closed or broken refuses a request this small.
		forget()
		return nil, 0, fmt.Errorf("inspect: %s: connection ended: %w", p.name, err)
	}
	select {
	case b, ok := <-ch:
		if !ok {
			return nil, 0, fmt.Errorf("inspect: %s: %w", p.name, p.readErr())
		}
		if b[0] == kindErrResp {
			return nil, 0, fmt.Errorf("inspect: %s: %s", p.name, b[headerLen:])
		}
		return b[headerLen:], b[0], nil
	case <-ctx.Done():
		forget()
		return nil, 0, fmt.Errorf("%w from %s: %w", ErrNoAnswer, p.name, context.Cause(ctx))
	}
}

func (p *Peer) readErr() error {
	<-p.done
	return fmt.Errorf("connection ended: %w", p.err)
}

// Snapshot asks the other side for the snapshot of its process (with its
// own children) and waits for it, at most opts.Timeout.
func (p *Peer) Snapshot(ctx context.Context, opts Options) (*Process, error) {
	var flags byte
	if opts.EnvValues {
		flags |= 1
	}
	b, kind, err := p.request(ctx, kindSnapReq, []byte{flags}, opts.Timeout)
	if err != nil {
		return nil, err
	}
	if kind != kindSnapResp {
		return nil, fmt.Errorf("%w from %s: frame kind %d", ErrBadAnswer, p.name, kind)
	}
	var process Process
	if err := json.Unmarshal(b, &process); err != nil {
		return nil, fmt.Errorf("%w from %s: %v", ErrBadAnswer, p.name, err)
	}
	return &process, nil
}

// snapshot is p's entry among the children of the tree.
func (p *Peer) snapshot(ctx context.Context, opts Options) ChildProcess {
	c := ChildProcess{Name: p.name, PID: p.pid}
	process, err := p.Snapshot(ctx, opts)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	c.Process = process
	return c
}
