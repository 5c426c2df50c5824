package socket_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/weavert/weave/proc"
	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/socket"
	"golang.org/x/sys/unix"
)

// procPair returns two proc.Conns joined by a socketpair, as proc.Start
// makes between a parent and a child.
func procPair(t *testing.T) (*proc.Conn, *proc.Conn) {
	t.Helper()
	a, b := filePair(t)
	return proc.NewConn(a, 0), proc.NewConn(b, 0)
}

// filePair returns the two ends of a Unix stream socketpair, as files.
func filePair(t testing.TB) (*os.File, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
}

// procConn returns a ProcConn of task's run, and the proc.Conn at the other
// end of its socketpair.
func procConn(t *testing.T, task *sched.Task) (*socket.ProcConn, *proc.Conn, error) {
	a, b := procPair(t)
	pa, err := socket.Proc(task, a)
	return pa, b, err
}

// Two tasks talk over proc.Conns with no goroutine: messages of every size
// arrive whole and in order, the large ones over many parks.
func TestProcConn(t *testing.T) {
	run(t, func(task *sched.Task) error {
		a, b := procPair(t)
		pa, err := socket.Proc(task, a)
		if err != nil {
			return err
		}
		defer pa.Close()
		pb, err := socket.Proc(task, b)
		if err != nil {
			return err
		}
		defer pb.Close()
		sizes := []int{0, 1, 100, 4096, 70000, 1 << 20}
		task.Go(func(task *sched.Task) error {
			for {
				msg, err := pb.Recv(task)
				if err != nil {
					return nil // the end
				}
				if err := pb.Send(task, msg); err != nil {
					return err
				}
			}
		})
		for _, n := range sizes {
			msg := bytes.Repeat([]byte{byte(n)}, n)
			h := sched.Spawn(task, func(task *sched.Task) (struct{}, error) {
				return struct{}{}, pa.Send(task, msg)
			})
			got, err := pa.Recv(task)
			if err != nil {
				return err
			}
			if _, err := h.Wait(task); err != nil {
				return err
			}
			if !bytes.Equal(got, msg) {
				return fmt.Errorf("sent %d bytes, got %d back", n, len(got))
			}
		}
		return nil
	})
}

// A Recv cancelled by its Group leaves the Conn usable: the next Recv gets
// the next message. Close wakes a parked Recv with proc.ErrClosed.
func TestProcConnCancelClose(t *testing.T) {
	run(t, func(task *sched.Task) error {
		a, b := procPair(t)
		pa, err := socket.Proc(task, a)
		if err != nil {
			return err
		}
		pb, err := socket.Proc(task, b)
		if err != nil {
			return err
		}
		defer pb.Close()
		g := sched.NewGroup(task)
		var recvErr error
		g.Go(task, func(task *sched.Task) error {
			_, recvErr = pa.Recv(task)
			return nil
		})
		stop := errors.New("stop")
		g.Go(task, func(task *sched.Task) error {
			task.Yield()
			return stop
		})
		if err := g.Wait(task); !errors.Is(err, stop) {
			return err
		}
		if recvErr == nil || errors.Is(recvErr, proc.ErrClosed) {
			return fmt.Errorf("a cancelled Recv: %v", recvErr)
		}
		if err := pb.Send(task, []byte("after")); err != nil {
			return err
		}
		if msg, err := pa.Recv(task); err != nil || string(msg) != "after" {
			return fmt.Errorf("Recv after a cancelled one: %q, %v", msg, err)
		}
		h := sched.Spawn(task, func(task *sched.Task) ([]byte, error) { return pa.Recv(task) })
		task.Yield()
		pa.Close()
		if _, err := h.Wait(task); !errors.Is(err, proc.ErrClosed) {
			return fmt.Errorf("Recv on a closed ProcConn: %v, want proc.ErrClosed", err)
		}
		return nil
	})
}

// A frame and the end of the stream that arrive together, before the poller
// takes their edge, are both seen: the read that took the frame does not
// stand for the end. On one thread, the peer's Send and Close both happen
// before the worker polls.
func TestProcConnEndAfterFrame(t *testing.T) {
	run(t, func(task *sched.Task) error {
		pa, b, err := procConn(t, task)
		if err != nil {
			return err
		}
		defer pa.Close()
		h := sched.Spawn(task, func(task *sched.Task) ([]string, error) {
			var got []string
			for {
				m, err := pa.Recv(task)
				if err != nil {
					return got, err
				}
				got = append(got, string(m))
			}
		})
		task.Yield() // the reader parks in Recv
		if err := b.Send([]byte("last")); err != nil {
			return err
		}
		b.Close()
		got, err := h.Wait(task)
		if !errors.Is(err, io.EOF) || len(got) != 1 || got[0] != "last" {
			return fmt.Errorf("got %q, then %v; want \"last\", then io.EOF", got, err)
		}
		return nil
	}, sched.Threads(1))
}
