package main

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/socket"
)

// Config is a replica's place in the cluster, and how it behaves.
type Config struct {
	ID    int      // its index in Peers
	Peers []string // the address of every replica, its own included
	Disk  Disk     // where it keeps its state
	// Rand draws the election timeouts: from the seed, in a simulation.
	Rand *rand.Rand

	// Heartbeat is how often a leader sends to its followers (50 ms if
	// zero). A follower that hears from no leader for a random time
	// between ElectionTimeout and twice that (300 ms if zero) stands for
	// election.
	Heartbeat       time.Duration
	ElectionTimeout time.Duration

	// EarlyAck is a bug: a leader answers a request as soon as the entry is
	// on its own disk, before a majority has it, as a primary that
	// replicates to its backups asynchronously does. A leader that crashes,
	// or is cut off, before the others have the entry then loses a write it
	// acknowledged: the next leader never had it.
	EarlyAck bool
}

// Serve runs a replica of cfg on the listener l until t's context ends,
// and returns the error that stopped it, if any. In a simulated world, it
// runs until its host crashes.
func Serve(t *sched.Task, l *socket.Listener, cfg Config) error {
	r, err := load(t, cfg)
	if err != nil {
		return err
	}
	t.GoNamed("accept", func(t *sched.Task) error { return r.accept(t, l) })
	for p := range cfg.Peers {
		if p != cfg.ID {
			t.GoNamed(fmt.Sprintf("send to %d", p), func(t *sched.Task) error { r.sendTo(t, p); return nil })
		}
	}
	return r.run(t)
}

type role uint8

const (
	follower role = iota
	candidate
	leader
)

// replica is the state of one replica, owned by the task that runs run:
// the other tasks talk to it through its inbox and outboxes only.
type replica struct {
	cfg Config

	// What the disk keeps. The log holds the entries after snapIndex;
	// those up to it are folded into snap, the state they leave.
	term      uint64
	votedFor  int // -1: no vote in this term
	snapIndex uint64
	snapTerm  uint64
	snap      map[string]string
	log       []entry

	// What a crash forgets.
	role    role
	leader  int // -1: none known
	votes   uint64
	commit  uint64 // the last index known to be on a majority
	applied uint64 // the last index applied to kv
	kv      map[string]string
	durable uint64   // the last index of the log as last stored
	next    []uint64 // the leader's next index to send to each replica
	match   []uint64 // and the last index known to match there
	// compactTo is how far the leader says every replica has the log.
	compactTo uint64
	waiting   map[uint64]waiter // the clients waiting for each index

	dirty   bool     // the state changed since it was stored
	state   []byte   // the buffer of its encoding
	notify  []bool   // the leader sends entries to each replica once stored
	outbox  []outMsg // and these messages
	answers []outAnswer
	timer   *sched.Timer

	inbox   *sched.Chan[event]
	senders []*sched.Chan[msg] // to the task that sends to each replica
}

// event is what comes to a replica: a message from another, or a client's
// request, with the channel for its answer.
type event struct {
	m     msg
	cmd   command
	reply *sched.Chan[answer]
}

// waiter is a client waiting for the entry its request became, in term.
type waiter struct {
	term  uint64
	reply *sched.Chan[answer]
}

type outMsg struct {
	to int
	m  msg
}

type outAnswer struct {
	reply *sched.Chan[answer]
	a     answer
}

// load makes a replica of cfg, in the state its disk kept.
func load(t *sched.Task, cfg Config) (*replica, error) {
	cfg.Heartbeat = cmp.Or(cfg.Heartbeat, 50*time.Millisecond)
	cfg.ElectionTimeout = cmp.Or(cfg.ElectionTimeout, 300*time.Millisecond)
	n := len(cfg.Peers)
	r := &replica{
		cfg: cfg, votedFor: -1, leader: -1, snap: map[string]string{},
		next: make([]uint64, n), match: make([]uint64, n), notify: make([]bool, n),
		waiting: map[uint64]waiter{},
		inbox:   sched.NewChan[event](64),
	}
	for range n {
		r.senders = append(r.senders, sched.NewChan[msg](64))
	}
	data, err := cfg.Disk.Load(t)
	if err != nil {
		return nil, err
	}
	if data != nil {
		if err := r.decodeState(data); err != nil {
			return nil, err
		}
	}
	r.kv = maps.Clone(r.snap)
	r.commit, r.applied, r.durable = r.snapIndex, r.snapIndex, r.lastIndex()
	return r, nil
}

// run is the replica's loop. It takes what came, a batch at a time: it
// handles each event, stores the state if it changed, and only then
// applies what is committed and sends what it has to send. So nothing
// leaves the replica before the state it depends on is durable: a vote,
// an acknowledgement of entries, an answer to a client.
func (r *replica) run(t *sched.Task) error {
	r.timer = sched.NewTimer(t, r.electionTimeout())
	for {
		sched.Select(t,
			sched.OnRecv(r.inbox, func(ev event, _ bool) { r.handle(ev) }),
			sched.OnRecv(r.timer.C, func(time.Time, bool) { r.tick() }))
		for range r.inbox.Cap() {
			ev, _, ok := r.inbox.TryRecv(t)
			if !ok {
				break
			}
			r.handle(ev)
		}
		if r.dirty {
			r.state = r.encodeState(r.state[:0])
			if err := r.cfg.Disk.Store(t, r.state); err != nil {
				return fmt.Errorf("kv: storing the state: %w", err)
			}
			r.dirty = false
		}
		r.durable = r.lastIndex()
		if r.role == leader {
			r.advanceCommit()
		}
		upTo := r.commit
		if r.cfg.EarlyAck && r.role == leader {
			upTo = r.durable // the bug
		}
		r.apply(upTo)
		r.compact()
		r.flush(t)
	}
}

func (r *replica) electionTimeout() time.Duration {
	d := r.cfg.ElectionTimeout
	return d + time.Duration(r.cfg.Rand.Int64N(int64(d)))
}

func (r *replica) lastIndex() uint64 { return r.snapIndex + uint64(len(r.log)) }

// termAt returns the term of the entry at index i, from snapIndex on.
func (r *replica) termAt(i uint64) uint64 {
	if i == r.snapIndex {
		return r.snapTerm
	}
	return r.log[i-r.snapIndex-1].term
}

func (r *replica) send(to int, m msg) {
	m.term, m.from = r.term, r.cfg.ID
	r.outbox = append(r.outbox, outMsg{to, m})
}

func (r *replica) reply(ch *sched.Chan[answer], a answer) {
	a.from, a.leader = r.cfg.ID, r.leader
	r.answers = append(r.answers, outAnswer{ch, a})
}

func (r *replica) majority(votes int) bool { return 2*votes > len(r.cfg.Peers) }

// handle handles an event.
func (r *replica) handle(ev event) {
	if ev.reply != nil {
		r.request(ev.cmd, ev.reply)
		return
	}
	m := ev.m
	if m.term > r.term {
		// A newer term: whatever this replica was, it follows now.
		r.term, r.votedFor, r.role, r.leader = m.term, -1, follower, -1
		r.dirty = true
	}
	switch m.kind {
	case voteReq:
		r.voteRequest(m)
	case voteResp:
		if r.role == candidate && m.term == r.term && m.ok {
			r.votes |= 1 << m.from
			if r.majority(bits.OnesCount64(r.votes)) {
				r.becomeLeader()
			}
		}
	case appendReq:
		r.appendRequest(m)
	case appendResp:
		r.appendResponse(m)
	}
}

// tick is the timer: a leader's heartbeat, or another's election timeout.
func (r *replica) tick() {
	if r.role == leader {
		r.sendEntries()
		r.timer.Reset(r.cfg.Heartbeat)
		return
	}
	r.term++
	r.role, r.votedFor, r.leader, r.votes = candidate, r.cfg.ID, -1, 1<<r.cfg.ID
	r.dirty = true
	for p := range r.cfg.Peers {
		if p != r.cfg.ID {
			r.send(p, msg{kind: voteReq, index: r.lastIndex(), logTerm: r.termAt(r.lastIndex())})
		}
	}
	r.timer.Reset(r.electionTimeout())
	if r.majority(1) {
		r.becomeLeader()
	}
}

// voteRequest grants a vote to a candidate of this term if this replica
// voted for no other, and the candidate's log has every entry this one has
// that may be committed: its last entry is of a later term, or of the same
// term and no shorter (Raft's election restriction).
func (r *replica) voteRequest(m msg) {
	last := r.lastIndex()
	upToDate := m.logTerm > r.termAt(last) || m.logTerm == r.termAt(last) && m.index >= last
	ok := m.term == r.term && (r.votedFor == -1 || r.votedFor == m.from) && upToDate
	if ok {
		r.votedFor = m.from
		r.dirty = true
		r.timer.Reset(r.electionTimeout())
	}
	r.send(m.from, msg{kind: voteResp, ok: ok})
}

func (r *replica) becomeLeader() {
	r.role, r.leader = leader, r.cfg.ID
	for p := range r.cfg.Peers {
		r.next[p], r.match[p] = r.lastIndex()+1, 0
	}
	// An entry of its own term commits, with it, the entries of earlier
	// terms before it, which a leader may not count as committed by
	// themselves (Raft's figure 8).
	r.appendEntry(entry{term: r.term, cmd: command{op: opNoop}})
	r.sendEntries()
	r.timer.Reset(r.cfg.Heartbeat)
}

func (r *replica) appendEntry(e entry) {
	r.log = append(r.log, e)
	r.dirty = true
}

// request handles a client's request: a leader appends it to its log, and
// answers once it applies it.
func (r *replica) request(cmd command, ch *sched.Chan[answer]) {
	switch {
	case cmd.op == opStatus:
		r.reply(ch, answer{status: statusOK, term: r.term, leading: r.role == leader, applied: r.applied})
	case r.role != leader:
		r.reply(ch, answer{status: statusNotLeader})
	default:
		r.appendEntry(entry{term: r.term, cmd: cmd})
		r.waiting[r.lastIndex()] = waiter{r.term, ch}
		r.sendEntries()
	}
}

// sendEntries makes the leader send each follower the entries it lacks, or
// a heartbeat, once the state is stored.
func (r *replica) sendEntries() {
	for p := range r.notify {
		r.notify[p] = p != r.cfg.ID
	}
}

// maxEntries bounds the entries of one message.
const maxEntries = 64

func (r *replica) appendTo(p int) msg {
	// Every replica has the log up to snapIndex (see compact), so the
	// leader never needs to send what it folded into its snapshot.
	next := max(r.next[p], r.snapIndex+1)
	prev := next - 1
	end := min(r.lastIndex(), prev+maxEntries)
	return msg{kind: appendReq, index: prev, logTerm: r.termAt(prev), commit: r.commit,
		compact: r.compactPoint(), entries: r.log[prev-r.snapIndex : end-r.snapIndex]}
}

// appendRequest takes a leader's entries, if they follow on from an entry
// this replica has.
func (r *replica) appendRequest(m msg) {
	if m.term < r.term {
		r.send(m.from, msg{kind: appendResp, index: r.lastIndex()}) // the sender learns of the new term
		return
	}
	r.role, r.leader = follower, m.from
	r.timer.Reset(r.electionTimeout())
	if m.index > r.lastIndex() {
		r.send(m.from, msg{kind: appendResp, index: r.lastIndex()})
		return
	}
	if m.index >= r.snapIndex && r.termAt(m.index) != m.logTerm {
		// Skip the entries of the conflicting term at once, but not below
		// the commit index: those are the leader's too.
		i, conflict := m.index, r.termAt(m.index)
		for i > r.commit && i > r.snapIndex && r.termAt(i-1) == conflict {
			i--
		}
		r.send(m.from, msg{kind: appendResp, index: max(i-1, r.commit)})
		return
	}
	i := m.index
	for _, e := range m.entries {
		i++
		if i <= r.snapIndex {
			continue // committed, and folded into the snapshot
		}
		if i <= r.lastIndex() {
			if r.termAt(i) == e.term {
				continue // the same entry (Raft's log matching)
			}
			r.truncate(i)
		}
		r.appendEntry(e)
	}
	r.commit = max(r.commit, min(m.commit, i))
	r.compactTo = max(r.compactTo, min(m.compact, i))
	r.send(m.from, msg{kind: appendResp, ok: true, index: i})
}

// truncate drops the entries from index i on, which conflict with the
// leader's: they were never committed.
func (r *replica) truncate(i uint64) {
	if i <= r.commit {
		panic(fmt.Sprintf("kv: replica %d: truncating its log at %d, below its commit index %d", r.cfg.ID, i, r.commit))
	}
	for j := i; j <= r.lastIndex(); j++ {
		if w, ok := r.waiting[j]; ok {
			// The request is not at j any more, but a copy of it may
			// be on another replica, which may lead one day and commit
			// it: its outcome is unknown.
			delete(r.waiting, j)
			r.reply(w.reply, answer{status: statusUnknown})
		}
	}
	// A copy: messages not sent yet hold slices of the old log, and the
	// entries that replace these must not show through them.
	r.log = slices.Clone(r.log[:i-r.snapIndex-1])
	if i <= r.applied {
		// Only with EarlyAck, which applies entries not committed: apply
		// the log again from the snapshot.
		r.kv, r.applied = maps.Clone(r.snap), r.snapIndex
	}
}

func (r *replica) appendResponse(m msg) {
	if r.role != leader || m.term != r.term {
		return
	}
	p := m.from
	if !m.ok {
		r.next[p] = max(r.match[p]+1, min(r.next[p], m.index+1))
		r.notify[p] = true
		return
	}
	r.match[p] = max(r.match[p], m.index)
	r.next[p] = max(r.next[p], r.match[p]+1)
	if r.next[p] <= r.lastIndex() {
		r.notify[p] = true
	}
}

// advanceCommit moves the leader's commit index to the last entry of its
// term that a majority has, itself counted once the entry is durable.
func (r *replica) advanceCommit() {
	for i := r.lastIndex(); i > r.commit && r.termAt(i) == r.term; i-- {
		n := 0
		for p := range r.cfg.Peers {
			if p == r.cfg.ID && r.durable >= i || p != r.cfg.ID && r.match[p] >= i {
				n++
			}
		}
		if r.majority(n) {
			r.commit = i
			return
		}
	}
}

// apply applies the entries up to index upTo, and answers the clients
// waiting for them.
func (r *replica) apply(upTo uint64) {
	for r.applied < upTo {
		r.applied++
		e := r.log[r.applied-r.snapIndex-1]
		value, swapped := e.cmd.apply(r.kv)
		w, ok := r.waiting[r.applied]
		if !ok {
			continue
		}
		delete(r.waiting, r.applied)
		if w.term == e.term {
			// Its entry: one leader per term, which never changes
			// its own log at an index.
			r.reply(w.reply, answer{status: statusOK, value: value, swapped: swapped})
		} else {
			// Another entry is committed where its entry was: its
			// entry can never be committed.
			r.reply(w.reply, answer{status: statusDropped})
		}
	}
}

// apply applies the command to kv, and returns what it answers.
func (c command) apply(kv map[string]string) (value string, swapped bool) {
	switch c.op {
	case opGet:
		return kv[c.key], false
	case opPut:
		kv[c.key] = c.value
	case opAppend:
		kv[c.key] += c.value
	case opCAS:
		if kv[c.key] == c.old {
			kv[c.key] = c.value
			return "", true
		}
	}
	return "", false
}

// compactPoint is, for a leader, how far every replica has the log
// durably, and committed.
func (r *replica) compactPoint() uint64 {
	if r.role != leader {
		return 0
	}
	to := min(r.durable, r.commit)
	for p := range r.cfg.Peers {
		if p != r.cfg.ID {
			to = min(to, r.match[p])
		}
	}
	return max(to, r.compactTo)
}

// compactEvery is how many entries a replica lets its log grow by before it
// folds them into its snapshot.
const compactEvery = 32

// compact folds the log, up to where every replica has it, into the
// snapshot. Committed entries are never taken back, so no replica will ever
// need those entries again: a leader never has to send a snapshot, only
// entries. (A replica that stays down holds every log's compaction back.)
func (r *replica) compact() {
	to := min(max(r.compactTo, r.compactPoint()), r.applied)
	if to < r.snapIndex+compactEvery {
		return
	}
	for _, e := range r.log[:to-r.snapIndex] {
		e.cmd.apply(r.snap)
	}
	r.snapTerm = r.termAt(to)
	r.log = slices.Clone(r.log[to-r.snapIndex:])
	r.snapIndex = to
	r.dirty = true
}

// flush sends what the batch made to send, the state it reflects being
// durable now. A full outbox drops its message: Raft sends again what
// matters.
func (r *replica) flush(t *sched.Task) {
	for p, ok := range r.notify {
		if ok && r.role == leader {
			r.send(p, r.appendTo(p))
		}
		r.notify[p] = false
	}
	for _, o := range r.outbox {
		r.senders[o.to].TrySend(t, o.m)
	}
	for _, a := range r.answers {
		a.reply.Send(t, a.a) // a buffer of one, for this answer
	}
	clear(r.outbox)
	r.outbox = r.outbox[:0]
	clear(r.answers)
	r.answers = r.answers[:0]
}

// dialTimeout bounds a connection to a replica that does not answer.
const dialTimeout = time.Second

// sendTo sends the messages of its outbox to replica p, on a connection it
// makes again whenever it breaks. Messages that cannot go are dropped.
func (r *replica) sendTo(t *sched.Task, p int) {
	var c *socket.Conn
	var buf []byte
	d := socket.Dialer{Timeout: dialTimeout}
	for {
		m, _ := r.senders[p].Recv(t)
		if c == nil {
			var err error
			if c, err = d.Dial(t, "tcp", r.cfg.Peers[p]); err != nil {
				continue
			}
		}
		buf = m.encode(buf)
		if _, err := c.Write(t, buf); err != nil {
			c.Close()
			c = nil
		}
	}
}

// accept serves each connection, from a replica or a client, by a task of
// its own.
func (r *replica) accept(t *sched.Task, l *socket.Listener) error {
	defer l.Close()
	for {
		c, err := l.Accept(t)
		if err != nil {
			if t.Context().Err() != nil {
				return nil
			}
			return err
		}
		t.GoNamed("conn", func(t *sched.Task) error {
			defer c.Close()
			r.serveConn(t, c)
			return nil
		})
	}
}

// serveConn reads the messages of a connection: a replica's go to the
// loop; a client's requests are answered on the connection, one at a time.
func (r *replica) serveConn(t *sched.Task, c *socket.Conn) {
	br := bufio.NewReader(c.Bind(t))
	var in, out []byte
	answers := sched.NewChan[answer](1)
	for {
		k, d, buf, err := readFrame(br, in)
		in = buf
		if err != nil {
			return
		}
		switch k {
		case request:
			cmd := d.command()
			if d.err != nil {
				return
			}
			r.inbox.Send(t, event{cmd: cmd, reply: answers})
			a, _ := answers.Recv(t)
			out = a.encode(out)
			if _, err := c.Write(t, out); err != nil {
				return
			}
		case voteReq, voteResp, appendReq, appendResp:
			m := decodeMsg(k, d)
			if d.err != nil || m.from < 0 || m.from >= len(r.cfg.Peers) || m.from == r.cfg.ID {
				return
			}
			r.inbox.Send(t, event{m: m})
		default:
			return
		}
	}
}

// errBadState is the error of a stored state that does not decode.
var errBadState = errors.New("kv: the stored state is malformed")

// encodeState appends what the disk keeps to buf.
func (r *replica) encodeState(buf []byte) []byte {
	e := encoder{buf}
	e.uint(r.term)
	e.int(r.votedFor)
	e.uint(r.snapIndex)
	e.uint(r.snapTerm)
	keys := slices.Sorted(maps.Keys(r.snap))
	e.uint(uint64(len(keys)))
	for _, k := range keys {
		e.string(k)
		e.string(r.snap[k])
	}
	e.entries(r.log)
	return e.b
}

func (r *replica) decodeState(data []byte) error {
	d := decoder{b: data}
	r.term, r.votedFor, r.snapIndex, r.snapTerm = d.uint(), d.int(), d.uint(), d.uint()
	for n := d.uint(); n > 0 && d.err == nil; n-- {
		k := d.string()
		r.snap[k] = d.string()
	}
	r.log = d.entries()
	if d.err != nil {
		return errBadState
	}
	return nil
}
