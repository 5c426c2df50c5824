package socket_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/socket"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// run runs f as the main task of a scheduler with two threads, and fails
// the test with the run's error. It checks that no descriptor is left open.
func run(t *testing.T, f func(task *sched.Task) error, opts ...sched.Option) {
	t.Helper()
	before := openFDs(t)
	if err := sched.New(append([]sched.Option{sched.Threads(2)}, opts...)...).Run(f); err != nil {
		t.Fatal(err)
	}
	if after := openFDs(t); after != before {
		t.Fatalf("%d descriptors open after the run, %d before", after, before)
	}
}

func openFDs(t testing.TB) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(es)
}

// withListener runs f in a run with a TCP listener on the loopback, closed
// when f returns; with echoing, an echo server serves it.
func withListener(t *testing.T, echoing bool, f func(task *sched.Task, l *socket.Listener) error) {
	t.Helper()
	run(t, func(task *sched.Task) error {
		l, err := socket.Listen(task, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		if echoing {
			echo(task, l)
		}
		return f(task, l)
	})
}

// echo serves l until it is closed: a task per connection that writes back
// what it reads, and half-closes when the client does.
func echo(task *sched.Task, l *socket.Listener) {
	task.GoNamed("accept", func(task *sched.Task) error {
		for {
			c, err := l.Accept(task)
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			task.GoNamed("echo", func(task *sched.Task) error {
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(task, buf)
					if err == io.EOF {
						return c.CloseWrite()
					}
					if err != nil {
						return err
					}
					if _, err := c.Write(task, buf[:n]); err != nil {
						return err
					}
				}
			})
		}
	})
}

// roundTrip sends msg over c, half-closes, and returns all that comes back.
func roundTrip(task *sched.Task, c *socket.Conn, msg []byte) ([]byte, error) {
	// The writer is a task of its own: a large message would fill both
	// directions' buffers if one task wrote it all before reading.
	h := sched.Spawn(task, func(task *sched.Task) (int, error) {
		n, err := c.Write(task, msg)
		if err != nil {
			return n, err
		}
		return n, c.CloseWrite()
	})
	var got []byte
	buf := make([]byte, 16<<10)
	for {
		n, err := c.Read(task, buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return got, err
		}
	}
	_, err := h.Wait(task)
	return got, err
}

// 1 MiB goes through a TCP echo server and back byte for byte, and through
// a Unix socket's.
func TestEcho(t *testing.T) {
	msg := make([]byte, 1<<20)
	for i := range msg {
		msg[i] = byte(i * 7 / 3)
	}
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			address := "127.0.0.1:0"
			if network == "unix" {
				address = filepath.Join(t.TempDir(), "echo.sock")
			}
			run(t, func(task *sched.Task) error {
				l, err := socket.Listen(task, network, address)
				if err != nil {
					return err
				}
				defer l.Close()
				echo(task, l)
				c, err := socket.Dial(task, network, l.Addr().String())
				if err != nil {
					return err
				}
				defer c.Close()
				if c.RemoteAddr().String() != l.Addr().String() {
					return fmt.Errorf("dialed %v, connected to %v", l.Addr(), c.RemoteAddr())
				}
				got, err := roundTrip(task, c, msg)
				if err != nil {
					return err
				}
				if !bytes.Equal(got, msg) {
					return fmt.Errorf("echoed %d bytes, not the %d sent", len(got), len(msg))
				}
				return nil
			})
			if network == "unix" {
				if _, err := os.Stat(address); !os.IsNotExist(err) {
					t.Fatalf("the socket file after Close: %v", err)
				}
			}
		})
	}
}

// More idle connections than Await has goroutines: each holds a task, and
// the server still answers the next client.
func TestManyIdle(t *testing.T) {
	const idle = 300 // Await's pool holds 64
	withListener(t, true, func(task *sched.Task, l *socket.Listener) error {
		var conns []*socket.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range idle {
			c, err := socket.Dial(task, "tcp", l.Addr().String())
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		// Each idle client has a task parked in Read on the server.
		c, err := socket.Dial(task, "tcp", l.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		got, err := roundTrip(task, c, []byte("hello"))
		if err != nil || string(got) != "hello" {
			return fmt.Errorf("the client after %d idle ones: %q, %v", idle, got, err)
		}
		return nil
	})
}

// A half-close: the server reads the client's end of stream after all it
// sent, and answers on the side still open.
func TestHalfClose(t *testing.T) {
	withListener(t, false, func(task *sched.Task, l *socket.Listener) error {
		h := sched.Spawn(task, func(task *sched.Task) (string, error) {
			c, err := l.Accept(task)
			if err != nil {
				return "", err
			}
			defer c.Close()
			all, err := io.ReadAll(c.Bind(task))
			if err != nil {
				return "", err
			}
			_, err = c.Write(task, []byte(fmt.Sprintf("got %d bytes", len(all))))
			return string(all), err
		})
		c, err := socket.Dial(task, "tcp", l.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		c.Write(task, []byte("one "))
		c.Write(task, []byte("two"))
		if err := c.CloseWrite(); err != nil {
			return err
		}
		reply, err := io.ReadAll(c.Bind(task))
		if err != nil {
			return err
		}
		got, err := h.Wait(task)
		if err != nil {
			return err
		}
		if got != "one two" || string(reply) != "got 7 bytes" {
			return fmt.Errorf("server read %q, client read %q", got, reply)
		}
		return nil
	})
}

// A peer that resets the connection while the client writes: the write
// fails with ECONNRESET or EPIPE inside a *net.OpError, and nothing hangs.
func TestPeerReset(t *testing.T) {
	withListener(t, false, func(task *sched.Task, l *socket.Listener) error {
		task.Go(func(task *sched.Task) error {
			c, err := l.Accept(task)
			if err != nil {
				return err
			}
			buf := make([]byte, 1024)
			c.Read(task, buf) // some of it, then a reset
			c.FD().Control(func(fd int) {
				unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
			})
			return c.Close()
		})
		c, err := socket.Dial(task, "tcp", l.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		chunk := make([]byte, 64<<10)
		for range 1000 { // 64 MiB at most: far more than the buffers hold
			if _, err = c.Write(task, chunk); err != nil {
				break
			}
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "write" {
			return fmt.Errorf("write to a reset peer: %v, want a *net.OpError", err)
		}
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			return fmt.Errorf("write to a reset peer: %v, want ECONNRESET or EPIPE", err)
		}
		return nil
	})
}

// A read parked in a Group ends with the Group's cancellation; a read
// deadline ends one with a timeout; Close ends Accept.
func TestCancelDeadlineClose(t *testing.T) {
	withListener(t, true, func(task *sched.Task, l *socket.Listener) error {
		c, err := socket.Dial(task, "tcp", l.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()

		g := sched.NewGroup(task)
		var readErr error
		g.Go(task, func(task *sched.Task) error {
			_, readErr = c.Read(task, make([]byte, 8))
			return nil
		})
		stop := errors.New("stop")
		g.Go(task, func(task *sched.Task) error {
			task.Yield() // the read is parked by now, or will find the Group cancelled
			return stop
		})
		if err := g.Wait(task); !errors.Is(err, stop) {
			return fmt.Errorf("Group.Wait: %v", err)
		}
		if !errors.Is(readErr, context.Canceled) {
			return fmt.Errorf("a read whose Group was cancelled: %v", readErr)
		}

		c.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
		_, err = c.Read(task, make([]byte, 8))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			return fmt.Errorf("a read past its deadline: %v", err)
		}

		h := sched.Spawn(task, func(task *sched.Task) (*socket.Conn, error) {
			return l.Accept(task)
		})
		task.Yield()
		l.Close()
		if _, err := h.Wait(task); !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("Accept on a closed listener: %v", err)
		}
		return nil
	})
}

// crypto/tls, bufio and encoding/json run over Bind unchanged: a TLS
// handshake and an echo of JSON lines between two tasks, with a certificate
// made here.
func TestTLSOverBind(t *testing.T) {
	cert, pool := selfSigned(t)
	withListener(t, false, func(task *sched.Task, l *socket.Listener) error {
		type msg struct {
			N    int
			Text string
		}
		task.Go(func(task *sched.Task) error {
			c, err := l.Accept(task)
			if err != nil {
				return err
			}
			tc := tls.Server(c.Bind(task), &tls.Config{Certificates: []tls.Certificate{cert}})
			defer tc.Close()
			dec, enc := json.NewDecoder(bufio.NewReader(tc)), json.NewEncoder(tc)
			for {
				var m msg
				if err := dec.Decode(&m); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
				m.N++
				if err := enc.Encode(m); err != nil {
					return err
				}
			}
		})
		c, err := socket.Dial(task, "tcp", l.Addr().String())
		if err != nil {
			return err
		}
		tc := tls.Client(c.Bind(task), &tls.Config{RootCAs: pool, ServerName: "weave.test"})
		defer tc.Close()
		if err := tc.Handshake(); err != nil {
			return err
		}
		dec, enc := json.NewDecoder(bufio.NewReader(tc)), json.NewEncoder(tc)
		for i := range 100 {
			if err := enc.Encode(msg{i, "hello"}); err != nil {
				return err
			}
			var m msg
			if err := dec.Decode(&m); err != nil {
				return err
			}
			if m.N != i+1 || m.Text != "hello" {
				return fmt.Errorf("sent %d, got %+v", i, m)
			}
		}
		return tc.CloseWrite()
	})
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "weave.test"},
		DNSNames:              []string{"weave.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// UDP: datagrams keep their bounds and their sender.
func TestUDP(t *testing.T) {
	run(t, func(task *sched.Task) error {
		a, err := socket.ListenPacket(task, "udp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer a.Close()
		b, err := socket.ListenPacket(task, "udp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer b.Close()
		task.Go(func(task *sched.Task) error {
			buf := make([]byte, 100)
			for range 3 {
				n, from, err := b.ReadFrom(task, buf)
				if err != nil {
					return err
				}
				if _, err := b.WriteTo(task, bytes.ToUpper(buf[:n]), from); err != nil {
					return err
				}
			}
			return nil
		})
		buf := make([]byte, 100)
		for _, m := range []string{"one", "two", "three"} {
			if _, err := a.WriteTo(task, []byte(m), b.LocalAddr()); err != nil {
				return err
			}
			n, from, err := a.ReadFrom(task, buf)
			if err != nil {
				return err
			}
			if string(buf[:n]) != string(bytes.ToUpper([]byte(m))) || from.String() != b.LocalAddr().String() {
				return fmt.Errorf("sent %q, got %q from %v", m, buf[:n], from)
			}
		}
		return nil
	})
}

// A pipe and a net.Conn made by package net are adopted; a regular file is
// refused.
func TestAdopt(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	nc, err := net.Dial("tcp", nl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	peer, err := nl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	f, err := os.CreateTemp(t.TempDir(), "regular")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	run(t, func(task *sched.Task) error {
		r, err := socket.Adopt(task, pr)
		if err != nil {
			return err
		}
		defer r.Close()
		if _, err := pw.WriteString("through a pipe"); err != nil {
			return err
		}
		buf := make([]byte, 64)
		n, err := r.Read(task, buf)
		if err != nil || string(buf[:n]) != "through a pipe" {
			return fmt.Errorf("adopted pipe: %q, %v", buf[:n], err)
		}

		c, err := socket.AdoptConn(task, nc.(*net.TCPConn))
		if err != nil {
			return err
		}
		defer c.Close()
		if c.RemoteAddr().String() != nl.Addr().String() {
			return fmt.Errorf("adopted conn's peer: %v, want %v", c.RemoteAddr(), nl.Addr())
		}
		if _, err := c.Write(task, []byte("ping")); err != nil {
			return err
		}
		// The peer is a goroutine's: read it through Await.
		got, err := sched.Await(task, func(ctx context.Context) (string, error) {
			b := make([]byte, 4)
			_, err := io.ReadFull(peer, b)
			return string(b), err
		})
		if err != nil || got != "ping" {
			return fmt.Errorf("the peer read %q, %v", got, err)
		}

		if _, err := socket.Adopt(task, f); !errors.Is(err, sched.ErrNotPollable) {
			return fmt.Errorf("adopting a regular file: %v, want sched.ErrNotPollable", err)
		}
		return nil
	})
}

// Bad input gets a clear error: an unknown network, a refused connection,
// an address in use.
func TestErrors(t *testing.T) {
	run(t, func(task *sched.Task) error {
		if _, err := socket.Dial(task, "ip", "127.0.0.1:1"); err == nil {
			return errors.New("dialing network \"ip\" worked")
		}
		l, err := socket.Listen(task, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addr := l.Addr().String()
		if _, err := socket.Listen(task, "tcp", addr); !errors.Is(err, syscall.EADDRINUSE) {
			l.Close()
			return fmt.Errorf("listening twice on %s: %v", addr, err)
		}
		l.Close()
		if _, err := socket.Dial(task, "tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("dialing a closed port: %v, want ECONNREFUSED", err)
		}
		return nil
	})
}

// Sockets have no place in a deterministic run.
func TestDeterministicRefuses(t *testing.T) {
	before := openFDs(t)
	err := sched.New(sched.Deterministic(firstChooser{})).Run(func(task *sched.Task) error {
		_, err := socket.Listen(task, "tcp", "127.0.0.1:0")
		if !errors.Is(err, sched.ErrDeterministic) {
			return fmt.Errorf("Listen in a deterministic run: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if after := openFDs(t); after != before {
		t.Fatalf("%d descriptors open, %d before", after, before)
	}
}

type firstChooser struct{}

func (firstChooser) Choose(runnable []*sched.Task) int { return 0 }

// 10,000 connections opened and closed, 200 at a time: no descriptor and no
// goroutine is left (run and TestMain check).
func TestTenThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	withListener(t, true, func(task *sched.Task, l *socket.Listener) error {
		const total, batch = 10000, 200
		for done := 0; done < total; done += batch {
			g := sched.NewGroup(task)
			for range batch {
				g.Go(task, func(task *sched.Task) error {
					c, err := socket.Dial(task, "tcp", l.Addr().String())
					if err != nil {
						return err
					}
					defer c.Close()
					got, err := roundTrip(task, c, []byte("x"))
					if err != nil || string(got) != "x" {
						return fmt.Errorf("echo: %q, %v", got, err)
					}
					return nil
				})
			}
			if err := g.Wait(task); err != nil {
				return err
			}
		}
		return nil
	})
}
