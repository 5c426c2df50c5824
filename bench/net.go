package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weavert/weave/proc"
)

// Rows of the network layer: an echo server on weave (a task per connection
// on package socket, a scheduler of two threads) beside the standard
// library's (a goroutine per connection, GOMAXPROCS=2), each in a process of
// its own, driven by one load generator in a third (netchild.go). Every try
// measures both servers, one after the other, the first of them alternating
// from try to try.
//
// net/echo: N connections (1,000) to each server, opened once. In a server's
// turn, each connection sends a 64-byte message and waits for its echo before
// sending the next, for a warm-up and then a measured window: the messages
// per second, the 50th and 99th percentiles of their latency, and the
// server's CPU time per message. The client and the servers share the
// machine's CPUs, so the rate measures the client too; the CPU time per
// message is the server's alone.
//
// net/idle: a fresh pair of servers each try, so that nothing is reused from
// connections gone. N connections (10,000) are opened, with one echo over
// each, so that every connection has been served and its read buffer
// touched, and left idle: the growth of the server's resident memory,
// divided by N. Each reading follows a garbage collection that returns free
// memory to the system (debug.FreeOSMemory), so that it counts what the
// connections hold rather than how far the collector had got.

func init() {
	register(probe{name: "net/echo", layer: "network", count: 1000, quick: 50,
		rows: []rowSpec{
			{"net/echo", "msg/s"}, {"gonet/echo", "msg/s"},
			{"net/echo/p50", "ns"}, {"gonet/echo/p50", "ns"},
			{"net/echo/p99", "ns"}, {"gonet/echo/p99", "ns"},
			{"net/echo/cpu", "ns"}, {"gonet/echo/cpu", "ns"},
		},
		setupRows: echoRows})
	// A try of net/idle takes seconds (two servers, 20,000 connections
	// opened and closed), and its figures agree within a percent.
	register(probe{name: "net/idle", layer: "network", count: 10_000, quick: 200,
		rows:      []rowSpec{{"net/idle", "B"}, {"gonet/idle", "B"}},
		setupRows: idleRows, maxTries: 3})
}

// A server is one of the two measured, in the order of their rows.
type server struct{ name, entry string }

var servers = [2]server{{"weave", entryWeaveServer}, {"go", entryGoServer}}

// echoTimes returns the warm-up and the measured window of a server's turn
// in a try of net/echo.
func echoTimes(quick bool) (warmup, window time.Duration) {
	if quick {
		return 20 * time.Millisecond, 100 * time.Millisecond
	}
	return 100 * time.Millisecond, 400 * time.Millisecond
}

// echoRows opens n connections to each server once; each try runs both
// servers' turns.
func echoRows(n int, quick bool) (func() ([]float64, error), func() []string, error) {
	warmup, window := echoTimes(quick)
	var kids []*proc.Process
	stopAll := func() {
		for _, p := range kids { // the load generator first: it hangs up on the servers
			stopChild(p)
		}
	}
	load, err := startChild(entryLoad)
	if err != nil {
		return nil, nil, err
	}
	kids = append(kids, load)
	var srv [len(servers)]*proc.Process
	for i, s := range servers {
		p, addr, err := startServer(s.entry)
		if err != nil {
			stopAll()
			return nil, nil, err
		}
		kids = append(kids, p)
		srv[i] = p
		if _, err := callLoad(load, loadReq{Op: "open", Name: s.name, Addr: addr, Conns: n}); err != nil {
			stopAll()
			return nil, nil, fmt.Errorf("opening %d connections to the %s server: %w", n, s.name, err)
		}
	}
	turn := 0
	try := func() ([]float64, error) {
		// The rows: rate, p50, p99 and CPU per message, each for weave
		// and then the goroutine server.
		vals := make([]float64, 4*len(servers))
		for k := range servers {
			i := (k + turn) % len(servers)
			before, err := callServer(srv[i], usageReq{})
			if err != nil {
				return nil, err
			}
			rep, err := callLoad(load, loadReq{Op: "echo", Name: servers[i].name, Warmup: warmup, Window: window})
			if err != nil {
				return nil, fmt.Errorf("the %s server's turn: %w", servers[i].name, err)
			}
			after, err := callServer(srv[i], usageReq{})
			if err != nil {
				return nil, err
			}
			vals[i] = float64(rep.Messages) / rep.Seconds
			vals[2+i] = rep.P50
			vals[4+i] = rep.P99
			vals[6+i] = float64(after.CPU-before.CPU) / float64(rep.Total)
		}
		turn++
		return vals, nil
	}
	notes := []string{
		fmt.Sprintf("weave: a task per connection, 2 threads; %d connections, %d-byte messages, closed loop, %v turns", n, msgSize, window),
		"the standard library: a goroutine per connection, GOMAXPROCS=2",
		"latency: from a message's write to the end of its echo", "",
		"", "",
		"the server's CPU time (user + system) per message", "",
	}
	return try, func() []string { stopAll(); return notes }, nil
}

// idleRows measures, in each try, both servers fresh.
func idleRows(n int, _ bool) (func() ([]float64, error), func() []string, error) {
	load, err := startChild(entryLoad)
	if err != nil {
		return nil, nil, err
	}
	turn := 0
	try := func() ([]float64, error) {
		vals := make([]float64, len(servers))
		for k := range servers {
			i := (k + turn) % len(servers)
			v, err := idlePerConn(load, servers[i], n)
			if err != nil {
				return nil, fmt.Errorf("the %s server: %w", servers[i].name, err)
			}
			vals[i] = v
		}
		turn++
		return vals, nil
	}
	notes := []string{
		fmt.Sprintf("server's resident memory per idle connection, %d connections, after one echo each (its %d-byte buffer touched)", n, serverBuf),
		"the same, for the goroutine per connection",
	}
	return try, func() []string { stopChild(load); return notes }, nil
}

// idlePerConn starts s, opens n connections to it, and returns the growth of
// its resident memory per connection.
func idlePerConn(load *proc.Process, s server, n int) (float64, error) {
	p, addr, err := startServer(s.entry)
	if err != nil {
		return 0, err
	}
	defer stopChild(p)
	before, err := callServer(p, usageReq{Settle: true})
	if err != nil {
		return 0, err
	}
	if _, err := callLoad(load, loadReq{Op: "open", Name: s.name, Addr: addr, Conns: n}); err != nil {
		return 0, fmt.Errorf("opening %d connections: %w", n, err)
	}
	after, err := callServer(p, usageReq{Settle: true})
	if _, cerr := callLoad(load, loadReq{Op: "close", Name: s.name}); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return float64(after.RSS-before.RSS) / float64(n), nil
}

// startChild starts the child entry, with two threads for Go code if it is
// a server (and for the load generator the same, so that nothing differs).
func startChild(entry string) (*proc.Process, error) {
	return proc.Start(context.Background(), proc.Spec{Entry: entry, Env: []string{"GOMAXPROCS=2"}})
}

// startServer starts a server and returns it with the address it listens on.
func startServer(entry string) (*proc.Process, string, error) {
	p, err := startChild(entry)
	if err != nil {
		return nil, "", err
	}
	hello, err := proc.RecvJSON[serverHello](p.Conn())
	if err != nil {
		stopChild(p)
		return nil, "", fmt.Errorf("%s: %w", entry, err)
	}
	return p, hello.Addr, nil
}

// stopChild hangs up on p, which then returns from its entry, and waits for
// it to exit; if it has not after a while, it is killed.
func stopChild(p *proc.Process) {
	p.Conn().Close()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-p.Done():
	case <-t.C:
		p.Kill()
	}
	p.Wait()
}

// callServer asks a server for its usage.
func callServer(p *proc.Process, req usageReq) (usage, error) {
	u, err := call[usage](p, req)
	if err == nil && u.Err != "" {
		err = errors.New(u.Err)
	}
	return u, err
}

// callLoad runs a request of the load generator.
func callLoad(p *proc.Process, req loadReq) (loadRep, error) {
	rep, err := call[loadRep](p, req)
	if err == nil && rep.Err != "" {
		err = errors.New(rep.Err)
	}
	return rep, err
}

// call sends req to the child p and receives its answer.
func call[Rep any](p *proc.Process, req any) (Rep, error) {
	if err := proc.SendJSON(p.Conn(), req); err != nil {
		var zero Rep
		return zero, err
	}
	return proc.RecvJSON[Rep](p.Conn())
}
