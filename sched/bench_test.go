package sched_test

import (
	"context"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/weavert/weave/sched"
)

// Each operation beside its native baseline, in the same file so that one
// run gives both. The ratios are the figures that matter: see the package doc.

// Yield: task A yields and task B runs until it yields, on one thread; the
// baseline is iter.Pull's next, which also switches there and back.

func BenchmarkYieldIterPull(b *testing.B) {
	next, stop := iter.Pull(func(yield func(int) bool) {
		for i := 0; yield(i); i++ {
		}
	})
	defer stop()
	b.ReportAllocs()
	for b.Loop() {
		next()
	}
}

func BenchmarkYieldTwoTasks(b *testing.B) {
	b.ReportAllocs()
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		done := false
		task.Go(func(task *sched.Task) error {
			for !done {
				task.Yield()
			}
			return nil
		})
		for b.Loop() {
			task.Yield()
		}
		done = true
		return nil
	})
	// Each Yield is two task switches: to the other task and back.
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/switch")
	if err != nil {
		b.Fatal(err)
	}
}

// Round trip on an unbuffered channel: A sends, B receives and sends back.

func BenchmarkChanRoundTripGoroutines(b *testing.B) {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	b.ReportAllocs()
	for b.Loop() {
		ping <- 1
		<-pong
	}
	close(ping)
	<-pong
}

func BenchmarkChanRoundTripTasks(b *testing.B) {
	b.ReportAllocs()
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		ping, pong := sched.NewChan[int](0), sched.NewChan[int](0)
		task.Go(func(task *sched.Task) error {
			for {
				v, ok := ping.Recv(task)
				if !ok {
					return nil
				}
				pong.Send(task, v)
			}
		})
		for b.Loop() {
			ping.Send(task, 1)
			pong.Recv(task)
		}
		ping.Close()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// Spawn 100,000 empty tasks and wait for them all.

const spawnN = 100_000

func BenchmarkSpawn100kGoroutines(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var wg sync.WaitGroup
		for range spawnN {
			wg.Go(func() {})
		}
		wg.Wait()
	}
}

func BenchmarkSpawn100kTasks(b *testing.B)          { spawn100k(b, sched.New()) }
func BenchmarkSpawn100kTasksOneThread(b *testing.B) { spawn100k(b, sched.New(sched.Threads(1))) }

// spawn100k starts spawnN empty tasks on s and runs them to the end.
func spawn100k(b *testing.B, s *sched.Scheduler) {
	empty := func(*sched.Task) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		err := s.Run(func(task *sched.Task) error {
			for range spawnN {
				task.Go(empty)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// Uncontended Lock and Unlock.

func BenchmarkMutexSync(b *testing.B) {
	var mu sync.Mutex
	b.ReportAllocs()
	for b.Loop() {
		mu.Lock()
		//lint:ignore SA2001 the empty critical section is what is measured
		mu.Unlock()
	}
}

func BenchmarkMutexTask(b *testing.B) {
	var mu sched.Mutex
	b.ReportAllocs()
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		for b.Loop() {
			mu.Lock(task)
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// Memory per parked task, stack included: 10,000 tasks parked in Recv.
func BenchmarkParkedTaskMemory(b *testing.B) {
	const n = 10_000
	b.ReportAllocs()
	var perTask float64
	for b.Loop() {
		err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
			ch := sched.NewChan[int](0)
			var wg sched.WaitGroup
			wg.Add(n)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for range n {
				task.Go(func(task *sched.Task) error {
					wg.Done()
					ch.Recv(task)
					return nil
				})
			}
			wg.Wait(task) // on one thread, the last task has parked by now
			runtime.GC()
			runtime.ReadMemStats(&after)
			used := (after.HeapInuse + after.StackInuse) - (before.HeapInuse + before.StackInuse)
			perTask = float64(used) / n
			ch.Close()
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(perTask, "B/parked-task")
}

// Scaling: CPU-bound tasks that yield now and then, on one thread and on
// two. The ratio of the two times is the speed-up.

func scaling(b *testing.B, threads int) {
	s := sched.New(sched.Threads(threads))
	b.ReportAllocs()
	for b.Loop() {
		err := s.Run(func(task *sched.Task) error {
			for range 64 {
				task.Go(func(task *sched.Task) error {
					x := uint64(1)
					for range 50 {
						for range 2000 {
							x = x*6364136223846793005 + 1442695040888963407
						}
						task.Yield()
					}
					sink.Add(x)
					return nil
				})
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

var sink atomic.Uint64

func BenchmarkScalingThreads1(b *testing.B) { scaling(b, 1) }
func BenchmarkScalingThreads2(b *testing.B) { scaling(b, 2) }

// Select over two channels: one side selects on a and b, the other sends
// on them in turn. The baseline is Go's select statement between two
// goroutines.

func BenchmarkSelectGoroutines(b *testing.B) {
	a, c, done := make(chan int), make(chan int), make(chan struct{})
	go func() {
		for {
			select {
			case <-a:
			case <-c:
			case <-done:
				return
			}
		}
	}()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i++; i&1 == 0 {
			a <- i
		} else {
			c <- i
		}
	}
	close(done)
}

func BenchmarkSelectTasks(b *testing.B) {
	b.ReportAllocs()
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		a, c := sched.NewChan[int](0), sched.NewChan[int](0)
		stop := false
		task.Go(func(task *sched.Task) error {
			cases := []sched.Case{
				sched.OnRecv(a, nil),
				sched.OnRecv(c, func(_ int, ok bool) { stop = !ok }),
			}
			for !stop {
				sched.Select(task, cases...)
			}
			return nil
		})
		i := 0
		for b.Loop() {
			if i++; i&1 == 0 {
				a.Send(task, i)
			} else {
				c.Send(task, i)
			}
		}
		c.Close()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// Await of a function that returns at once, on one thread: the task parks
// and a goroutine of the pool runs the function. The baseline starts a
// goroutine and waits for its result on a channel.

func BenchmarkAwaitGoroutine(b *testing.B) {
	f := func(context.Context) (int, error) { return 0, nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ch := make(chan int, 1)
		go func() {
			v, _ := f(ctx)
			ch <- v
		}()
		<-ch
	}
}

func BenchmarkAwait(b *testing.B) {
	f := func(context.Context) (int, error) { return 0, nil }
	b.ReportAllocs()
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		for b.Loop() {
			if _, err := sched.Await(task, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
