// Command kv is a replicated key-value store whose same code runs on real
// processes and, in its tests, in a simulated world that finds its bugs.
//
// Three replicas keep the store, with Raft (Ongaro and Ousterhout, 2014):
// one replica leads, puts each request in its log, sends the log to the
// others, and answers a request once a majority has it on disk; if the
// leader goes, the others elect one of those whose log has every such
// entry. Reads go through the log too, so that every answer is
// linearizable. A replica folds its log into a snapshot up to where the
// leader says every replica has it: no replica ever needs those entries
// again, so a leader only ever sends entries, never a snapshot (a replica
// that stays down holds the others' compaction back). The cluster is
// fixed: no replica joins or leaves.
//
// A replica is a weave scheduler: a task that owns its state and takes
// events from a channel, a task per connection that reads messages into
// that channel, and a task per peer that writes to it, all on package
// socket. It keeps its state on a Disk, and sends nothing that depends on
// it — a vote, an acknowledgement of entries, an answer — before the disk
// has it. A Client finds the leader, and tells a request that certainly
// had no effect (ErrNotDone) from one that may have had one (ErrUnknown);
// it never sends the second kind again, which could apply it twice.
//
//	go run ./examples/kv
//
// starts three replica processes with package proc, on loopback, each
// keeping its state in a file (written through sched.Await: files cannot be
// polled). A client writes to the store, the leader's process is killed,
// and the client finds the new leader, which has every acknowledged write;
// the killed replica restarts from its file and catches up.
//
// The tests (sim_test.go) run the same replicas, unchanged, as hosts of a
// simulated world of package simtest: their sockets are the world's
// network, their Disk is the host's simulated disk (simtest.DiskOf), and
// the world crashes and restarts them, cuts them off, resets their
// connections and slows their links, all from a seed. Clients record what
// they asked and what they got, and simtest.CheckLinearizable judges the
// history. Config.EarlyAck is a bug of the kind that replicated stores ship
// with, a leader that answers before a majority has a write: the simulation
// finds it within a few seeds, and the failing run's trace shows the fault
// that lost the write, a crash or a partition of the leader.
//
//	go test ./examples/kv -run TestSim -weave.seeds=10000
//
// runs 10,000 seeds of the simulation instead of the test's default 200
// (about four minutes).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/weavert/weave/proc"
	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/socket"
)

func init() {
	proc.Register("replica", replicaProcess)
}

func main() {
	proc.Main() // in a replica's process, run the replica and exit
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kv:", err)
		os.Exit(1)
	}
}

// The environment of a replica's process: its ID, the file of its state,
// and the address to listen on.
const (
	envID   = "KV_ID"
	envFile = "KV_FILE"
	envAddr = "KV_ADDR"
)

// errStopped ends a replica whose parent closed its connection.
var errStopped = errors.New("kv: stopped by the parent")

// replicaProcess is a replica's process. It listens, tells its parent the
// address, learns the others' from it, and serves until the parent closes
// the connection.
func replicaProcess(_ context.Context, c *proc.Conn) error {
	id, err := strconv.Atoi(os.Getenv(envID))
	if err != nil {
		return err
	}
	return sched.New().Run(func(t *sched.Task) error {
		pc, err := socket.Proc(t, c)
		if err != nil {
			return err
		}
		defer pc.Close()
		l, err := socket.Listen(t, "tcp", os.Getenv(envAddr))
		if err != nil {
			return err
		}
		if err := pc.Send(t, []byte(l.Addr().String())); err != nil {
			return err
		}
		peers, err := pc.Recv(t)
		if err != nil {
			return err
		}
		cfg := Config{
			ID:    id,
			Peers: strings.Split(string(peers), "\n"),
			Disk:  fileDisk{os.Getenv(envFile)},
			Rand:  rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid()))),
		}
		g := sched.NewGroup(t)
		g.Go(t, func(t *sched.Task) error { return Serve(t, l, cfg) })
		g.Go(t, func(t *sched.Task) error {
			pc.Recv(t) // nothing more comes: the end of the stream
			return errStopped
		})
		if err := g.Wait(t); !errors.Is(err, errStopped) {
			return err
		}
		return nil
	})
}

// node is a replica's process, as its parent sees it.
type node struct {
	name string
	id   int
	file string
	addr string // where it listens: ":0" until its first start
	p    *proc.Process
	pc   *socket.ProcConn
}

// start starts n's process and reads the address it listens on. ctx bounds
// the process's life.
func (n *node) start(ctx context.Context, t *sched.Task) error {
	p, err := sched.Await(t, func(context.Context) (*proc.Process, error) {
		return proc.Start(ctx, proc.Spec{Entry: "replica", Env: []string{
			envID + "=" + strconv.Itoa(n.id), envFile + "=" + n.file, envAddr + "=" + n.addr,
		}})
	})
	if err != nil {
		return err
	}
	n.p = p
	if n.pc, err = socket.Proc(t, p.Conn()); err != nil {
		return err
	}
	addr, err := n.pc.Recv(t)
	if err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	n.addr = string(addr)
	return nil
}

// wait waits for n's process to exit, and returns how it ended.
func (n *node) wait(t *sched.Task) error {
	_, err := sched.Await(t, func(context.Context) (*os.ProcessState, error) { return n.p.Wait() })
	n.pc.Close()
	return err
}

// run starts three replicas, runs a client against them, kills the leader,
// and shows that the store goes on with every acknowledged write; then it
// stops the replicas. It tells out what happens.
func run(out io.Writer) error {
	dir, err := os.MkdirTemp("", "kv")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The processes' lifetime: whatever happens, none outlives run.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	return sched.New().Run(func(t *sched.Task) error {
		var nodes []*node
		for i := range 3 {
			n := &node{name: fmt.Sprintf("node%d", i+1), id: i, addr: "127.0.0.1:0",
				file: filepath.Join(dir, fmt.Sprintf("node%d.state", i+1))}
			if err := n.start(ctx, t); err != nil {
				return err
			}
			nodes = append(nodes, n)
		}
		defer func() {
			for _, n := range nodes {
				n.p.Kill()
				n.wait(t)
			}
		}()
		var peers []string
		for _, n := range nodes {
			peers = append(peers, n.addr)
		}
		fmt.Fprintln(out, "three replicas, each a process with a weave scheduler, on loopback:")
		for _, n := range nodes {
			fmt.Fprintf(out, "  %s at %s, pid %d, state in %s\n", n.name, n.addr, n.p.PID(), filepath.Base(n.file))
			if err := n.pc.Send(t, []byte(strings.Join(peers, "\n"))); err != nil {
				return err
			}
		}
		d := &demo{t: t, out: out, nodes: nodes, cl: &Client{Peers: peers}}
		defer d.cl.Close()
		if err := d.script(ctx); err != nil {
			return err
		}
		for _, n := range nodes {
			n.pc.Close() // the replica's Recv sees the end of the stream, and it stops
			if err := n.wait(t); err != nil {
				return fmt.Errorf("%s: %w", n.name, err)
			}
		}
		nodes = nil
		fmt.Fprintln(out, "stopped the replicas: each exited with status 0")
		return nil
	})
}

// demo is the client's side of run.
type demo struct {
	t     *sched.Task
	out   io.Writer
	nodes []*node
	cl    *Client
}

func (d *demo) script(ctx context.Context) error {
	t := d.t
	lead, err := d.leader()
	if err != nil {
		return err
	}
	for _, cmd := range []command{put("x", "1"), appendTo("x", "2"), cas("x", "12", "123"), put("y", "a"), get("x")} {
		if err := d.do(cmd); err != nil {
			return err
		}
	}

	fmt.Fprintf(d.out, "kill -9 %s (pid %d), the leader\n", lead.name, lead.p.PID())
	lead.p.Kill()
	if err := lead.wait(t); err == nil {
		return fmt.Errorf("%s exited with status 0 after a SIGKILL", lead.name)
	}
	killed := t.Now()
	for tries := 1; ; tries++ {
		a, err := d.cl.Do(t, get("x"))
		if errors.Is(err, ErrUnknown) || errors.Is(err, ErrNotDone) {
			if t.Now().Sub(killed) > 10*time.Second {
				return fmt.Errorf("no replica answers 10 s after the kill: %w", err)
			}
			continue // a read has no effect: ask again
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(d.out, "%-15s -> %q, from %s, %.1f s after the kill (%d tries)\n",
			get("x"), a.value, d.nodes[a.from].name, t.Now().Sub(killed).Seconds(), tries)
		if a.value != "123" {
			return fmt.Errorf("the new leader lost a write: x is %q, want \"123\"", a.value)
		}
		break
	}
	if _, err := d.leader(); err != nil {
		return err
	}
	if err := d.do(appendTo("y", "b")); err != nil {
		return err
	}

	if err := lead.start(ctx, t); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "restarted %s (pid %d) on its state file\n", lead.name, lead.p.PID())
	if err := lead.pc.Send(t, []byte(strings.Join(d.cl.Peers, "\n"))); err != nil {
		return err
	}
	if err := d.do(get("y")); err != nil {
		return err
	}
	return d.caughtUp(lead)
}

// do carries out cmd and says what came of it.
func (d *demo) do(cmd command) error {
	a, err := d.cl.Do(d.t, cmd)
	if err != nil {
		return fmt.Errorf("%v: %w", cmd, err)
	}
	var res string
	switch cmd.op {
	case opGet:
		res = strconv.Quote(a.value)
	case opCAS:
		res = "swapped"
		if !a.swapped {
			res = "not swapped"
		}
	default:
		res = "ok"
	}
	fmt.Fprintf(d.out, "%-15s -> %s, from %s\n", cmd, res, d.nodes[a.from].name)
	return nil
}

// leader waits for a replica to lead, and says which.
func (d *demo) leader() (*node, error) {
	t := d.t
	start := t.Now()
	for t.Now().Sub(start) < 10*time.Second {
		for _, n := range d.nodes {
			a, err := d.cl.Status(t, n.id)
			if err == nil && a.leading {
				fmt.Fprintf(d.out, "%s leads, in term %d\n", n.name, a.term)
				return n, nil
			}
		}
		t.Sleep(50 * time.Millisecond)
	}
	return nil, errors.New("no replica leads after 10 s")
}

// caughtUp waits for n to apply what the leader applied, and says so.
func (d *demo) caughtUp(n *node) error {
	t := d.t
	start := t.Now()
	for t.Now().Sub(start) < 10*time.Second {
		var want, got uint64
		for _, m := range d.nodes {
			a, err := d.cl.Status(t, m.id)
			switch {
			case err != nil:
			case m == n:
				got = a.applied
			case a.leading:
				want = a.applied
			}
		}
		if want > 0 && got >= want {
			fmt.Fprintf(d.out, "%s has caught up: it applied the log up to index %d, as the leader did\n", n.name, got)
			return nil
		}
		t.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s has not caught up after 10 s", n.name)
}

func get(key string) command             { return command{op: opGet, key: key} }
func put(key, value string) command      { return command{op: opPut, key: key, value: value} }
func appendTo(key, value string) command { return command{op: opAppend, key: key, value: value} }
func cas(key, old, value string) command {
	return command{op: opCAS, key: key, old: old, value: value}
}

// String shows a command as the demo prints it.
func (c command) String() string {
	switch c.op {
	case opGet:
		return "get " + c.key
	case opPut:
		return fmt.Sprintf("put %s=%s", c.key, c.value)
	case opAppend:
		return fmt.Sprintf("append %s+=%s", c.key, c.value)
	case opCAS:
		return fmt.Sprintf("cas %s %s->%s", c.key, c.old, c.value)
	}
	return fmt.Sprintf("op %d", c.op)
}
