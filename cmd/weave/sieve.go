package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/weavert/weave/inspect"
	"github.com/weavert/weave/proc"
	"github.com/weavert/weave/sched"
)

// The demo's children: each runs a scheduler of two locked threads, builds
// a sieve of n chained tasks, one per prime, and for every job its parent
// sends, pushes a range of numbers through the chain and counts the primes
// that come out.
const (
	workerEntry = "demo-worker"
	envPrimes   = "WEAVE_DEMO_PRIMES"
	envTimeline = "WEAVE_DEMO_TIMELINE"
)

func init() {
	proc.Register(workerEntry, demoWorker)
}

// job is what the parent sends a child: count the primes in [Lo, Hi).
type job struct {
	Round  int `json:"round"`
	Lo, Hi int
}

// result is what a child answers.
type result struct {
	Round  int    `json:"round"`
	Lo, Hi int    // the range tested
	Primes int    `json:"primes"` // primes found in it
	Last   int    `json:"last"`   // the largest of them
	Chain  int    `json:"chain"`  // the chain's length: its filter tasks
	Values uint64 `json:"values"` // values passed between tasks for the job
}

// workerThreads is the number of threads of each scheduler of the demo.
const workerThreads = 2

func demoWorker(ctx context.Context, c *proc.Conn) error {
	n, err := strconv.Atoi(os.Getenv(envPrimes))
	if err != nil || n < 1 {
		return fmt.Errorf("demo worker: %s=%q", envPrimes, os.Getenv(envPrimes))
	}
	rec := inspect.NewRecorder(inspect.Config{
		Name: "worker", Threads: workerThreads, LockedThreads: true,
		Timeline: os.Getenv(envTimeline) != "", MaxEvents: childMaxEvents,
	})
	defer rec.Close()
	s := sched.New(sched.Threads(workerThreads), sched.LockThreads(), sched.MeasureRunTime(), sched.WithTracer(rec))
	return s.Run(func(t *sched.Task) error {
		// A task of this run reads the Conn, parked on the scheduler's
		// poller: the jobs come to this task with no goroutine between,
		// and a thread with nothing to run waits in epoll_wait.
		peer, err := inspect.ParentTask(t, c)
		if err != nil {
			return err
		}
		defer peer.Close()
		ch := newChain(ctx, t, n)
		defer ch.close(t)
		for {
			msg, err := peer.RecvTask(t)
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil // the parent is done with us
			}
			if err != nil {
				return err
			}
			var j job
			if err := json.Unmarshal(msg, &j); err != nil {
				return fmt.Errorf("demo worker: job %q: %w", msg, err)
			}
			res := ch.count(ctx, t, j.Lo, j.Hi)
			res.Round = j.Round
			b, _ := json.Marshal(res)
			if err := peer.SendFrom(t, b); err != nil {
				return err
			}
		}
	})
}

// childMaxEvents bounds each child thread's timeline, so that a child's
// trace fits in one message to its parent.
const childMaxEvents = 25_000

// chain is Eratosthenes' sieve as a chain of tasks, one filter per prime,
// each passing on what its prime does not divide. A number that comes out
// of the end is a prime, if it is below the square of the last prime.
type chain struct {
	src, tail *sched.Chan[int]
	primes    []int
	wg        sched.WaitGroup
	values    atomic.Uint64
}

// endOfJob follows a job's numbers through the chain: -1 % p is -1, so
// every filter passes it on.
const endOfJob = -1

// newChain builds the chain of the first n primes: the numbers 2, 3, 4, …
// go in, and each number that comes out of the end is the next prime,
// which gets a filter of its own at the end. If ctx ends first, the chain
// is shorter.
func newChain(ctx context.Context, t *sched.Task, n int) *chain {
	c := &chain{src: sched.NewChan[int](64)}
	c.tail = c.src
	c.feed(ctx, t, 2, primeBound(n)+1)
	for {
		v, _ := c.tail.Recv(t)
		if v == endOfJob {
			return c
		}
		if len(c.primes) < n {
			c.primes = append(c.primes, v)
			c.filter(t, v)
		}
	}
}

// filter adds a task at the end of the chain that drops multiples of p.
func (c *chain) filter(t *sched.Task, p int) {
	in, out := c.tail, sched.NewChan[int](64)
	c.tail = out
	c.wg.Go(t, func(t *sched.Task) error {
		defer out.Close()
		var k uint64
		for {
			v, ok := in.Recv(t)
			if !ok {
				return nil
			}
			k++
			if v == endOfJob {
				c.values.Add(k)
				k = 0
			}
			if v%p != 0 {
				out.Send(t, v)
			}
		}
	})
}

// feed starts a task that sends lo, …, hi-1 and then endOfJob; it stops
// early when ctx ends (the parent has gone), so that the chain drains at
// once.
func (c *chain) feed(ctx context.Context, t *sched.Task, lo, hi int) {
	c.wg.Go(t, func(t *sched.Task) error {
		for i := lo; i < hi; i++ {
			if i%256 == 0 && ctx.Err() != nil {
				break
			}
			c.src.Send(t, i)
		}
		c.src.Send(t, endOfJob)
		return nil
	})
}

// count pushes [lo, hi) through the chain and counts the primes in it;
// the range must lie above the chain's last prime and below its square.
func (c *chain) count(ctx context.Context, t *sched.Task, lo, hi int) result {
	if len(c.primes) == 0 {
		return result{Lo: lo, Hi: lo}
	}
	last := c.primes[len(c.primes)-1]
	lo, hi = max(lo, last+1), min(hi, last*last)
	res := result{Lo: lo, Hi: hi, Chain: len(c.primes)}
	before := c.values.Load()
	c.feed(ctx, t, lo, hi)
	for {
		v, _ := c.tail.Recv(t)
		if v == endOfJob {
			break
		}
		res.Primes++
		res.Last = max(res.Last, v)
	}
	res.Values = c.values.Load() - before
	return res
}

// close ends the chain: closing its source closes each filter in turn.
func (c *chain) close(t *sched.Task) {
	c.src.Close()
	for {
		if _, ok := c.tail.Recv(t); !ok {
			break
		}
	}
	c.wg.Wait(t)
}

// primeBound is an upper bound of the n-th prime (Rosser's theorem).
func primeBound(n int) int {
	if n < 6 {
		return 13
	}
	x := float64(n)
	return int(x*(math.Log(x)+math.Log(math.Log(x)))) + 1
}
