package main

import (
	"bufio"
	"bytes"
	"reflect"
	"testing"
)

var sampleMsgs = []msg{
	{kind: voteReq, term: 3, from: 1, index: 17, logTerm: 2},
	{kind: voteResp, term: 3, from: 0, ok: true},
	{kind: appendReq, term: 4, from: 2, index: 9, logTerm: 3, commit: 8, compact: 5, entries: []entry{
		{term: 3, cmd: put("x", "1")}, {term: 4, cmd: cas("x", "1", "12")}, {term: 4, cmd: command{op: opNoop}},
	}},
	{kind: appendResp, term: 4, from: 1, index: 12, ok: true},
}

// Messages and answers come out of the wire as they went in.
func TestWireRoundTrip(t *testing.T) {
	var stream []byte
	for _, m := range sampleMsgs {
		stream = append(stream, m.encode(nil)...)
	}
	a := answer{status: statusOK, from: 2, leader: -1, value: "héllo", swapped: true, term: 7, leading: true, applied: 99}
	stream = append(stream, a.encode(nil)...)
	r := bufio.NewReader(bytes.NewReader(stream))
	for _, want := range sampleMsgs {
		k, d, _, err := readFrame(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := decodeMsg(k, d)
		if d.err != nil || !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Fatalf("got %+v (%v), want %+v", got, d.err, want)
		}
	}
	k, d, _, err := readFrame(r, nil)
	if err != nil || k != reply {
		t.Fatalf("kind %d, %v", k, err)
	}
	if got := decodeAnswer(d); got != a || d.err != nil {
		t.Fatalf("got %+v (%v), want %+v", got, d.err, a)
	}
}

// normalize makes no entries and an empty slice of them equal.
func normalize(m msg) msg {
	if len(m.entries) == 0 {
		m.entries = nil
	}
	return m
}

// The stored state decodes to what was encoded.
func TestStateRoundTrip(t *testing.T) {
	r := &replica{term: 5, votedFor: 2, snapIndex: 40, snapTerm: 4,
		snap: map[string]string{"a": "1", "b": ""}, log: sampleMsgs[2].entries}
	s := &replica{snap: map[string]string{}}
	if err := s.decodeState(r.encodeState(nil)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, s) {
		t.Fatalf("got %+v, want %+v", s, r)
	}
}

// Nothing a peer or a client sends panics the replica or the client that
// reads it.
func FuzzWire(f *testing.F) {
	for _, m := range sampleMsgs {
		f.Add(m.encode(nil))
	}
	f.Add((&answer{status: statusNotLeader}).encode(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			k, d, _, err := readFrame(r, nil)
			if err != nil {
				return
			}
			if k == reply {
				decodeAnswer(d)
			} else {
				decodeMsg(k, d)
			}
		}
	})
}
