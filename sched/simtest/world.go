package simtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"time"

	"github.com/weavert/weave/internal/simhost"
	"github.com/weavert/weave/internal/simnet"
	"github.com/weavert/weave/sched"
)

// runInfo is what a run of Explore tells the body's world through the
// context: the seed, and, in the run that traces a failure, where faults
// go.
type runInfo struct {
	seed   uint64
	log    func(now time.Time, line string) // nil unless traced
	worlds []*World
	bugs   map[uintptr]bool // Buggify's sites, and whether each is on
	rng    *rand.Rand
}

type runKey struct{}

func infoOf(ctx context.Context) *runInfo {
	ri, _ := ctx.Value(runKey{}).(*runInfo)
	return ri
}

// stop stops the worlds of the run, once its body returned.
func (ri *runInfo) stop(t *sched.Task) {
	for _, w := range ri.worlds {
		w.stop(t)
	}
}

// World is a cluster simulated inside a deterministic run: named hosts, each
// with an address, its own tasks, a clock that may be skewed and a disk that
// forgets what was not synced, and a network between them on which package
// socket's calls run unchanged, with a latency drawn from the seed for
// every delivery. Faults come from the test or, with Chaos, from the seed;
// each appears in the failing run's trace with its step and virtual time.
//
// Make one with NewWorld in the body of Run or Explore. When the body
// returns, every host stops as if it crashed, and the run ends.
type World struct {
	net     *simnet.Net
	ctx     context.Context
	info    *runInfo
	hosts   []*Host
	byName  map[string]*Host
	stopped bool
	chaos   *simhost.Host // the host of the chaos task, stopped with the world
}

// Host is a host of a World.
type Host struct {
	w       *World
	sim     *simhost.Host
	nh      *simnet.Host
	entry   func(*sched.Task) error
	disk    *Disk
	crashes int
}

// WorldOption configures a World.
type WorldOption func(*simnet.Config)

// Latency sets the bounds of the one-way latency of every delivery (1 to 5
// ms by default), drawn uniformly from the seed.
func Latency(min, max time.Duration) WorldOption {
	return func(c *simnet.Config) { c.MinLatency, c.MaxLatency = min, max }
}

// Loss sets the probability that a datagram is lost, and that one is
// delivered twice. Streams lose nothing.
func Loss(loss, duplicate float64) WorldOption {
	return func(c *simnet.Config) { c.Loss, c.Duplicate = loss, duplicate }
}

// ConnectTimeout sets how long a Dial to a host that does not answer (down,
// or cut off) tries before it fails with ETIMEDOUT; 5 s by default.
func ConnectTimeout(d time.Duration) WorldOption {
	return func(c *simnet.Config) { c.ConnectTimeout = d }
}

// NewWorld makes a world for the run of t, the body's task (or another task
// of no host). It panics outside a run of Run or Explore.
func NewWorld(t *sched.Task, opts ...WorldOption) *World {
	ri := infoOf(t.Context())
	if ri == nil {
		panic("simtest: NewWorld outside a run of simtest.Run or Explore")
	}
	if simhost.Of(t) != nil {
		panic("simtest: NewWorld by a task of a simulated host")
	}
	cfg := simnet.DefaultConfig
	for _, o := range opts {
		o(&cfg)
	}
	w := &World{
		net:    simnet.New(t, cfg, ri.seed),
		ctx:    t.Context(),
		info:   ri,
		byName: make(map[string]*Host),
	}
	w.net.Log = w.logf
	ri.worlds = append(ri.worlds, w)
	return w
}

// logf writes a fault to the trace of the run, if it is traced.
func (w *World) logf(format string, args ...any) {
	if w.info.log != nil {
		w.info.log(w.net.Now(), "fault: "+fmt.Sprintf(format, args...))
	}
}

// Rand returns the world's random source, drawn from the seed: for the
// test's own choices (which keys, which host), so that a seed fixes them
// too.
func (w *World) Rand() *rand.Rand { return w.net.Rand() }

// Host adds a host named name to the world, with the next address of
// 10.0.0.0/8, and starts entry as its first task, from t. Its sockets can
// be reached by its name ("node1:7000") or its address. entry runs again at
// each Restart; an error it returns fails the run, unless the host crashed
// first.
func (w *World) Host(t *sched.Task, name string, entry func(t *sched.Task) error) *Host {
	if _, ok := w.byName[name]; ok {
		panic(fmt.Sprintf("simtest: two hosts named %q", name))
	}
	sim := &simhost.Host{Name: name}
	h := &Host{w: w, sim: sim, entry: entry}
	h.nh = w.net.AddHost(name, sim)
	h.disk = newDisk(h)
	w.hosts = append(w.hosts, h)
	w.byName[name] = h
	h.start(t)
	return h
}

func (h *Host) start(t *sched.Task) {
	simhost.Go(t, simnet.WithHost(h.w.ctx, h.nh), h.sim, h.sim.Name, h.entry)
}

// Hosts returns the world's hosts, in the order they were added.
func (w *World) Hosts() []*Host { return append([]*Host(nil), w.hosts...) }

// Name returns the host's name.
func (h *Host) Name() string { return h.sim.Name }

// Addr returns the host's address.
func (h *Host) Addr() netip.Addr { return h.nh.Addr }

// Up reports whether the host runs: it has not crashed, or it restarted.
func (h *Host) Up() bool { return h.nh.Up() }

// Crashes returns how many times the host crashed.
func (h *Host) Crashes() int { return h.crashes }

// Crash stops every task of h at once, by t: none runs again, and a wake of
// one is lost. Their deferred calls do not run now, as a killed process runs
// none: they run when the run ends, after everything else, and what they
// do then reaches nothing of the world. The peers of h's connections are
// reset; its sockets are gone; its disk keeps only what was synced. If t is
// a task of h, Crash does not return. Crashing a host that is down does
// nothing.
func (w *World) Crash(t *sched.Task, h *Host) {
	if !h.Up() {
		return
	}
	h.crashes++
	w.logf("crash %s", h.Name())
	h.nh.Crash()
	h.disk.crash()
	simhost.Crash(t, h.sim)
}

// Restart starts a crashed host again, by t: its entry runs as a fresh
// process would, with its disk as the crash left it. Restarting a host that
// is up does nothing.
func (w *World) Restart(t *sched.Task, h *Host) {
	if h.Up() || w.stopped {
		return
	}
	w.logf("restart %s", h.Name())
	h.nh.Restart()
	h.start(t)
}

// Partition cuts every link between the hosts of a and those of b, both
// ways: datagrams between them are lost, stream data waits (as TCP
// retransmits) and Dial gets no answer, until Heal.
func (w *World) Partition(a, b []*Host) {
	for _, x := range a {
		for _, y := range b {
			w.net.Partition(x.nh, y.nh)
		}
	}
}

// Heal restores the links that Partition cut between a and b; what waited
// goes on, in order.
func (w *World) Heal(a, b []*Host) {
	for _, x := range a {
		for _, y := range b {
			w.net.Heal(x.nh, y.nh)
		}
	}
}

// Hold holds every delivery from a to b, datagrams too, until Release.
func (w *World) Hold(from, to *Host) { w.net.Hold(from.nh, to.nh) }

// Release delivers what Hold held, in order.
func (w *World) Release(from, to *Host) { w.net.Release(from.nh, to.nh) }

// Spike adds extra latency to every delivery from a to b, until the next
// Spike of that link (0 ends it).
func (w *World) Spike(from, to *Host, extra time.Duration) { w.net.Spike(from.nh, to.nh, extra) }

// Reset resets every connection between a and b.
func (w *World) Reset(a, b *Host) { w.net.ResetBetween(a.nh, b.nh) }

// Skew sets the offset of h's clock: what Task.Now returns to its tasks.
// Timers and Sleep are not skewed: they measure durations.
func (w *World) Skew(h *Host, offset time.Duration) {
	w.logf("skew %s clock %+v", h.Name(), offset)
	h.sim.Offset = offset
}

// stop stops the world at the end of the body: every host crashes, and the
// network delivers nothing more.
func (w *World) stop(t *sched.Task) {
	if w.stopped {
		return
	}
	w.stopped = true
	for _, h := range w.hosts {
		if h.Up() {
			h.nh.Crash()
			simhost.Crash(t, h.sim)
		}
	}
	if w.chaos != nil {
		simhost.Crash(t, w.chaos)
	}
	w.net.Stop()
}

// Buggify reports whether code should take a rare path now: in a run of
// Run or Explore, each call site is on for a quarter of the seeds, and an
// on site says yes a quarter of the times; elsewhere it says no, at the
// cost of a context lookup. As FoundationDB's BUGGIFY, it makes the paths
// that real systems take once a month (a short read, a slow disk, a retry)
// run in every simulation:
//
//	if simtest.Buggify(t) {
//		t.Sleep(time.Second) // a slow peer
//	}
func Buggify(t *sched.Task) bool {
	ri := infoOf(t.Context())
	if ri == nil {
		return false
	}
	pc, _, _, _ := runtime.Caller(1)
	if ri.bugs == nil {
		ri.bugs = make(map[uintptr]bool)
		ri.rng = rand.New(rand.NewPCG(ri.seed, 0xb0_99_1f_1e))
	}
	on, ok := ri.bugs[pc]
	if !ok {
		on = ri.rng.IntN(4) == 0
		ri.bugs[pc] = on
	}
	return on && ri.rng.IntN(4) == 0
}
