package sched_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/weavert/weave/sched"
)

// TestStress mixes every primitive at random on several threads and checks
// what must be conserved: every value sent is received once, every
// increment under the Mutex is counted, every task ends.
func TestStress(t *testing.T) {
	for _, threads := range []int{1, 2, 4} {
		for _, locked := range []bool{false, true} {
			for seed := range uint64(3) {
				t.Run(fmt.Sprintf("threads=%d/locked=%v/seed=%d", threads, locked, seed), func(t *testing.T) {
					opts := []sched.Option{sched.Threads(threads), sched.AwaitLimit(3)}
					if locked {
						opts = append(opts, sched.LockThreads())
					}
					stress(t, opts, seed)
				})
			}
		}
	}
}

func stress(t *testing.T, opts []sched.Option, seed uint64) {
	const workers, ops = 40, 300
	var (
		mu       sched.Mutex
		counter  int
		sent     int
		received int
	)
	err := sched.New(opts...).Run(func(task *sched.Task) error {
		chans := []*sched.Chan[int]{sched.NewChan[int](0), sched.NewChan[int](1), sched.NewChan[int](8)}
		// Consumers drain the channels until they are closed.
		var consumers sched.WaitGroup
		for i, ch := range chans {
			consumers.Go(task, func(task *sched.Task) error {
				r := rand.New(rand.NewPCG(seed, uint64(i)+1000))
				for {
					v, ok := ch.Recv(task)
					if !ok {
						return nil
					}
					mu.Lock(task)
					received += v
					mu.Unlock()
					if r.IntN(4) == 0 {
						task.Yield()
					}
				}
			})
		}
		var producers sched.WaitGroup
		for i := range workers {
			producers.Go(task, func(task *sched.Task) error {
				r := rand.New(rand.NewPCG(seed, uint64(i)))
				for range ops {
					switch r.IntN(8) {
					case 0:
						task.Yield()
					case 1:
						mu.Lock(task)
						c := counter
						if r.IntN(2) == 0 {
							task.Yield()
						}
						counter = c + 1
						mu.Unlock()
					case 2, 3:
						v := r.IntN(100)
						chans[r.IntN(len(chans))].Send(task, v)
						mu.Lock(task)
						sent += v
						mu.Unlock()
					case 4:
						v := r.IntN(100)
						a, b := chans[r.IntN(len(chans))], chans[r.IntN(len(chans))]
						sched.Select(task, sched.OnSend(a, v, nil), sched.OnSend(b, v, nil))
						mu.Lock(task)
						sent += v
						mu.Unlock()
					case 5:
						task.Sleep(0)
					case 6:
						if r.IntN(10) == 0 {
							sched.Await(task, func(context.Context) (int, error) { return 0, nil })
						}
					case 7:
						var wg sched.WaitGroup
						wg.Go(task, func(task *sched.Task) error {
							mu.Lock(task)
							counter++
							mu.Unlock()
							return nil
						})
						wg.Wait(task)
					}
				}
				return nil
			})
		}
		producers.Wait(task)
		for _, ch := range chans {
			ch.Close()
		}
		consumers.Wait(task)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sent != received {
		t.Fatalf("sent %d, received %d", sent, received)
	}
	// The expected counter: replay the same choices.
	want := 0
	for i := range workers {
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		for range ops {
			switch r.IntN(8) {
			case 1:
				r.IntN(2)
				want++
			case 2, 3:
				r.IntN(100)
				r.IntN(3)
			case 4:
				r.IntN(100)
				r.IntN(3)
				r.IntN(3)
			case 6:
				r.IntN(10)
			case 7:
				want++
			}
		}
	}
	if counter != want {
		t.Fatalf("counter = %d, want %d", counter, want)
	}
}
