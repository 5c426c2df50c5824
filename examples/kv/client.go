package main

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/socket"
)

// The two ways a request can fail. A client that keeps a history of what
// it did must tell them apart: an operation that certainly did not happen
// is left out, and one that may have happened may have taken effect at any
// time after it was asked, or never.
var (
	// ErrNotDone: the request certainly had no effect. No replica took
	// it: none was reached, or each refused it.
	ErrNotDone = errors.New("kv: not done")
	// ErrUnknown: the request may have had its effect, or not. It reached
	// a replica, and no answer came back (a timeout, a connection reset,
	// a crash), or the replica lost track of it.
	ErrUnknown = errors.New("kv: outcome unknown")
)

// Client sends requests to the cluster's leader, and finds it. One task at
// a time may use a Client.
type Client struct {
	Peers []string // the replicas' addresses
	// Timeout bounds one attempt: a connection, a request and its answer
	// (1 s if zero).
	Timeout time.Duration
	// Patience bounds how long Do goes on asking replicas that refuse a
	// request (5 s if zero).
	Patience time.Duration

	leader int // where to try first
	conns  []*conn
	out    []byte
}

// conn is a connection to a replica, read through a buffer by whichever
// task uses the Client.
type conn struct {
	c  *socket.Conn
	t  *sched.Task
	br *bufio.Reader
	in []byte
}

func (c *conn) Read(p []byte) (int, error) { return c.c.Read(c.t, p) }

// retryDelay is how long Do waits before it asks again after a refusal.
const retryDelay = 20 * time.Millisecond

// Do carries out cmd on the cluster's leader, by t, and returns the
// answer. Its error wraps ErrNotDone if the request certainly had no effect,
// and ErrUnknown if it may have had one. It never sends a request again once
// it may have reached a replica: a write that timed out and was sent again
// could take effect twice.
func (cl *Client) Do(t *sched.Task, cmd command) (answer, error) {
	if cl.conns == nil {
		cl.conns = make([]*conn, len(cl.Peers))
	}
	patience := cmp.Or(cl.Patience, 5*time.Second)
	deadline := t.Now().Add(patience)
	i := cl.leader
	for {
		a, err := cl.ask(t, i, cmd)
		switch {
		case errors.Is(err, ErrUnknown):
			return answer{}, err
		case err != nil:
			i = (i + 1) % len(cl.Peers) // it did not get the request
		case a.status == statusOK:
			cl.leader = i
			return a, nil
		case a.status == statusUnknown:
			return answer{}, fmt.Errorf("%w: replica %d lost track of the request", ErrUnknown, i)
		case a.status == statusNotLeader && a.leader >= 0 && a.leader != i:
			i = a.leader
		case a.status == statusNotLeader:
			i = (i + 1) % len(cl.Peers)
		case a.status == statusDropped:
			// Another leader's entry took the place of the request's:
			// it had no effect, and may go again, to the same replica.
		}
		if !t.Now().Before(deadline) {
			return answer{}, fmt.Errorf("%w: no leader took the request in %v", ErrNotDone, patience)
		}
		t.Sleep(retryDelay)
	}
}

// Status asks replica i how it is: its term, whether it leads, and the last
// index it applied.
func (cl *Client) Status(t *sched.Task, i int) (answer, error) {
	if cl.conns == nil {
		cl.conns = make([]*conn, len(cl.Peers))
	}
	return cl.ask(t, i, command{op: opStatus})
}

// ask sends cmd to replica i and reads its answer. An error that does not
// wrap ErrUnknown means that the request did not reach the replica whole.
func (cl *Client) ask(t *sched.Task, i int, cmd command) (answer, error) {
	timeout := cmp.Or(cl.Timeout, time.Second)
	c := cl.conns[i]
	if c == nil {
		d := socket.Dialer{Timeout: timeout}
		sc, err := d.Dial(t, "tcp", cl.Peers[i])
		if err != nil {
			return answer{}, err
		}
		c = &conn{c: sc}
		c.br = bufio.NewReader(c)
		cl.conns[i] = c
	}
	c.t = t
	c.c.SetDeadline(t.Now().Add(timeout))
	cl.out = cmd.encode(cl.out)
	if _, err := c.c.Write(t, cl.out); err != nil {
		// Not all of the frame left, and a replica acts on whole
		// frames only.
		cl.drop(i)
		return answer{}, err
	}
	k, d, buf, err := readFrame(c.br, c.in)
	c.in = buf
	if err == nil && k != reply {
		err = errMalformed
	}
	var a answer
	if err == nil {
		a = decodeAnswer(d)
		err = d.err
	}
	if err != nil {
		// A late answer must not pass for the next request's: this
		// connection is done.
		cl.drop(i)
		return answer{}, fmt.Errorf("%w: %v", ErrUnknown, err)
	}
	return a, nil
}

func (cl *Client) drop(i int) {
	cl.conns[i].c.Close()
	cl.conns[i] = nil
}

// Close closes the Client's connections.
func (cl *Client) Close() {
	for i, c := range cl.conns {
		if c != nil {
			cl.drop(i)
		}
	}
}
