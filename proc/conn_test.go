package proc_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weavert/weave/proc"
)

// socketpair returns two Conns joined by a Unix socketpair, as Start makes.
func socketpair(t testing.TB, max int) (*proc.Conn, *proc.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := proc.NewConn(os.NewFile(uintptr(fds[0]), "a"), max)
	b := proc.NewConn(os.NewFile(uintptr(fds[1]), "b"), max)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// pipe returns two Conns over net.Pipe: a stream that is not a file.
func pipe(t testing.TB, max int) (*proc.Conn, *proc.Conn) {
	x, y := net.Pipe()
	a, b := proc.NewConn(x, max), proc.NewConn(y, max)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// Messages of every size up to the maximum arrive whole and in order, over a
// socketpair and over a plain stream, with senders in parallel.
func TestConnRoundTrip(t *testing.T) {
	for name, mk := range map[string]func(testing.TB, int) (*proc.Conn, *proc.Conn){"socketpair": socketpair, "pipe": pipe} {
		t.Run(name, func(t *testing.T) {
			const max = 256 << 10
			a, b := mk(t, max)
			sizes := []int{0, 1, 3, 4, 5, 64, 4091, 4092, 4093, 4096, 65536, max}
			var wg sync.WaitGroup
			wg.Go(func() {
				for _, n := range sizes {
					if err := a.Send(bytes.Repeat([]byte{byte(n)}, n)); err != nil {
						t.Errorf("Send(%d): %v", n, err)
						return
					}
				}
				a.Close()
			})
			for _, n := range sizes {
				m, err := b.Recv()
				if err != nil || !bytes.Equal(m, bytes.Repeat([]byte{byte(n)}, n)) {
					t.Fatalf("Recv = %d bytes, %v; want %d bytes", len(m), err, n)
				}
			}
			if _, err := b.Recv(); err != io.EOF {
				t.Fatalf("Recv after the peer closed = %v, want io.EOF", err)
			}
			wg.Wait()
		})
	}
}

// Concurrent Sends never interleave their frames.
func TestConnConcurrentSend(t *testing.T) {
	a, b := socketpair(t, 0)
	const senders, each = 4, 50
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			msg := bytes.Repeat([]byte{byte(s)}, 10000+s)
			for range each {
				if err := a.Send(msg); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range senders * each {
		m, err := b.Recv()
		if err != nil {
			t.Fatal(err)
		}
		s := len(m) - 10000
		if s < 0 || s >= senders || !bytes.Equal(m, bytes.Repeat([]byte{byte(s)}, len(m))) {
			t.Fatalf("frame of %d bytes is mixed", len(m))
		}
	}
	wg.Wait()
}

// A message over the maximum is refused by Send, which leaves the connection
// usable; a header over the maximum ends the connection at the receiver.
func TestConnFrameTooLarge(t *testing.T) {
	a, b := socketpair(t, 100)
	if err := a.Send(make([]byte, 101)); !errors.Is(err, proc.ErrFrameTooLarge) {
		t.Fatalf("Send(101 bytes) = %v, want ErrFrameTooLarge", err)
	}
	if err := a.Send(make([]byte, 100)); err != nil {
		t.Fatalf("Send(100 bytes) after a refused one: %v", err)
	}
	if m, err := b.Recv(); err != nil || len(m) != 100 {
		t.Fatalf("Recv = %d bytes, %v", len(m), err)
	}

	raw, c := rawPeer(t, 100)
	raw.Write([]byte{0xff, 0xff, 0xff, 0xff})
	_, err := c.Recv()
	if !errors.Is(err, proc.ErrFrameTooLarge) {
		t.Fatalf("Recv of a 4 GiB header = %v, want ErrFrameTooLarge", err)
	}
	if _, err2 := c.Recv(); err2 != err {
		t.Fatalf("second Recv = %v, want the same error", err2)
	}
	if err := c.Send(nil); err != proc.ErrClosed {
		t.Fatalf("Send after a malformed frame = %v, want ErrClosed", err)
	}
	if n, err := raw.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("peer of the malformed connection reads %d, %v; want EOF", n, err)
	}
}

// rawPeer returns a Conn and the raw other end of its socketpair.
func rawPeer(t *testing.T, max int) (*os.File, *proc.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	raw := os.NewFile(uintptr(fds[0]), "raw")
	c := proc.NewConn(os.NewFile(uintptr(fds[1]), "conn"), max)
	t.Cleanup(func() { raw.Close(); c.Close() })
	return raw, c
}

// A peer costs the receiver what it sends, not what it announces: with the
// largest MaxFrame, a header announcing 2 GiB followed by the end of the
// stream allocates little, and one followed by 1 MiB allocates a few MiB,
// over a socketpair and over a plain stream.
func TestConnAllocatesWhatArrives(t *testing.T) {
	const max = 1<<31 - 1
	header := []byte{0x7f, 0xff, 0xff, 0xff}
	for _, tc := range []struct {
		name   string
		sent   int    // bytes of payload after the header
		budget uint64 // most the Recv may allocate
	}{
		{"header only", 0, 256 << 10},
		{"3 bytes", 3, 256 << 10},
		{"1 MiB", 1 << 20, 3 << 20},
	} {
		stream := append(append([]byte(nil), header...), make([]byte, tc.sent)...)
		peers := map[string]func() *proc.Conn{
			"stream": func() *proc.Conn { return proc.NewConn(readOnly{bytes.NewReader(stream)}, max) },
			"socketpair": func() *proc.Conn {
				raw, c := rawPeer(t, max)
				go func() {
					raw.Write(stream)
					raw.Close()
				}()
				return c
			},
		}
		for peer, mk := range peers {
			for _, recv := range []string{"Recv", "RecvBuf"} {
				t.Run(tc.name+"/"+peer+"/"+recv, func(t *testing.T) {
					c := mk()
					buf := make([]byte, 0, 8<<10)
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					before := ms.TotalAlloc
					var err error
					if recv == "Recv" {
						_, err = c.Recv()
					} else {
						_, err = c.RecvBuf(buf)
					}
					runtime.ReadMemStats(&ms)
					if !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatalf("%s = %v, want io.ErrUnexpectedEOF", recv, err)
					}
					if alloc := ms.TotalAlloc - before; alloc > tc.budget {
						t.Fatalf("%s of a frame announcing 2 GiB, of which %d bytes came, allocated %d bytes; want at most %d",
							recv, tc.sent, alloc, tc.budget)
					}
				})
			}
		}
	}
}

// A stream that ends inside a header or a payload is io.ErrUnexpectedEOF;
// between frames it is io.EOF.
func TestConnTruncated(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"half header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"half payload", []byte{0, 0, 0, 5, 'a', 'b'}, io.ErrUnexpectedEOF},
		{"one frame", []byte{0, 0, 0, 1, 'a'}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := proc.NewConn(readOnly{bytes.NewReader(tc.in)}, 0)
			_, err := c.Recv()
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.Recv()
				tc.want = io.EOF
			}
			if !errors.Is(err, tc.want) || tc.want == io.EOF && err != io.EOF {
				t.Fatalf("Recv = %v, want %v", err, tc.want)
			}
		})
	}
}

type readOnly struct{ io.Reader }

func (readOnly) Write(b []byte) (int, error) { return len(b), nil }
func (readOnly) Close() error                { return nil }

// Close wakes a Recv and a Send blocked in other goroutines; both return
// ErrClosed. No handshake is needed: whether they block before or after
// Close, the result is the same.
func TestConnCloseUnblocks(t *testing.T) {
	a, _ := socketpair(t, 0)
	errs := make(chan error, 2)
	go func() { _, err := a.Recv(); errs <- err }()
	go func() {
		big := make([]byte, 8<<20) // larger than the socket buffers: blocks
		errs <- a.Send(big)
	}()
	a.Close()
	for range 2 {
		if err := <-errs; err != proc.ErrClosed {
			t.Fatalf("blocked call returned %v, want ErrClosed", err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// deadlined is the deadline API a Conn has, as net.Conn's.
type deadlined interface {
	SetDeadline(time.Time) error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// deadlines returns c's deadline methods, and fails the test if it has none:
// then a peer that stalls blocks Recv and Send for ever.
func deadlines(t *testing.T, c *proc.Conn) deadlined {
	t.Helper()
	d, ok := any(c).(deadlined)
	if !ok {
		t.Fatal("Conn has no deadlines: a Recv from a peer that stalls blocks for ever")
	}
	return d
}

// A read deadline ends a Recv with an error matching os.ErrDeadlineExceeded,
// whether it waits already or starts later, over a socketpair and over a
// net.Conn; the Conn then works again.
func TestConnReadDeadline(t *testing.T) {
	for name, mk := range map[string]func(testing.TB, int) (*proc.Conn, *proc.Conn){"socketpair": socketpair, "pipe": pipe} {
		t.Run(name, func(t *testing.T) {
			a, b := mk(t, 0)
			d := deadlines(t, b)
			d.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if _, err := b.Recv(); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Recv past its deadline = %v, want os.ErrDeadlineExceeded", err)
			}
			// A deadline moved into the past wakes a Recv that waits.
			errs := make(chan error, 1)
			d.SetReadDeadline(time.Time{})
			go func() { _, err := b.Recv(); errs <- err }()
			d.SetReadDeadline(time.Now().Add(-time.Second))
			if err := <-errs; !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Recv woken by a deadline in the past = %v, want os.ErrDeadlineExceeded", err)
			}
			d.SetReadDeadline(time.Time{})
			go a.Send([]byte("after"))
			if m, err := b.Recv(); err != nil || string(m) != "after" {
				t.Fatalf("Recv after the deadline was lifted = %q, %v", m, err)
			}
		})
	}
}

// A peer that sends half a frame and stalls: Recv ends at its deadline, and
// the half frame stays in the Conn, so that when the rest comes the next
// Recv returns the whole frame and the stream is still in step. This holds
// when the half frame was read into the caller's buffer, which the caller
// may reuse meanwhile.
func TestConnDeadlineMidFrame(t *testing.T) {
	for _, into := range []string{"Recv", "RecvBuf"} {
		t.Run(into, func(t *testing.T) {
			raw, c := rawPeer(t, 0)
			d := deadlines(t, c)
			msg := bytes.Repeat([]byte("0123456789"), 1000)
			frame := binary.BigEndian.AppendUint32(nil, uint32(len(msg)))
			frame = append(frame, msg...)
			raw.Write(frame[:6000]) // the header and part of the payload
			buf := make([]byte, 0, 16<<10)
			recv := func() ([]byte, error) {
				if into == "Recv" {
					return c.Recv()
				}
				return c.RecvBuf(buf)
			}
			d.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if _, err := recv(); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("%s of a stalled half frame = %v, want os.ErrDeadlineExceeded", into, err)
			}
			clear(buf[:cap(buf)]) // the caller reuses its buffer
			raw.Write(frame[6000:])
			raw.Write([]byte{0, 0, 0, 2, 'o', 'k'})
			d.SetReadDeadline(time.Time{})
			if m, err := recv(); err != nil || !bytes.Equal(m, msg) {
				t.Fatalf("%s after the rest came = %d bytes, %v; want the whole frame of %d", into, len(m), err, len(msg))
			}
			if m, err := recv(); err != nil || string(m) != "ok" {
				t.Fatalf("next %s = %q, %v; want the next frame", into, m, err)
			}
		})
	}
}

// A write deadline that passes before any byte of a frame went out leaves the
// Conn as it was; one that cuts a frame breaks the sending side: Send keeps
// failing, and the peer reads io.ErrUnexpectedEOF rather than a stream out of
// step.
func TestConnWriteDeadline(t *testing.T) {
	a, b := socketpair(t, 0)
	d := deadlines(t, a)
	d.SetWriteDeadline(time.Now().Add(-time.Second))
	if err := a.Send([]byte("late")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Send past its deadline = %v, want os.ErrDeadlineExceeded", err)
	}
	d.SetWriteDeadline(time.Time{})
	if err := a.Send([]byte("on time")); err != nil {
		t.Fatalf("Send after the deadline was lifted: %v", err)
	}
	if m, err := b.Recv(); err != nil || string(m) != "on time" {
		t.Fatalf("Recv = %q, %v", m, err)
	}
	// Larger than the socket's buffers, and nobody reads: cut by the deadline.
	d.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	err := a.Send(make([]byte, 8<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Send that cannot finish = %v, want os.ErrDeadlineExceeded", err)
	}
	d.SetWriteDeadline(time.Time{})
	if err2 := a.Send([]byte("more")); err2 != err {
		t.Fatalf("Send after a cut frame = %v, want the same error %v", err2, err)
	}
	if _, err := b.Recv(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("peer's Recv of the cut frame = %v, want io.ErrUnexpectedEOF", err)
	}
}

// A stream without deadlines says so.
func TestConnNoDeadline(t *testing.T) {
	c := proc.NewConn(readOnly{bytes.NewReader(nil)}, 0)
	if err := deadlines(t, c).SetReadDeadline(time.Now()); !errors.Is(err, os.ErrNoDeadline) {
		t.Fatalf("SetReadDeadline on a stream without deadlines = %v, want os.ErrNoDeadline", err)
	}
}

// Send allocates nothing, nor does RecvBuf into a large enough buffer, for
// small and large messages, waits included.
func TestConnAllocs(t *testing.T) {
	for _, size := range []int{64, 64 << 10} {
		a, b := socketpair(t, 0)
		go func() {
			buf := make([]byte, 0, size)
			for {
				m, err := b.RecvBuf(buf)
				if err != nil || b.Send(m) != nil {
					return
				}
			}
		}()
		msg, buf := make([]byte, size), make([]byte, 0, size)
		allocs := testing.AllocsPerRun(100, func() {
			if err := a.Send(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := a.RecvBuf(buf); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("a %d-byte round trip with Send and RecvBuf allocates %v times, want 0", size, allocs)
		}
	}
}

type point struct {
	X, Y int
	Tag  string
}

// The typed helpers round-trip values; a frame that does not decode is an
// error that leaves the connection usable.
func TestConnTyped(t *testing.T) {
	a, b := socketpair(t, 0)
	want := point{1, 2, "p"}
	go func() {
		proc.SendJSON(a, want)
		a.Send([]byte("{not json"))
		proc.SendJSON(a, want)
		proc.SendGob(a, want)
		a.Send([]byte("not gob"))
		proc.SendGob(a, &want)
	}()
	if got, err := proc.RecvJSON[point](b); err != nil || got != want {
		t.Fatalf("RecvJSON = %v, %v", got, err)
	}
	if _, err := proc.RecvJSON[point](b); err == nil {
		t.Fatal("RecvJSON of bad JSON succeeded")
	}
	if got, err := proc.RecvJSON[point](b); err != nil || got != want {
		t.Fatalf("RecvJSON after a bad frame = %v, %v", got, err)
	}
	if got, err := proc.RecvGob[point](b); err != nil || got != want {
		t.Fatalf("RecvGob = %v, %v", got, err)
	}
	if _, err := proc.RecvGob[point](b); err == nil {
		t.Fatal("RecvGob of bad gob succeeded")
	}
	if got, err := proc.RecvGob[*point](b); err != nil || *got != want {
		t.Fatalf("RecvGob after a bad frame = %v, %v", got, err)
	}
}

// FuzzRecv feeds arbitrary bytes to the frame reader. It must return frames no
// larger than the maximum and end with a clean error — io.EOF,
// io.ErrUnexpectedEOF or ErrFrameTooLarge — never panic, and never allocate
// more than twice what arrived plus 64 KiB, whatever a header announces.
func FuzzRecv(f *testing.F) {
	const max = 1 << 20
	frame := func(n uint32, payload string) []byte {
		return append(binary.BigEndian.AppendUint32(nil, n), payload...)
	}
	f.Add([]byte{})
	f.Add(frame(0, ""))
	f.Add(frame(3, "abc"))
	f.Add(append(frame(1, "a"), frame(2, "bc")...))
	f.Add(frame(max, "short"))
	f.Add(frame(max+1, ""))
	f.Add(frame(0xffffffff, "huge"))
	f.Add([]byte{0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := proc.NewConn(readOnly{bytes.NewReader(data)}, max)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		var got int
		var err error
		for {
			var m []byte
			m, err = c.Recv()
			if err != nil {
				break
			}
			if len(m) > max {
				t.Fatalf("Recv returned %d bytes, maximum %d", len(m), max)
			}
			got += 4 + len(m)
		}
		runtime.ReadMemStats(&ms)
		// Frames take twice their bytes at most, with a first 64 KiB for
		// one that has not come; the rest is the read buffer and error text.
		if alloc := ms.TotalAlloc - before; alloc > uint64(2*len(data)+64<<10+16<<10) {
			t.Fatalf("reading %d bytes allocated %d bytes", len(data), alloc)
		}
		switch {
		case err == io.EOF:
			if got != len(data) {
				t.Fatalf("io.EOF after %d of %d bytes", got, len(data))
			}
		case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, proc.ErrFrameTooLarge):
		default:
			t.Fatalf("Recv error %v is not one of the clean ones", err)
		}
	})
}

// refFrames is the reference frame parser: the trivially correct one.
func refFrames(stream []byte) (frames [][]byte, rest []byte) {
	for len(stream) >= 4 {
		n := int(binary.BigEndian.Uint32(stream))
		if len(stream)-4 < n {
			break
		}
		frames = append(frames, stream[4:4+n])
		stream = stream[4+n:]
	}
	return frames, stream
}

// FuzzRecvBufSocket sends a stream of frames over a real socketpair in chunks
// of fuzzed sizes, and receives them with RecvBuf into a buffer of fuzzed
// capacity, Recv and RecvBuf alternating: every path of the reader (one
// readv for header and payload, bytes of the next frames arriving with a
// payload, frames larger than the buffer, split headers) must give what the
// reference parser gives.
func FuzzRecvBufSocket(f *testing.F) {
	f.Add([]byte{1, 200, 3, 0, 5}, uint16(5000), uint16(64), uint8(0))
	f.Add([]byte{255, 255, 1, 2, 0, 0, 9}, uint16(70), uint16(1), uint8(1))
	f.Add([]byte{40, 40, 40, 40}, uint16(4097), uint16(9000), uint8(2))
	f.Fuzz(func(t *testing.T, sizes []byte, bufCap, chunk uint16, mode uint8) {
		if len(sizes) > 64 {
			sizes = sizes[:64]
		}
		var stream []byte
		for i, s := range sizes {
			n := int(s) * 97 // up to ~24 KiB per frame
			stream = binary.BigEndian.AppendUint32(stream, uint32(n))
			stream = append(stream, bytes.Repeat([]byte{byte(i)}, n)...)
		}
		want, _ := refFrames(stream)
		raw, c := rawPeer(t, 1<<20)
		go func() {
			step := int(chunk)%20000 + 1
			for b := stream; len(b) > 0; {
				k := min(step, len(b))
				if _, err := raw.Write(b[:k]); err != nil {
					return
				}
				b = b[k:]
			}
			raw.Close()
		}()
		buf := make([]byte, 0, int(bufCap))
		for i, w := range want {
			var got []byte
			var err error
			if mode%2 == 0 || i%2 == 0 {
				got, err = c.RecvBuf(buf)
			} else {
				got, err = c.Recv()
			}
			if err != nil || !bytes.Equal(got, w) {
				t.Fatalf("frame %d: got %d bytes, %v; want %d bytes", i, len(got), err, len(w))
			}
		}
		if _, err := c.RecvBuf(buf); err != io.EOF {
			t.Fatalf("after the last frame: %v, want io.EOF", err)
		}
	})
}
