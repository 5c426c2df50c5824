package sched_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
	"golang.org/x/sys/unix"
)

// pipe returns a pipe's read and write ends, each an FD of t's run.
func pipe(t *testing.T, task *sched.Task) (r, w *sched.FD) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, err := sched.NewFD(task, p[0], "pipe r")
	if err != nil {
		t.Fatal(err)
	}
	w, err = sched.NewFD(task, p[1], "pipe w")
	if err != nil {
		t.Fatal(err)
	}
	return r, w
}

// openFDs counts the process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(es)
}

// A task parked on a read wakes when the writer writes, on every thread
// count and with LockThreads: the worker that has nothing to run waits in
// the poller.
func TestFDPipe(t *testing.T) {
	for _, c := range []struct {
		n      int
		locked bool
	}{{1, false}, {2, false}, {4, false}, {2, true}} {
		t.Run(fmt.Sprintf("threads=%d,locked=%v", c.n, c.locked), func(t *testing.T) {
			before := openFDs(t)
			opts := []sched.Option{sched.Threads(c.n)}
			if c.locked {
				// Readiness wakes a started task on its home thread.
				opts = append(opts, sched.LockThreads())
			}
			err := sched.New(opts...).Run(func(task *sched.Task) error {
				g := sched.NewGroup(task)
				const pairs, rounds = 20, 50
				for i := range pairs {
					r, w := pipe(t, task)
					g.Go(task, func(task *sched.Task) error {
						defer r.Close()
						for j := range rounds {
							var msg [8]byte
							if err := readFull(task, r, msg[:]); err != nil {
								return err
							}
							if got, want := binary.LittleEndian.Uint64(msg[:]), uint64(i*rounds+j); got != want {
								return fmt.Errorf("read %d, want %d", got, want)
							}
						}
						if _, err := r.Read(task, make([]byte, 1)); err != io.EOF {
							return fmt.Errorf("after the writer closed: %v, want io.EOF", err)
						}
						return nil
					})
					g.Go(task, func(task *sched.Task) error {
						defer w.Close()
						for j := range rounds {
							var msg [8]byte
							binary.LittleEndian.PutUint64(msg[:], uint64(i*rounds+j))
							if _, err := w.Write(task, msg[:]); err != nil {
								return err
							}
							if j%3 == 0 {
								task.Yield() // the reader parks now and then, and now and then finds data
							}
						}
						return nil
					})
				}
				return g.Wait(task)
			})
			if err != nil {
				t.Fatal(err)
			}
			if after := openFDs(t); after != before {
				t.Fatalf("%d descriptors open after the run, %d before", after, before)
			}
		})
	}
}

// readFull reads len(p) bytes from r.
func readFull(task *sched.Task, r *sched.FD, p []byte) error {
	for len(p) > 0 {
		n, err := r.Read(task, p)
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// After a read that returned less than it asked for, a Read of a stream
// socket or a pipe waits for an edge of readiness before it tries again.
// What it must not miss: data that comes later; what is there already where
// a short read does not drain the descriptor (a seqpacket socket, a message a
// read); and the end of the input, which stays with no new edge. On one
// thread the reader parks before each of the writer's turns, so that the
// edges come as the cases need; a deadline turns a hung Read into an error.
func TestFDShortReads(t *testing.T) {
	pairs := []struct {
		name string
		open func() ([2]int, error)
	}{
		{"pipe", func() (p [2]int, err error) { return p, unix.Pipe2(p[:], unix.O_CLOEXEC) }},
		{"unix stream", func() ([2]int, error) { return unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0) }},
		{"unix seqpacket", func() ([2]int, error) {
			return unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		}},
	}
	for _, pair := range pairs {
		t.Run(pair.name, func(t *testing.T) {
			fds, err := pair.open()
			if err != nil {
				t.Fatal(err)
			}
			err = sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
				r, err := sched.NewFD(task, fds[0], "r")
				if err != nil {
					return err
				}
				defer r.Close()
				w, err := sched.NewFD(task, fds[1], "w")
				if err != nil {
					return err
				}
				r.SetReadDeadline(time.Now().Add(10 * time.Second))
				turns := sched.NewChan[[]string](0)
				task.Go(func(task *sched.Task) error {
					defer w.Close()
					for {
						msgs, ok := turns.Recv(task)
						if !ok {
							return nil
						}
						for _, m := range msgs {
							if _, err := w.Write(task, []byte(m)); err != nil {
								return err
							}
						}
					}
				})
				buf := make([]byte, 16)
				read := func(want string) error {
					var got []byte
					for len(got) < len(want) {
						n, err := r.Read(task, buf)
						if err != nil {
							return fmt.Errorf("reading %q, after %q: %w", want, got, err)
						}
						got = append(got, buf[:n]...)
					}
					if string(got) != want {
						return fmt.Errorf("read %q, want %q", got, want)
					}
					return nil
				}
				for _, turn := range [][]string{{"ab"}, {"cd"}, {"e", "f"}} {
					turns.Send(task, turn)
					if err := read(strings.Join(turn, "")); err != nil {
						return err
					}
				}
				turns.Send(task, []string{"g"})
				turns.Close() // the writer writes g and closes
				if err := read("g"); err != nil {
					return err
				}
				if n, err := r.Read(task, buf); err != io.EOF {
					return fmt.Errorf("after the writer closed: %d bytes, %v; want io.EOF", n, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A task parked in Read, after an echo, holds Go's smallest stack, 2 KiB:
// what a connection of a server costs in stack, as a goroutine parked in a
// net.Conn's Read does. (The race detector's frames are larger.)
func TestFDParkedStack(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's frames are larger")
	}
	const n = 300
	var grown uint64
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		var ours []*sched.FD
		defer func() {
			for _, f := range ours {
				f.Close()
			}
		}()
		before := stackInuse()
		for range n {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			mine, err := sched.NewFD(task, fds[0], "mine")
			if err != nil {
				return err
			}
			theirs, err := sched.NewFD(task, fds[1], "theirs")
			if err != nil {
				return err
			}
			ours = append(ours, mine)
			task.Go(func(task *sched.Task) error {
				defer theirs.Close()
				buf := make([]byte, 64)
				for {
					n, err := theirs.Read(task, buf)
					if err != nil {
						return nil
					}
					if _, err := theirs.Write(task, buf[:n]); err != nil {
						return err
					}
				}
			})
		}
		for _, f := range ours {
			if _, err := f.Write(task, []byte("x")); err != nil {
				return err
			}
			// On one thread, the echo comes once its task has parked in
			// Read again.
			if err := readFull(task, f, make([]byte, 1)); err != nil {
				return err
			}
		}
		grown = stackInuse() - before
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if per := grown / n; per > 3<<10 {
		t.Fatalf("%d bytes of stack per task parked in Read, want 2 KiB: a frame on the way from the task to its park grew (see FD.Read)", per)
	}
}

func stackInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse
}

// A write larger than the pipe's buffer parks the writer until the reader
// drains it; every byte arrives, in order.
func TestFDLargeWrite(t *testing.T) {
	err := sched.New(sched.Threads(2)).Run(func(task *sched.Task) error {
		r, w := pipe(t, task)
		want := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		g := sched.NewGroup(task)
		g.Go(task, func(task *sched.Task) error {
			defer w.Close()
			n, err := w.Write(task, want)
			if n != len(want) {
				return fmt.Errorf("wrote %d of %d bytes: %v", n, len(want), err)
			}
			return err
		})
		var got []byte
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(task, buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		r.Close()
		if !bytes.Equal(got, want) {
			return fmt.Errorf("read %d bytes, not the %d written", len(got), len(want))
		}
		return g.Wait(task)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Close wakes every task parked on the FD with net.ErrClosed, and later
// calls fail the same way.
func TestFDCloseWakes(t *testing.T) {
	tr := new(ioTracer)
	err := sched.New(sched.Threads(2), sched.WithTracer(tr)).Run(func(task *sched.Task) error {
		r, w := pipe(t, task)
		defer w.Close()
		g := sched.NewGroup(task)
		for range 3 {
			g.Go(task, func(task *sched.Task) error {
				_, err := r.Read(task, make([]byte, 1))
				if !errors.Is(err, net.ErrClosed) {
					return fmt.Errorf("read on a closed FD: %v, want net.ErrClosed", err)
				}
				return nil
			})
		}
		tr.waitParked(task, 3)
		if err := r.Close(); err != nil {
			return err
		}
		if err := g.Wait(task); err != nil {
			return err
		}
		if _, err := r.Read(task, make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("read after Close: %v", err)
		}
		if err := r.Close(); !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("second Close: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ioTracer counts the parks on I/O and keeps the last one's reason.
type ioTracer struct {
	parks atomic.Int32
	mu    sync.Mutex
	last  sched.WaitReason
}

func (tr *ioTracer) Spawn(task, parent *sched.Task)       {}
func (tr *ioTracer) Resume(task *sched.Task, thread int)  {}
func (tr *ioTracer) Wake(task, by *sched.Task)            {}
func (tr *ioTracer) Rewait(*sched.Task, sched.WaitReason) {}
func (tr *ioTracer) Done(task *sched.Task, err error)     {}
func (tr *ioTracer) Park(task *sched.Task, why sched.WaitReason) {
	if why.Kind == sched.WaitIORead || why.Kind == sched.WaitIOWrite {
		tr.mu.Lock()
		tr.last = why
		tr.mu.Unlock()
		tr.parks.Add(1)
	}
}

// waitParked yields until n tasks have parked on I/O.
func (tr *ioTracer) waitParked(task *sched.Task, n int32) {
	for tr.parks.Load() < n {
		task.Yield()
	}
}

// A read deadline ends a parked read with an error matching
// os.ErrDeadlineExceeded; one in the past fails at once; moving it on lets
// reads wait again.
func TestFDDeadline(t *testing.T) {
	err := sched.New(sched.Threads(2)).Run(func(task *sched.Task) error {
		r, w := pipe(t, task)
		defer r.Close()
		defer w.Close()
		buf := make([]byte, 8)
		r.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
		if _, err := r.Read(task, buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("read past its deadline: %v", err)
		}
		r.SetReadDeadline(time.Now().Add(-time.Second))
		if _, err := r.Read(task, buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("read with a deadline in the past: %v", err)
		}
		if err := r.WaitRead(task); !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("wait with a deadline in the past: %v", err)
		}
		r.SetReadDeadline(time.Time{})
		if _, err := w.Write(task, []byte("ok")); err != nil {
			return err
		}
		if n, err := r.Read(task, buf); err != nil || string(buf[:n]) != "ok" {
			return fmt.Errorf("read after clearing the deadline: %q, %v", buf[:n], err)
		}
		// A deadline moved on while a read waits: the read waits on.
		r.SetReadDeadline(time.Now().Add(time.Millisecond))
		g := sched.NewGroup(task)
		g.Go(task, func(task *sched.Task) error {
			r.SetReadDeadline(time.Now().Add(time.Hour))
			w.Write(task, []byte("late"))
			return nil
		})
		n, err := r.Read(task, buf)
		if gerr := g.Wait(task); gerr != nil {
			return gerr
		}
		if err != nil || string(buf[:n]) != "late" {
			return fmt.Errorf("read whose deadline moved on: %q, %v", buf[:n], err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A read parked in a Group ends with the Group's cancellation: here, the
// failure of another of its tasks.
func TestFDCancel(t *testing.T) {
	tr := new(ioTracer)
	failed := errors.New("failed")
	err := sched.New(sched.Threads(2), sched.WithTracer(tr)).Run(func(task *sched.Task) error {
		r, w := pipe(t, task)
		defer r.Close()
		defer w.Close()
		g := sched.NewGroup(task)
		var readErr error
		g.Go(task, func(task *sched.Task) error {
			_, readErr = r.Read(task, make([]byte, 1))
			return nil
		})
		g.Go(task, func(task *sched.Task) error {
			tr.waitParked(task, 1)
			return failed
		})
		if err := g.Wait(task); !errors.Is(err, failed) {
			return fmt.Errorf("Group.Wait: %v", err)
		}
		if !errors.Is(readErr, context.Canceled) {
			return fmt.Errorf("cancelled read: %v, want context.Canceled", readErr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A regular file is refused, and stays the caller's; a deterministic run
// refuses real descriptors.
func TestFDRefused(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "regular")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = sched.New().Run(func(task *sched.Task) error {
		_, err := sched.NewFD(task, int(f.Fd()), "file")
		if !errors.Is(err, sched.ErrNotPollable) {
			return fmt.Errorf("NewFD of a regular file: %v, want ErrNotPollable", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("still mine"); err != nil {
		t.Fatalf("the file after NewFD refused it: %v", err)
	}
	err = sched.New(sched.Deterministic(newSeeded(1))).Run(func(task *sched.Task) error {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return err
		}
		defer unix.Close(p[0])
		defer unix.Close(p[1])
		if _, err := sched.NewFD(task, p[0], "pipe"); !errors.Is(err, sched.ErrDeterministic) {
			return fmt.Errorf("NewFD in a deterministic run: %v, want ErrDeterministic", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A task that yields in a loop keeps its only worker busy; the worker still
// polls, so the task parked on the pipe wakes.
func TestFDBusyWorkerPolls(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	var once sync.Once
	tr := new(ioTracer)
	err := sched.New(sched.Threads(1), sched.WithTracer(tr)).Run(func(task *sched.Task) error {
		r, err := sched.NewFD(task, p[0], "pipe r")
		if err != nil {
			return err
		}
		defer r.Close()
		var got string
		g := sched.NewGroup(task)
		g.Go(task, func(task *sched.Task) error {
			buf := make([]byte, 8)
			n, err := r.Read(task, buf)
			got = string(buf[:n])
			return err
		})
		for got == "" {
			once.Do(func() {
				tr.waitParked(task, 1)
				// From outside the run, as the world writes.
				unix.Write(p[1], []byte("world"))
			})
			task.Yield()
		}
		if got != "world" {
			return fmt.Errorf("read %q", got)
		}
		return g.Wait(task)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// An FD left open by its tasks is closed at the end of the run, and a task
// parked on one is not a deadlock: it waits for the world, until its
// context ends.
func TestFDRunEndCloses(t *testing.T) {
	before := openFDs(t)
	ctx, cancel := context.WithCancel(context.Background())
	var readErr error
	tr := new(ioTracer)
	err := sched.New(sched.Threads(2), sched.WithTracer(tr)).RunContext(ctx, func(task *sched.Task) error {
		r, _ := pipe(t, task)
		task.Go(func(task *sched.Task) error {
			_, readErr = r.Read(task, make([]byte, 1))
			return nil
		})
		tr.waitParked(task, 1)
		cancel()
		return nil
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !errors.Is(readErr, context.Canceled) {
		t.Fatalf("the read when the run's context ended: %v", readErr)
	}
	if after := openFDs(t); after != before {
		t.Fatalf("%d descriptors open after the run, %d before", after, before)
	}
}

// The tracer says what an I/O wait waits for: its direction, the FD, its
// descriptor and its name.
func TestFDWaitVisible(t *testing.T) {
	for _, dir := range []string{"read", "write"} {
		t.Run(dir, func(t *testing.T) {
			tr := new(ioTracer)
			err := sched.New(sched.Threads(1), sched.WithTracer(tr)).Run(func(task *sched.Task) error {
				r, w := pipe(t, task)
				defer r.Close()
				defer w.Close()
				f, kind, name := r, sched.WaitIORead, "pipe r"
				op := func(task *sched.Task) (int, error) { return r.Read(task, make([]byte, 1)) }
				if dir == "write" {
					// More than the pipe holds: the write waits for a reader.
					f, kind, name = w, sched.WaitIOWrite, "pipe w"
					op = func(task *sched.Task) (int, error) { return w.Write(task, make([]byte, 1<<20)) }
				}
				h := sched.Spawn(task, op)
				tr.waitParked(task, 1)
				tr.mu.Lock()
				why := tr.last
				tr.mu.Unlock()
				want := fmt.Sprintf("I/O %s on *sched.FD %p (fd %d, %s)", dir, f, f.Fd(), name)
				if why.Kind != kind || why.String() != want || why.Detail() != want {
					t.Errorf("the wait is %v: %q, want %v: %q", why.Kind, why.Detail(), kind, want)
				}
				f.Close()
				if _, err := h.Wait(task); !errors.Is(err, net.ErrClosed) {
					return fmt.Errorf("%s: %v", dir, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Deadlines set from two threads at once, and a Close among them, leave the
// FD usable until it is closed and the run free to end.
func TestFDDeadlinesAtOnce(t *testing.T) {
	err := sched.New(sched.Threads(2)).Run(func(task *sched.Task) error {
		r, w := pipe(t, task)
		defer w.Close()
		g := sched.NewGroup(task)
		for range 2 {
			g.Go(task, func(task *sched.Task) error {
				for i := range 2000 {
					r.SetReadDeadline(task.Now().Add(time.Duration(i%7) * time.Hour))
					if i%100 == 0 {
						task.Yield()
					}
				}
				return nil
			})
		}
		g.Go(task, func(task *sched.Task) error {
			_, err := r.Read(task, make([]byte, 1))
			if !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("the read: %v", err)
			}
			return nil
		})
		task.Yield()
		r.Close()
		return g.Wait(task)
	})
	if err != nil {
		t.Fatal(err)
	}
}
