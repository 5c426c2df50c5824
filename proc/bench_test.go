package proc_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weavert/weave/proc"
)

// Each benchmark runs the operation and its baseline alternately in the same
// loop, so that both see the same machine: ns/op is proc's figure,
// baseline-ns/op the baseline's, and the ratio is the one the package doc
// promises. The machine is shared and noisy; compare ratios, not absolute
// numbers.

// BenchmarkStart is the time from Start to the first message received from
// the child, against os/exec starting the same binary and reading the first
// byte of its standard output. Ending and reaping each child follows,
// untimed.
func BenchmarkStart(b *testing.B) {
	b.ReportAllocs()
	ctx := context.Background()
	var procT, execT time.Duration
	for b.Loop() {
		t0 := time.Now()
		cmd := exec.Command("/proc/self/exe")
		cmd.Env = append(os.Environ(), envExecChild+"=1")
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(out, make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		execT += time.Since(t0)
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}

		t1 := time.Now()
		p, err := proc.Start(ctx, proc.Spec{Entry: "hello"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Conn().Recv(); err != nil {
			b.Fatal(err)
		}
		procT += time.Since(t1)
		if _, err := p.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	report(b, procT, execT, "x-exec-time")
}

// BenchmarkRoundTrip is one message to an echoing child and back over a
// Conn, against the same over a raw socketpair with blocking read(2) and
// write(2) on both ends. MB/s counts both directions. The parent receives
// with Recv (a new slice per message) or RecvBuf (one reused buffer, as the
// raw baseline and the echoing child do).
func BenchmarkRoundTrip(b *testing.B) {
	for _, bench := range []struct {
		name  string
		size  int
		reuse bool
	}{
		{"64B/Recv", 64, false},
		{"64B/RecvBuf", 64, true},
		{"64KiB/Recv", 64 << 10, false},
		{"64KiB/RecvBuf", 64 << 10, true},
	} {
		size := bench.size
		b.Run(bench.name, func(b *testing.B) {
			p, err := proc.Start(context.Background(), proc.Spec{Entry: "echo"})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { p.Conn().Close(); p.Wait() }()
			rawFD, rawWait := startRawEcho(b, size)
			defer rawWait()

			c := p.Conn()
			msg := make([]byte, size)
			buf := make([]byte, size)
			b.ReportAllocs()
			// Blocks of 64 round trips alternate between the two: a
			// child idle for a whole other block would wake up slower
			// than one in a steady ping-pong. Each side's figure is the
			// median of its block means, which a burst of load from
			// elsewhere on the machine moves less than the mean.
			const block = 64
			var procBlocks, rawBlocks []float64
			var blockStart time.Time
			for i := 0; b.Loop(); i++ {
				if i%block == 0 {
					blockStart = time.Now()
				}
				if i/block%2 == 0 {
					if !rawFull(rawFD, msg, unix.Write) || !rawFull(rawFD, buf, unix.Read) {
						b.Fatal("raw echo failed")
					}
				} else {
					if err := c.Send(msg); err != nil {
						b.Fatal(err)
					}
					var in []byte // Recv: a new slice for every message
					if bench.reuse {
						in = buf
					}
					if _, err := c.RecvBuf(in); err != nil {
						b.Fatal(err)
					}
				}
				if i%block == block-1 {
					mean := float64(time.Since(blockStart)) / block
					if i/block%2 == 0 {
						rawBlocks = append(rawBlocks, mean)
					} else {
						procBlocks = append(procBlocks, mean)
					}
				}
			}
			if len(procBlocks) == 0 || len(rawBlocks) == 0 {
				return // the first, calibrating run of b.Loop
			}
			procOp, rawOp := median(procBlocks), median(rawBlocks)
			b.ReportMetric(procOp, "ns/op")
			b.ReportMetric(rawOp, "baseline-ns/op")
			b.ReportMetric(float64(2*size)/procOp*1e3, "MB/s")
			// Speed relative to the raw socketpair: ≥ 0.8 is the target.
			b.ReportMetric(rawOp/procOp, "x-raw-speed")
		})
	}
}

// startRawEcho starts this binary as a raw echo child (see TestMain) on a
// socketpair and returns the parent's descriptor.
func startRawEcho(b *testing.B, size int) (int, func()) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	child := os.NewFile(uintptr(fds[1]), "raw-child")
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), envRawEcho+"="+strconv.Itoa(size))
	cmd.ExtraFiles = []*os.File{child}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	child.Close()
	return fds[0], func() {
		unix.Close(fds[0])
		cmd.Wait()
	}
}

// report sets ns/op to proc's time per operation and adds the baseline's,
// and, if unit is set, proc's time over the baseline's.
func report(b *testing.B, procT, baseT time.Duration, unit string) {
	n := float64(b.N)
	b.ReportMetric(float64(procT.Nanoseconds())/n, "ns/op")
	b.ReportMetric(float64(baseT.Nanoseconds())/n, "baseline-ns/op")
	if unit != "" && baseT > 0 {
		b.ReportMetric(float64(procT)/float64(baseT), unit)
	}
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// BenchmarkSelf is the cost of reading this process's Stat from /proc.
func BenchmarkSelf(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := proc.Self(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConnLocal is a 64-byte round trip between two goroutines over a
// socketpair in one process: the Conn's own overhead without a second
// process's scheduling.
func BenchmarkConnLocal(b *testing.B) {
	a, c := socketpair(b, 0)
	go func() {
		for {
			m, err := c.Recv()
			if err != nil {
				return
			}
			c.Send(m)
		}
	}()
	msg := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		a.Send(msg)
		a.Recv()
	}
}
