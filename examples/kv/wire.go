package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// The bytes on the wire and on the disk. Every message is a frame: its
// length as a uvarint, then its body, whose first byte says what it is. The
// fields are uvarints and length-prefixed strings, in a fixed order: a
// codec of a few lines, cheaper than encoding/json in a simulation that
// sends a million messages.

// kind is what a message is.
type kind uint8

const (
	voteReq    kind = iota + 1 // a candidate asks for a vote
	voteResp                   // the answer
	appendReq                  // a leader sends entries, or a heartbeat
	appendResp                 // the answer
	request                    // a client's request
	reply                      // the answer to a client
)

// msg is a message between replicas. Its fields mean, by kind:
//
//	voteReq     index, logTerm: the candidate's last entry
//	voteResp    ok: the vote was granted
//	appendReq   index, logTerm: the entry before entries; commit: the
//	            leader's commit index; compact: every replica has the
//	            log up to here, and may fold it into its snapshot
//	appendResp  ok: the entries fit; index: then the last index known
//	            to match the leader's log, else where to try next
type msg struct {
	kind    kind
	term    uint64 // the sender's term
	from    int    // the sender's ID
	index   uint64
	logTerm uint64
	commit  uint64
	compact uint64
	ok      bool
	entries []entry
}

// op is what a command does.
type op uint8

const (
	opNoop   op = iota // a new leader's first entry
	opGet              // read key
	opPut              // set key to value
	opAppend           // append value to key's value
	opCAS              // set key to value if it is old
	opStatus           // a client asks the replica how it is (never in the log)
)

// command is what a client asks, and what the log holds.
type command struct {
	op              op
	key, value, old string
}

// entry is an entry of the log: a command, and the term of the leader that
// took it.
type entry struct {
	term uint64
	cmd  command
}

// status is how a replica answers a request.
type status uint8

const (
	statusOK        status = iota + 1 // done: the answer is in value and swapped
	statusNotLeader                   // refused, not done: try leader
	statusDropped                     // not done: another entry took its place in the log
	statusUnknown                     // the replica lost track of it: it may be done or not
)

// answer is a replica's answer to a client's request.
type answer struct {
	status  status
	from    int // the replica that answers
	leader  int // the leader it knows of, or -1
	value   string
	swapped bool
	// For opStatus: the replica's term, whether it leads, and the last
	// index it applied.
	term    uint64
	leading bool
	applied uint64
}

// encoder appends fields to a buffer.
type encoder struct{ b []byte }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int)     { e.uint(uint64(v + 1)) } // -1 is 0
func (e *encoder) bool(v bool) {
	if v {
		e.uint(1)
	} else {
		e.uint(0)
	}
}
func (e *encoder) string(s string) { e.uint(uint64(len(s))); e.b = append(e.b, s...) }

func (e *encoder) command(c command) {
	e.uint(uint64(c.op))
	e.string(c.key)
	e.string(c.value)
	e.string(c.old)
}

func (e *encoder) entries(es []entry) {
	e.uint(uint64(len(es)))
	for _, x := range es {
		e.uint(x.term)
		e.command(x.cmd)
	}
}

// decoder reads fields from a buffer, and remembers the first error: a
// malformed frame reads as zeros, and err says why.
type decoder struct {
	b   []byte
	err error
}

var errMalformed = errors.New("kv: malformed message")

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errMalformed
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int   { return int(d.uint()) - 1 }
func (d *decoder) bool() bool { return d.uint() != 0 }

func (d *decoder) string() string {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.err = errMalformed
		d.b = nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) command() command {
	return command{op: op(d.uint()), key: d.string(), value: d.string(), old: d.string()}
}

func (d *decoder) entries() []entry {
	n := d.uint()
	if n > uint64(len(d.b))/5 { // an entry takes 5 bytes at least
		d.err = errMalformed
		return nil
	}
	es := make([]entry, n)
	for i := range es {
		es[i] = entry{term: d.uint(), cmd: d.command()}
	}
	return es
}

// frame starts a frame in buf: room for its length, then k. end finishes it.
func frame(buf []byte, k kind) encoder {
	return encoder{append(buf[:0], 0, 0, 0, 0, byte(k))}
}

// end writes the body's length in front of it, in the room frame left (a
// uvarint of 4 bytes at most: a frame holds less than 256 MiB), and returns
// the frame.
func (e *encoder) end() []byte {
	n := len(e.b) - 4
	var l [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(l[:], uint64(n))
	start := 4 - k
	copy(e.b[start:], l[:k])
	return e.b[start:]
}

func (m *msg) encode(buf []byte) []byte {
	e := frame(buf, m.kind)
	e.uint(m.term)
	e.int(m.from)
	e.uint(m.index)
	e.uint(m.logTerm)
	e.uint(m.commit)
	e.uint(m.compact)
	e.bool(m.ok)
	e.entries(m.entries)
	return e.end()
}

func decodeMsg(k kind, d *decoder) msg {
	return msg{kind: k, term: d.uint(), from: d.int(), index: d.uint(), logTerm: d.uint(),
		commit: d.uint(), compact: d.uint(), ok: d.bool(), entries: d.entries()}
}

func (c command) encode(buf []byte) []byte {
	e := frame(buf, request)
	e.command(c)
	return e.end()
}

func (a *answer) encode(buf []byte) []byte {
	e := frame(buf, reply)
	e.uint(uint64(a.status))
	e.int(a.from)
	e.int(a.leader)
	e.string(a.value)
	e.bool(a.swapped)
	e.uint(a.term)
	e.bool(a.leading)
	e.uint(a.applied)
	return e.end()
}

func decodeAnswer(d *decoder) answer {
	return answer{status: status(d.uint()), from: d.int(), leader: d.int(), value: d.string(),
		swapped: d.bool(), term: d.uint(), leading: d.bool(), applied: d.uint()}
}

// maxFrame bounds what a reader accepts: a peer's garbage is not an
// allocation of gigabytes.
const maxFrame = 16 << 20

// readFrame reads the next frame from r into buf, and returns its kind and
// a decoder of the rest of its body.
func readFrame(r *bufio.Reader, buf []byte) (kind, *decoder, []byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, nil, buf, err
	}
	if n == 0 || n > maxFrame {
		return 0, nil, buf, fmt.Errorf("%w: a frame of %d bytes", errMalformed, n)
	}
	buf = slices.Grow(buf[:0], int(n))[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, buf, err
	}
	return kind(buf[0]), &decoder{b: buf[1:]}, buf, nil
}
