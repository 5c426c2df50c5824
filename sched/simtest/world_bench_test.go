package simtest_test

import (
	"io"
	"testing"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/sched/simtest"
	"github.com/weavert/weave/socket"
)

// One simulated message: a 64-byte write on a stream between two hosts, its
// delivery after the network's latency, and the wake of the reader; the
// reader answers, so that each message waits for the one before. Beside it,
// the baseline: a round trip of two tasks over Chans, in the same
// deterministic mode.
func BenchmarkSimMessage(b *testing.B) {
	const rounds = 5000
	msgs := 0
	b.ReportAllocs()
	for b.Loop() {
		f, _ := simtest.Explore(func(task *sched.Task) error {
			w := simtest.NewWorld(task)
			w.Host(task, "server", func(task *sched.Task) error {
				l, err := socket.Listen(task, "tcp", ":7000")
				if err != nil {
					return err
				}
				c, err := l.Accept(task)
				if err != nil {
					return err
				}
				buf, r := make([]byte, 64), c.Bind(task)
				for {
					if _, err := io.ReadFull(r, buf); err != nil {
						return nil
					}
					c.Write(task, buf)
				}
			})
			done := sched.NewChan[error](1)
			w.Host(task, "client", func(task *sched.Task) error {
				c, err := socket.Dial(task, "tcp", "server:7000")
				if err != nil {
					done.Send(task, err)
					return nil
				}
				buf, r := make([]byte, 64), c.Bind(task)
				for range rounds {
					c.Write(task, buf)
					if _, err := io.ReadFull(r, buf); err != nil {
						done.Send(task, err)
						return nil
					}
				}
				done.Send(task, nil)
				return nil
			})
			err, _ := done.Recv(task)
			return err
		}, simtest.Seeds(1), simtest.FirstSeed(uint64(b.N)))
		if f != nil {
			b.Fatal(f)
		}
		msgs += 2 * rounds
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(msgs), "ns/msg")
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
}

// The baseline of BenchmarkSimMessage: a Chan round trip between two tasks
// of a deterministic run.
func BenchmarkSimChanRoundTrip(b *testing.B) {
	trips := 0
	for b.Loop() {
		f, _ := simtest.Explore(pingPong, simtest.Seeds(1), simtest.FirstSeed(uint64(b.N)))
		if f != nil {
			b.Fatal(f)
		}
		trips += 10_000
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(trips), "ns/roundtrip")
}
