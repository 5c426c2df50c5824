package simtest_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/sched/simtest"
	"github.com/weavert/weave/socket"
)

// serveEcho is a server as it would be written for real: a task per
// connection on package socket, echoing what it reads, until l is closed.
func serveEcho(t *sched.Task, l *socket.Listener) error {
	for {
		c, err := l.Accept(t)
		if err != nil {
			return nil
		}
		t.Go(func(t *sched.Task) error {
			defer c.Close()
			_, err := io.Copy(c.Bind(t), c.Bind(t))
			if errors.Is(err, syscall.ECONNRESET) {
				return nil
			}
			return err
		})
	}
}

// askEcho sends msg to the echo server at address and reads it back.
func askEcho(t *sched.Task, address string, msg []byte) error {
	c, err := socket.Dial(t, "tcp", address)
	if err != nil {
		return err
	}
	defer c.Close()
	// The writer is a task of its own: a message larger than the
	// connection's buffers, written before anything is read, would fill
	// them both ways, and the client and the server would wait on each
	// other for good (a simulated run finds that deadlock at once).
	h := sched.Spawn(t, func(t *sched.Task) (int, error) { return c.Write(t, msg) })
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c.Bind(t), got); err != nil {
		return err
	}
	if _, err := h.Wait(t); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("sent %q, got %q back", msg, got)
	}
	return nil
}

// The same server and client run on real sockets, and, unchanged, between
// simulated hosts, where every delivery takes virtual time.
func TestWorldSameProgram(t *testing.T) {
	msg := bytes.Repeat([]byte("weave "), 100000) // more than a window
	err := sched.New(sched.Threads(2)).Run(func(task *sched.Task) error {
		l, err := socket.Listen(task, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		task.Go(func(task *sched.Task) error { return serveEcho(task, l) })
		defer l.Close()
		return askEcho(task, l.Addr().String(), msg)
	})
	if err != nil {
		t.Fatal(err)
	}
	simtest.Run(t, func(task *sched.Task) error {
		w := simtest.NewWorld(task, simtest.Latency(time.Millisecond, 3*time.Millisecond))
		w.Host(task, "server", func(task *sched.Task) error {
			l, err := socket.Listen(task, "tcp", ":7000")
			if err != nil {
				return err
			}
			return serveEcho(task, l)
		})
		done := sched.NewChan[error](1)
		w.Host(task, "client", func(task *sched.Task) error {
			start := task.Now()
			err := askEcho(task, "server:7000", msg)
			if took := task.Now().Sub(start); err == nil && took < 4*time.Millisecond {
				err = fmt.Errorf("a dial and a round trip took %v of virtual time, less than two round trips", took)
			}
			done.Send(task, err)
			return nil
		})
		err, _ := done.Recv(task)
		return err
	}, simtest.Seeds(20))
}

// world runs body under seeds of simtest.Explore with a fresh World, and
// fails the test on the first failure.
func world(t *testing.T, seeds int, body func(task *sched.Task, w *simtest.World) error, opts ...simtest.WorldOption) {
	t.Helper()
	simtest.Run(t, func(task *sched.Task) error {
		return body(task, simtest.NewWorld(task, opts...))
	}, simtest.Seeds(seeds))
}

// A crash resets the peers' connections; after a restart, the host's entry
// runs again and serves again.
func TestWorldCrashRestart(t *testing.T) {
	world(t, 30, func(task *sched.Task, w *simtest.World) error {
		starts := 0
		server := w.Host(task, "server", func(task *sched.Task) error {
			starts++
			l, err := socket.Listen(task, "tcp", ":7000")
			if err != nil {
				return err
			}
			return serveEcho(task, l)
		})
		res := sched.NewChan[error](1)
		connected := sched.NewChan[struct{}](1)
		w.Host(task, "client", func(task *sched.Task) error {
			c, err := socket.Dial(task, "tcp", "server:7000")
			if err != nil {
				res.Send(task, err)
				return nil
			}
			defer c.Close()
			connected.Send(task, struct{}{})
			_, err = c.Read(task, make([]byte, 1)) // nothing comes: the server crashes
			res.Send(task, err)
			return nil
		})
		connected.Recv(task)
		w.Crash(task, server)
		err, _ := res.Recv(task)
		if !errors.Is(err, syscall.ECONNRESET) {
			return fmt.Errorf("a read from a crashed host: %v, want ECONNRESET", err)
		}
		var ne *net.OpError
		if !errors.As(err, &ne) || ne.Op != "read" {
			return fmt.Errorf("not a *net.OpError from read: %v", err)
		}
		w.Restart(task, server)
		w.Host(task, "client2", func(task *sched.Task) error {
			res.Send(task, askEcho(task, "server:7000", []byte("again")))
			return nil
		})
		if err, _ := res.Recv(task); err != nil {
			return fmt.Errorf("after the restart: %v", err)
		}
		if starts != 2 || server.Crashes() != 1 {
			return fmt.Errorf("the server's entry ran %d times, crashed %d", starts, server.Crashes())
		}
		return nil
	})
}

// A crashed host's tasks stop at once: their deferred calls run only when
// the run ends, and nothing they would have done happens meanwhile.
func TestWorldCrashFreezes(t *testing.T) {
	var deferred, after []string
	simtest.Run(t, func(task *sched.Task) error {
		deferred, after = nil, nil
		w := simtest.NewWorld(task)
		h := w.Host(task, "worker", func(task *sched.Task) error {
			defer func() { deferred = append(deferred, "worker") }()
			for i := 0; ; i++ {
				task.Sleep(time.Millisecond)
				after = append(after, fmt.Sprint(i))
			}
		})
		task.Sleep(10*time.Millisecond + time.Microsecond)
		w.Crash(task, h)
		n := len(after)
		task.Sleep(time.Second) // the worker would have run a thousand times
		if len(after) != n || len(deferred) != 0 {
			return fmt.Errorf("after the crash: %d more steps, deferred calls %v", len(after)-n, deferred)
		}
		return nil
	}, simtest.Seeds(5))
	if len(deferred) != 1 {
		t.Fatalf("the crashed host's deferred call ran %d times by the end of the run", len(deferred))
	}
}

// A partition holds stream data until it heals, and makes a Dial across it
// time out; datagrams across it are lost.
func TestWorldPartition(t *testing.T) {
	world(t, 20, func(task *sched.Task, w *simtest.World) error {
		server := w.Host(task, "server", func(task *sched.Task) error {
			l, err := socket.Listen(task, "tcp", ":7000")
			if err != nil {
				return err
			}
			return serveEcho(task, l)
		})
		res := sched.NewChan[error](1)
		var client *simtest.Host
		client = w.Host(task, "client", func(task *sched.Task) error {
			c, err := socket.Dial(task, "tcp", "server:7000")
			if err != nil {
				res.Send(task, err)
				return nil
			}
			defer c.Close()
			w.Partition([]*simtest.Host{client}, []*simtest.Host{server})
			c.Write(task, []byte("held"))
			c.SetReadDeadline(task.Now().Add(time.Second))
			_, err = c.Read(task, make([]byte, 4))
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				res.Send(task, fmt.Errorf("a read across a partition: %v, want a timeout", err))
				return nil
			}
			if _, err := socket.Dial(task, "tcp", "server:7000"); !errors.Is(err, syscall.ETIMEDOUT) {
				res.Send(task, fmt.Errorf("a dial across a partition: %v, want ETIMEDOUT", err))
				return nil
			}
			w.Heal([]*simtest.Host{client}, []*simtest.Host{server})
			c.SetReadDeadline(time.Time{})
			got := make([]byte, 4)
			_, err = io.ReadFull(c.Bind(task), got)
			if err == nil && string(got) != "held" {
				err = fmt.Errorf("after the heal: %q", got)
			}
			res.Send(task, err)
			return nil
		})
		err, _ := res.Recv(task)
		return err
	})
}

// Datagrams: they arrive with their sender, and the loss rate loses some.
func TestWorldDatagrams(t *testing.T) {
	world(t, 5, func(task *sched.Task, w *simtest.World) error {
		got := sched.NewChan[int](1)
		w.Host(task, "b", func(task *sched.Task) error {
			pc, err := socket.ListenPacket(task, "udp", ":9000")
			if err != nil {
				return err
			}
			n := 0
			pc.SetReadDeadline(task.Now().Add(time.Second))
			for {
				_, from, err := pc.ReadFrom(task, make([]byte, 16))
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					return err
				}
				if !strings.HasPrefix(from.String(), "10.0.0.") {
					return fmt.Errorf("a datagram from %v", from)
				}
				n++
			}
			got.Send(task, n)
			return nil
		})
		w.Host(task, "a", func(task *sched.Task) error {
			pc, err := socket.ListenPacket(task, "udp", ":0")
			if err != nil {
				return err
			}
			for range 1000 {
				if _, err := pc.WriteTo(task, []byte("x"), &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 9000}); err != nil {
					return err
				}
			}
			return nil
		})
		n, _ := got.Recv(task)
		if n < 800 || n > 950 {
			return fmt.Errorf("%d of 1000 datagrams arrived with a loss rate of 0.1", n)
		}
		return nil
	}, simtest.Loss(0.1, 0))
}

// A disk keeps what was synced before a crash, and only that.
func TestWorldDisk(t *testing.T) {
	world(t, 10, func(task *sched.Task, w *simtest.World) error {
		wrote := sched.NewChan[struct{}](1)
		h := w.Host(task, "db", func(task *sched.Task) error {
			d := simtest.DiskOf(task)
			if _, ok := d.Read("synced"); ok {
				return nil // restarted
			}
			d.Write(task, "synced", []byte("kept"))
			if err := d.Sync(task); err != nil {
				return err
			}
			d.Write(task, "unsynced", []byte("lost"))
			wrote.Send(task, struct{}{})
			return nil
		})
		wrote.Recv(task)
		w.Crash(task, h)
		d := h.Disk()
		if b, ok := d.Read("synced"); !ok || string(b) != "kept" {
			return fmt.Errorf("the synced file after a crash: %q, %v", b, ok)
		}
		if _, ok := d.Read("unsynced"); ok {
			return errors.New("a write that was not synced survived the crash")
		}
		return nil
	})
}

// Each host has its own clock skew; Buggify says no outside a simulation.
func TestWorldSkewBuggify(t *testing.T) {
	world(t, 3, func(task *sched.Task, w *simtest.World) error {
		nows := sched.NewChan[time.Time](2)
		a := w.Host(task, "a", func(task *sched.Task) error { return nil })
		w.Skew(a, time.Hour)
		w.Host(task, "b", func(task *sched.Task) error { nows.Send(task, task.Now()); return nil })
		w.Restart(task, a) // up: nothing
		w.Host(task, "c", func(task *sched.Task) error { return nil })
		b, _ := nows.Recv(task)
		if d := b.Sub(task.Now()); d != 0 {
			return fmt.Errorf("an unskewed host's clock is %v off", d)
		}
		return nil
	})
	err := sched.New().Run(func(task *sched.Task) error {
		for range 100 {
			if simtest.Buggify(task) {
				return errors.New("Buggify said yes outside a simulation")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A failure under chaos replays exactly, and its trace shows the faults.
func TestWorldChaosTrace(t *testing.T) {
	body := func(task *sched.Task) error {
		w := simtest.NewWorld(task)
		server := w.Host(task, "server", func(task *sched.Task) error {
			l, err := socket.Listen(task, "tcp", ":7000")
			if err != nil {
				return err
			}
			return serveEcho(task, l)
		})
		w.Chaos(task, simtest.Chaos{Crash: 50 * time.Millisecond, Downtime: 20 * time.Millisecond, Hosts: []*simtest.Host{server}})
		res := sched.NewChan[error](1)
		w.Host(task, "client", func(task *sched.Task) error {
			for range 100 {
				if err := askEcho(task, "server:7000", []byte("ping")); err != nil {
					res.Send(task, err)
					return nil
				}
				task.Sleep(5 * time.Millisecond)
			}
			res.Send(task, nil)
			return nil
		})
		err, _ := res.Recv(task)
		return err // a crash mid-request fails it: the client does not retry
	}
	f, _ := simtest.Explore(body, simtest.Seeds(50))
	if f == nil {
		t.Fatal("a client that never retries survived 50 seeds of crashes")
	}
	if f.Replayed != "" {
		t.Fatalf("the replay differed: %s", f.Replayed)
	}
	if !strings.Contains(f.Trace, "fault: crash server") {
		t.Fatalf("the trace shows no crash:\n%s", f.Trace)
	}
	g, _ := simtest.Explore(body, simtest.FirstSeed(f.Seed), simtest.Seeds(1))
	if g == nil || g.Checksum != f.Checksum {
		t.Fatalf("seed %d again: %v, checksum %#x against %#x", f.Seed, g, g.Checksum, f.Checksum)
	}
}
