package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weavert/weave/internal/procfs"
	"github.com/weavert/weave/proc"
	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/socket"
)

// The processes of the network rows: two echo servers and the load
// generator that drives both, each a process of its own (this binary,
// re-executed), so that a server's CPU time and memory are its own.
//
// A server listens on a loopback port, sends its address to the parent, and
// then answers the parent's requests for its usage until the parent hangs
// up. Both servers read into a buffer of serverBuf bytes and write back what
// they read. The accept loop makes each connection's buffer, on the heap in
// both: made inside the task, the buffer would stay on the task's stack
// (package socket's calls let it) and grow that stack to 8 KiB, where a
// goroutine's escapes through package net's interfaces. Same size, same
// place, so that the memory rows compare the servers and not the compiler.

const (
	entryWeaveServer = "weave/bench/net/weave" // a task per connection, package socket
	entryGoServer    = "weave/bench/net/go"    // a goroutine per connection, package net
	entryLoad        = "weave/bench/net/load"  // the client of both

	msgSize   = 64   // bytes of a message, each way
	serverBuf = 4096 // bytes of a connection's read buffer, in both servers
)

func init() {
	proc.Register(entryWeaveServer, weaveServer)
	proc.Register(entryGoServer, goServer)
	proc.Register(entryLoad, loadGen)
}

// serverHello is what a server sends first.
type serverHello struct{ Addr string }

// usageReq asks a server for its usage; with Settle, after collecting garbage
// and returning free memory to the system, so that its resident memory is
// what it holds, not what the collector has not got to yet.
type usageReq struct{ Settle bool }

// usage is a server's answer.
type usage struct {
	CPU int64 // user and system time so far, in nanoseconds
	RSS int64 // resident memory, in bytes
	Err string
}

// ownUsage measures the calling process.
func ownUsage(settle bool) usage {
	if settle {
		debug.FreeOSMemory()
	}
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return usage{Err: err.Error()}
	}
	st, err := procfs.ReadStatus("/proc/self/status")
	if err != nil {
		return usage{Err: err.Error()}
	}
	return usage{CPU: ru.Utime.Nano() + ru.Stime.Nano(), RSS: st.RSS}
}

// weaveServer serves with weave: a scheduler of two threads, a task per
// connection on package socket, as in package socket's example. The parent's
// requests come to a task too, through socket.Proc; when the parent hangs
// up, the run is cancelled, which ends every task.
func weaveServer(ctx context.Context, c *proc.Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := sched.New(sched.Threads(2)).RunContext(ctx, func(t *sched.Task) error {
		pc, err := socket.Proc(t, c)
		if err != nil {
			return err
		}
		defer pc.Close()
		l, err := socket.Listen(t, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		t.GoNamed("accept", func(t *sched.Task) error {
			for {
				c, err := l.Accept(t)
				if err != nil {
					return nil // closed or cancelled: the parent is done
				}
				buf := make([]byte, serverBuf)
				t.Go(func(t *sched.Task) error {
					defer c.Close()
					for {
						n, err := c.Read(t, buf)
						if err != nil {
							return nil // the client hung up, or the run ends
						}
						if _, err := c.Write(t, buf[:n]); err != nil {
							return nil
						}
					}
				})
			}
		})
		if err := sendJSON(pc, t, serverHello{l.Addr().String()}); err != nil {
			return err
		}
		for {
			msg, err := pc.Recv(t)
			if err != nil {
				cancel() // the parent hung up
				return nil
			}
			if err := sendJSON(pc, t, answer(msg)); err != nil {
				return err
			}
		}
	})
	if ctx.Err() != nil {
		return nil // the parent hung up, or stopped us: a server's end
	}
	return err
}

// sendJSON sends v over pc, from t.
func sendJSON(pc *socket.ProcConn, t *sched.Task, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return pc.Send(t, b)
}

// answer answers a server's request msg.
func answer(msg []byte) usage {
	var req usageReq
	if err := json.Unmarshal(msg, &req); err != nil {
		return usage{Err: err.Error()}
	}
	return ownUsage(req.Settle)
}

// goServer serves with the standard library: net.Listen, and a goroutine per
// connection. GOMAXPROCS is set by the parent.
func goServer(_ context.Context, c *proc.Conn) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return // closed: the parent is done
			}
			buf := make([]byte, serverBuf)
			go func() {
				defer conn.Close()
				for {
					n, err := conn.Read(buf)
					if err != nil {
						return
					}
					if _, err := conn.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	if err := proc.SendJSON(c, serverHello{l.Addr().String()}); err != nil {
		return err
	}
	for {
		msg, err := c.Recv()
		if err != nil {
			return nil // the parent hung up
		}
		if err := proc.SendJSON(c, answer(msg)); err != nil {
			return err
		}
	}
}

// loadReq is a request to the load generator, which keeps a set of
// connections per server:
//
//   - "open" dials Conns connections to Addr for the set Name, and echoes a
//     message over each, so that every one has been accepted and served once;
//   - "echo" runs the closed loop over the set Name: each connection sends a
//     message and waits for its echo before sending the next, for Warmup,
//     and then for Window, measured;
//   - "close" closes the set Name.
type loadReq struct {
	Op, Name, Addr string
	Conns          int
	Warmup, Window time.Duration
}

// loadRep is the load generator's answer.
type loadRep struct {
	// Messages is how many echoes ended within the window, which lasted
	// Seconds; Total, how many the whole request made, warm-up included.
	Messages, Total int64
	Seconds         float64
	// P50 and P99 are percentiles of the latency of the window's echoes,
	// from the write of a message to the end of its echo, in nanoseconds.
	P50, P99 float64
	Err      string
}

// loadGen is the load generator: plain goroutines and package net, the same
// client for every server. It runs the parent's requests one at a time.
func loadGen(_ context.Context, c *proc.Conn) error {
	sets := map[string][]net.Conn{}
	defer func() {
		for _, conns := range sets {
			closeAll(conns)
		}
	}()
	for {
		req, err := proc.RecvJSON[loadReq](c)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var rep loadRep
		switch req.Op {
		case "open":
			var conns []net.Conn
			conns, err = openConns(req.Addr, req.Conns)
			sets[req.Name] = append(sets[req.Name], conns...)
		case "echo":
			rep, err = echoLoop(sets[req.Name], req.Warmup, req.Window)
		case "close":
			closeAll(sets[req.Name])
			delete(sets, req.Name)
		default:
			err = fmt.Errorf("unknown request %q", req.Op)
		}
		if err != nil {
			rep.Err = err.Error()
		}
		if err := proc.SendJSON(c, rep); err != nil {
			return err
		}
	}
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// openConns dials n connections to addr, a few at a time, and echoes one
// message over each.
func openConns(addr string, n int) ([]net.Conn, error) {
	const dialers = 4
	conns := make([]net.Conn, n)
	errs := make([]error, dialers)
	var wg sync.WaitGroup
	for d := range dialers {
		wg.Go(func() {
			buf := make([]byte, msgSize)
			for i := d; i < n; i += dialers {
				c, err := net.Dial("tcp", addr)
				if err == nil {
					conns[i] = c
					err = echoOnce(c, buf)
				}
				if err != nil {
					errs[d] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(slices.DeleteFunc(conns, func(c net.Conn) bool { return c == nil }))
		return nil, err
	}
	return conns, nil
}

// echoOnce sends buf over c and reads its echo into buf.
func echoOnce(c net.Conn, buf []byte) error {
	if _, err := c.Write(buf); err != nil {
		return err
	}
	_, err := io.ReadFull(c, buf)
	return err
}

// echoLoop runs the closed loop over conns, a goroutine each: warm-up, then
// the measured window, then each connection ends the echo under way.
func echoLoop(conns []net.Conn, warmup, window time.Duration) (loadRep, error) {
	if len(conns) == 0 {
		return loadRep{}, errors.New("no connections to echo over")
	}
	// Times are nanoseconds since base. An echo counts in the window if it
	// ends within it.
	base := time.Now()
	var start atomic.Int64 // the window's start; 0 until then
	var stop atomic.Bool
	type sample struct{ end, latency int64 }
	type result struct {
		samples []sample
		total   int64
		err     error
	}
	results := make([]result, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			r := &results[i]
			buf := make([]byte, msgSize)
			for !stop.Load() {
				t0 := int64(time.Since(base))
				if err := echoOnce(c, buf); err != nil {
					r.err = err
					return
				}
				t1 := int64(time.Since(base))
				r.total++
				if s := start.Load(); s != 0 && t1 >= s {
					r.samples = append(r.samples, sample{t1, t1 - t0})
				}
			}
		})
	}
	time.Sleep(warmup)
	s := int64(time.Since(base))
	start.Store(s)
	time.Sleep(window)
	e := int64(time.Since(base))
	stop.Store(true)
	wg.Wait()
	var rep loadRep
	var lat []int64
	var errs []error
	for _, r := range results {
		rep.Total += r.total
		errs = append(errs, r.err)
		for _, x := range r.samples {
			if x.end <= e {
				lat = append(lat, x.latency)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return rep, err
	}
	if len(lat) == 0 {
		return rep, errors.New("no echo ended within the window")
	}
	slices.Sort(lat)
	rep.Messages = int64(len(lat))
	rep.Seconds = float64(e-s) / 1e9
	rep.P50, rep.P99 = percentile(lat, 50), percentile(lat, 99)
	return rep, nil
}

// percentile returns the p-th percentile of sorted, by the nearest rank.
func percentile(sorted []int64, p int) float64 {
	rank := (len(sorted)*p + 99) / 100 // ⌈n·p/100⌉
	return float64(sorted[max(rank, 1)-1])
}
