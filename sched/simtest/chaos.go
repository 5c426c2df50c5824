package simtest

import (
	"context"
	"time"

	"github.com/weavert/weave/internal/simhost"
	"github.com/weavert/weave/sched"
)

// Chaos says how often World.Chaos injects each kind of fault. Each kind
// comes after a wait drawn from the seed, exponentially distributed with
// the mean given; a zero mean turns that kind off. The zero Chaos injects
// nothing.
type Chaos struct {
	// Crash is the mean time between crashes of a random host that is up;
	// the host restarts after a downtime of mean Downtime (1 s if zero).
	// At most MaxDown hosts are down at once (1 if zero).
	Crash    time.Duration
	Downtime time.Duration
	MaxDown  int

	// Partition is the mean time between partitions of a random host from
	// the others, which heal after a mean of PartitionFor (1 s if zero).
	Partition    time.Duration
	PartitionFor time.Duration

	// Reset is the mean time between resets of the connections between
	// two random hosts.
	Reset time.Duration

	// Spike is the mean time between latency spikes, of SpikeLatency
	// (100 ms if zero) on the links from a random host, for a mean of
	// SpikeFor (1 s if zero).
	Spike        time.Duration
	SpikeLatency time.Duration
	SpikeFor     time.Duration

	// Skew is the mean time between changes of a random host's clock
	// offset, to a value drawn within ±MaxSkew (1 s if zero).
	Skew    time.Duration
	MaxSkew time.Duration

	// Hosts are the hosts that faults hit; all of the world's if nil.
	Hosts []*Host
}

// Chaos starts a task, from t, that injects faults into the world at the
// rates of c, until the body returns. Each fault appears in the failing
// run's trace.
func (w *World) Chaos(t *sched.Task, c Chaos) {
	if w.chaos == nil {
		w.chaos = &simhost.Host{Name: "chaos"}
	}
	c.Downtime = or(c.Downtime, time.Second)
	c.PartitionFor = or(c.PartitionFor, time.Second)
	c.SpikeLatency = or(c.SpikeLatency, 100*time.Millisecond)
	c.SpikeFor = or(c.SpikeFor, time.Second)
	c.MaxSkew = or(c.MaxSkew, time.Second)
	if c.MaxDown == 0 {
		c.MaxDown = 1
	}
	ch := &chaos{w: w, c: c}
	simhost.Go(t, context.WithoutCancel(w.ctx), w.chaos, "chaos", ch.run)
}

func or(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

type chaos struct {
	w     *World
	c     Chaos
	queue []chaosEvent // pending, in no order
}

type chaosEvent struct {
	at time.Time
	do func(t *sched.Task)
}

func (ch *chaos) hosts() []*Host {
	if ch.c.Hosts != nil {
		return ch.c.Hosts
	}
	return ch.w.hosts
}

// after draws the wait before the next fault of mean mean.
func (ch *chaos) after(now time.Time, mean time.Duration) time.Time {
	return now.Add(time.Duration(ch.w.Rand().ExpFloat64() * float64(mean)))
}

func (ch *chaos) at(when time.Time, do func(t *sched.Task)) {
	ch.queue = append(ch.queue, chaosEvent{when, do})
}

// every schedules the fault f, and again after each time it ran.
func (ch *chaos) every(now time.Time, mean time.Duration, f func(t *sched.Task)) {
	if mean <= 0 {
		return
	}
	var again func(t *sched.Task)
	again = func(t *sched.Task) {
		f(t)
		ch.at(ch.after(t.Now(), mean), again)
	}
	ch.at(ch.after(now, mean), again)
}

func (ch *chaos) run(t *sched.Task) error {
	now := t.Now()
	ch.every(now, ch.c.Crash, ch.crash)
	ch.every(now, ch.c.Partition, ch.partition)
	ch.every(now, ch.c.Reset, ch.reset)
	ch.every(now, ch.c.Spike, ch.spike)
	ch.every(now, ch.c.Skew, ch.skew)
	for len(ch.queue) > 0 {
		// The earliest; the first of those due at once, in the order
		// they were queued.
		i := 0
		for j, e := range ch.queue {
			if e.at.Before(ch.queue[i].at) {
				i = j
			}
		}
		e := ch.queue[i]
		ch.queue = append(ch.queue[:i], ch.queue[i+1:]...)
		if err := t.Sleep(e.at.Sub(t.Now())); err != nil {
			return nil
		}
		e.do(t)
	}
	return nil
}

func (ch *chaos) pick(hosts []*Host) *Host {
	if len(hosts) == 0 {
		return nil
	}
	return hosts[ch.w.Rand().IntN(len(hosts))]
}

func (ch *chaos) crash(t *sched.Task) {
	var up []*Host
	down := 0
	for _, h := range ch.hosts() {
		if h.Up() {
			up = append(up, h)
		} else {
			down++
		}
	}
	if down >= ch.c.MaxDown {
		return
	}
	h := ch.pick(up)
	if h == nil {
		return
	}
	ch.w.Crash(t, h)
	ch.at(ch.after(t.Now(), ch.c.Downtime), func(t *sched.Task) { ch.w.Restart(t, h) })
}

func (ch *chaos) partition(t *sched.Task) {
	hosts := ch.hosts()
	h := ch.pick(hosts)
	if h == nil {
		return
	}
	var rest []*Host
	for _, x := range ch.w.hosts {
		if x != h {
			rest = append(rest, x)
		}
	}
	one := []*Host{h}
	ch.w.Partition(one, rest)
	ch.at(ch.after(t.Now(), ch.c.PartitionFor), func(*sched.Task) { ch.w.Heal(one, rest) })
}

func (ch *chaos) reset(t *sched.Task) {
	a, b := ch.pick(ch.hosts()), ch.pick(ch.w.hosts)
	if a == nil || b == nil || a == b {
		return
	}
	ch.w.Reset(a, b)
}

func (ch *chaos) spike(t *sched.Task) {
	h := ch.pick(ch.hosts())
	if h == nil {
		return
	}
	for _, x := range ch.w.hosts {
		if x != h {
			ch.w.Spike(h, x, ch.c.SpikeLatency)
		}
	}
	ch.at(ch.after(t.Now(), ch.c.SpikeFor), func(*sched.Task) {
		for _, x := range ch.w.hosts {
			if x != h {
				ch.w.Spike(h, x, 0)
			}
		}
	})
}

func (ch *chaos) skew(t *sched.Task) {
	h := ch.pick(ch.hosts())
	if h == nil {
		return
	}
	span := int64(ch.c.MaxSkew)
	ch.w.Skew(h, time.Duration(ch.w.Rand().Int64N(2*span+1)-span))
}
