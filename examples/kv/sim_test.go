package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/sched/simtest"
	"github.com/weavert/weave/socket"
)

// simDisk is the Disk of a simulated host: what was not synced before a
// crash is lost.
type simDisk struct{ d *simtest.Disk }

func (s simDisk) Load(*sched.Task) ([]byte, error) {
	b, _ := s.d.Read("state")
	return b, nil
}

func (s simDisk) Store(t *sched.Task, data []byte) error {
	if simtest.Buggify(t) {
		t.Sleep(50 * time.Millisecond) // a slow disk
	}
	s.d.Write(t, "state", data)
	return s.d.Sync(t)
}

// sim is a simulated cluster and its clients.
type sim struct {
	duration time.Duration // how long the clients work, in virtual time
	clients  int
	earlyAck bool // the replicas have the bug
	noCheck  bool // leave the history unchecked
}

// simStats counts what the clients' operations came to.
type simStats struct {
	ops, ok, notDone, unknown int
}

func (s *simStats) add(o simStats) {
	s.ops += o.ops
	s.ok += o.ok
	s.notDone += o.notDone
	s.unknown += o.unknown
}

// chaos is the faults of a simulated run, each at random times from the
// seed: every 3 s on average a replica crashes, and restarts about a second
// later; every 5 s, a replica is cut off from every other host for about a
// second, the connections between a replica and another host are reset,
// and a replica's links get 100 ms slower for about a second; every 10 s a
// replica's clock jumps, within a second.
var chaos = simtest.Chaos{
	Crash: 3 * time.Second, Downtime: time.Second,
	Partition: 5 * time.Second, PartitionFor: time.Second,
	Reset: 5 * time.Second,
	Spike: 5 * time.Second, SpikeLatency: 100 * time.Millisecond, SpikeFor: time.Second,
	Skew: 10 * time.Second,
}

// run runs the cluster and its clients in a simulated world, in the body of
// simtest.Run or Explore, and checks that what the clients saw is
// linearizable.
func (s sim) run(t *sched.Task) (simStats, error) {
	w := simtest.NewWorld(t)
	var peers []string
	for i := range 3 {
		peers = append(peers, fmt.Sprintf("node%d:7000", i+1))
	}
	var replicas []*simtest.Host
	for i := range 3 {
		replicas = append(replicas, w.Host(t, fmt.Sprintf("node%d", i+1), func(t *sched.Task) error {
			l, err := socket.Listen(t, "tcp", ":7000")
			if err != nil {
				return err
			}
			return Serve(t, l, Config{
				ID: i, Peers: peers, EarlyAck: s.earlyAck,
				Disk: simDisk{simtest.DiskOf(t)},
				Rand: rand.New(rand.NewPCG(w.Rand().Uint64(), uint64(i))),
			})
		}))
	}
	c := chaos
	c.Hosts = replicas // the clients never crash, so that they finish
	w.Chaos(t, c)

	h := new(simtest.KVHistory)
	results := sched.NewChan[simStats](s.clients)
	for i := range s.clients {
		rng := rand.New(rand.NewPCG(w.Rand().Uint64(), uint64(i)))
		w.Host(t, fmt.Sprintf("client%d", i+1), func(t *sched.Task) error {
			results.Send(t, s.client(t, i, peers, rng, h))
			return nil
		})
	}
	var total simStats
	for range s.clients {
		st, _ := results.Recv(t)
		total.add(st)
	}
	if s.noCheck {
		return total, nil
	}
	return total, simtest.CheckLinearizable(h, simtest.KV())
}

// client runs random operations on three keys for the run's duration, and
// records them in h: an operation that returned with its answer, one that
// certainly was not done as failed, and one whose outcome is unknown as
// pending, for ever.
func (s sim) client(t *sched.Task, id int, peers []string, rng *rand.Rand, h *simtest.KVHistory) simStats {
	cl := &Client{Peers: peers, leader: rng.IntN(len(peers))}
	defer cl.Close()
	var st simStats
	seen := map[string]string{} // the last value read of each key, for CAS
	end := t.Now().Add(s.duration)
	for n := 0; t.Now().Before(end); n++ {
		key := string(rune('a' + rng.IntN(3)))
		value := fmt.Sprintf("%d.%d ", id, n)
		var cmd command
		var in simtest.KVInput
		switch p := rng.IntN(100); {
		case p < 40:
			cmd, in = get(key), simtest.KVGet(key)
		case p < 65:
			cmd, in = put(key, value), simtest.KVPut(key, value)
		case p < 85:
			cmd, in = appendTo(key, value), simtest.KVAppend(key, value)
		default:
			cmd, in = cas(key, seen[key], value), simtest.KVCAS(key, seen[key], value)
		}
		op := h.Invoke(t, in)
		a, err := cl.Do(t, cmd)
		st.ops++
		switch {
		case err == nil:
			st.ok++
			op.Return(t, simtest.KVOutput{Value: a.value, OK: a.swapped})
			if cmd.op == opGet {
				seen[key] = a.value
			}
		case errors.Is(err, ErrNotDone):
			st.notDone++
			op.Fail()
		default:
			st.unknown++ // pending: it may have been done, or not
		}
		t.Sleep(time.Duration(rng.Int64N(int64(20 * time.Millisecond))))
	}
	return st
}

// seeds is how many seeds TestSim tries unless -weave.seeds says otherwise.
// A seed takes about 25 ms; the race detector, which CI uses, makes it ten
// times slower.
func seeds() int {
	if raceEnabled {
		return 25
	}
	return 200
}

// TestSim runs the store under chaos for ten seconds of virtual time per
// seed, and checks what its clients saw: their history must be
// linearizable, and at least half of their operations done.
func TestSim(t *testing.T) {
	s := sim{duration: 10 * time.Second, clients: 3}
	var total simStats
	stats := simtest.Run(t, func(t *sched.Task) error {
		st, err := s.run(t)
		total.add(st)
		if err == nil && 2*st.ok < st.ops {
			err = fmt.Errorf("only %d of %d operations were done", st.ok, st.ops)
		}
		return err
	}, simtest.Seeds(seeds()))
	t.Logf("%d runs, %v of virtual time, %d steps: %d operations, %d done, %d not done, %d of unknown outcome",
		stats.Runs, stats.Virtual.Round(time.Second), stats.Steps, total.ops, total.ok, total.notDone, total.unknown)
}

// TestSimEarlyAck runs the store with the bug of Config.EarlyAck under the
// same chaos. simtest.Run must fail within 1,000 seeds, with a history that
// is not linearizable, the command that replays the failing seed (in this
// test), and a trace that shows the faults. The test passes when it does,
// and logs the report.
func TestSimEarlyAck(t *testing.T) {
	s := sim{duration: 10 * time.Second, clients: 3, earlyAck: true}
	trace := filepath.Join(t.TempDir(), "trace.txt")
	if f := flag.Lookup("weave.trace").Value.String(); f != "" {
		trace = f // -weave.trace overrides TraceFile
	}
	r := &fatalRecorder{TB: t}
	simtest.Run(r, func(t *sched.Task) error {
		_, err := s.run(t)
		return err
	}, simtest.Seeds(1000), simtest.TraceFile(trace))
	if r.report == "" {
		t.Fatal("simtest.Run passed the store with the bug (1,000 seeds, unless -weave.seed or -weave.seeds say otherwise)")
	}
	t.Logf("simtest.Run failed, as it should:\n%s", r.report)
	for _, want := range []string{
		"history not linearizable", // simtest.ErrNotLinearizable
		"replay: go test ./examples/kv -run '^TestSimEarlyAck$' -weave.seed=",
	} {
		if !strings.Contains(r.report, want) {
			t.Errorf("the report does not say %q", want)
		}
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	faults := regexp.MustCompile(`(?m)^step \d+ \+\S+: fault: .*$`).FindAllString(string(b), -1)
	if len(faults) == 0 {
		t.Fatalf("the trace shows no fault:\n%s", b)
	}
	t.Logf("the faults of the failing run:\n%s", strings.Join(faults, "\n"))
}

// fatalRecorder is a test whose Fatalf records the report instead of
// failing: a test that wants simtest.Run to fail.
type fatalRecorder struct {
	testing.TB
	report string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) { r.report = fmt.Sprintf(format, args...) }

// BenchmarkSimTenMinutes simulates ten minutes of virtual time of the
// cluster under chaos with three clients, about 38,000 operations, a seed
// per iteration; simulate+check checks their history too. virtual-s/s is
// how many seconds of virtual time a second of real time simulates, and
// cpu-s/op the CPU time of the process per seed, which other work on the
// machine does not inflate as it does the real time.
func BenchmarkSimTenMinutes(b *testing.B) {
	for _, bm := range []struct {
		name  string
		check bool
	}{{"simulate", false}, {"simulate+check", true}} {
		b.Run(bm.name, func(b *testing.B) {
			s := sim{duration: 10 * time.Minute, clients: 3, noCheck: !bm.check}
			var total simStats
			var virtual time.Duration
			seed := uint64(1)
			cpu := cpuTime()
			for b.Loop() {
				f, stats := simtest.Explore(func(t *sched.Task) error {
					st, err := s.run(t)
					total.add(st)
					return err
				}, simtest.Seeds(1), simtest.FirstSeed(seed), simtest.MaxSteps(0))
				if f != nil {
					b.Fatal(f)
				}
				virtual += stats.Virtual
				seed++
			}
			b.ReportMetric(virtual.Seconds()/b.Elapsed().Seconds(), "virtual-s/s")
			b.ReportMetric(float64(total.ops)/float64(seed-1), "ops/seed")
			b.ReportMetric((cpuTime()-cpu).Seconds()/float64(seed-1), "cpu-s/op")
		})
	}
}

// cpuTime returns the CPU time the process has used, in user and system
// mode.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
