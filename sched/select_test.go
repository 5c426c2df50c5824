package sched_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/weavert/weave/sched"
)

// A Select over two producers' channels receives every value from both.
func TestSelectRecv(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			a, b := sched.NewChan[int](0), sched.NewChan[string](2)
			task.Go(func(task *sched.Task) error {
				for i := range 100 {
					a.Send(task, i)
				}
				a.Close()
				return nil
			})
			task.Go(func(task *sched.Task) error {
				for range 100 {
					b.Send(task, "x")
				}
				b.Close()
				return nil
			})
			sumA, countB, open := 0, 0, 2
			for open > 0 {
				sched.Select(task,
					sched.OnRecv(a, func(v int, ok bool) {
						if !ok {
							open--
							a = sched.NewChan[int](0) // never ready again
							return
						}
						sumA += v
					}),
					sched.OnRecv(b, func(v string, ok bool) {
						if !ok {
							open--
							b = sched.NewChan[string](0)
							return
						}
						countB++
					}),
				)
			}
			if sumA != 4950 || countB != 100 {
				return errors.New("lost values")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// Selects that send and receive on the same channels, from both sides, with
// stale waiters left behind by the cases that lost.
func TestSelectSendRecvStress(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		const N = 500
		got := 0
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			x, y := sched.NewChan[int](0), sched.NewChan[int](0)
			done := sched.NewChan[struct{}](0)
			task.Go(func(task *sched.Task) error {
				for i := 0; i < N; {
					sched.Select(task,
						sched.OnSend(x, i, func() { i++ }),
						sched.OnSend(y, i, func() { i++ }),
					)
				}
				done.Close()
				return nil
			})
			for {
				stop := false
				sched.Select(task,
					sched.OnRecv(x, func(int, bool) { got++ }),
					sched.OnRecv(y, func(int, bool) { got++ }),
					sched.OnRecv(done, func(struct{}, bool) { stop = true }),
				)
				if stop {
					return nil
				}
			}
		})
		if err != nil || got != N {
			t.Fatalf("Run = %v, got %d values, want %d", err, got, N)
		}
	})
}

func TestTrySelect(t *testing.T) {
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		c := sched.NewChan[int](1)
		if i := sched.TrySelect(task, sched.OnRecv(c, nil)); i != -1 {
			return errors.New("TrySelect on an empty channel chose a case")
		}
		if i := sched.TrySelect(task, sched.OnRecv(c, nil), sched.OnSend(c, 7, nil)); i != 1 {
			return errors.New("TrySelect did not send")
		}
		var v int
		if i := sched.TrySelect(task, sched.OnRecv(c, func(x int, _ bool) { v = x })); i != 0 || v != 7 {
			return errors.New("TrySelect did not receive 7")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSelectDeadlockReport(t *testing.T) {
	err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
		sched.Select(task, sched.OnRecv(sched.NewChan[int](0), nil), sched.OnRecv(sched.NewChan[bool](0), nil))
		return nil
	})
	if !errors.Is(err, sched.ErrDeadlock) || !strings.Contains(err.Error(), "select on receive from *sched.Chan[int]") {
		t.Fatalf("Run = %v", err)
	}
}

// A Case built once may be selected on in a loop: each Select starts afresh.
func TestSelectCaseReuse(t *testing.T) {
	t.Run("recv", func(t *testing.T) {
		var vals []int
		err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
			ch := sched.NewChan[int](1)
			c := sched.OnRecv(ch, func(v int, ok bool) { vals = append(vals, v) })
			task.Go(func(task *sched.Task) error { ch.Send(task, 1); return nil })
			sched.Select(task, c) // parks, gets 1 through its waiter
			ch.Send(task, 2)
			sched.Select(task, c) // proceeds at once with 2
			return nil
		})
		if err != nil || len(vals) != 2 || vals[0] != 1 || vals[1] != 2 {
			t.Fatalf("err %v, received %v; want [1 2]", err, vals)
		}
	})
	t.Run("send", func(t *testing.T) {
		got := 0
		err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
			in, out := sched.NewChan[int](0), sched.NewChan[int](0)
			cases := []sched.Case{sched.OnRecv(in, nil), sched.OnSend(out, 7, nil)}
			task.Go(func(task *sched.Task) error { in.Send(task, 1); return nil })
			if i := sched.Select(task, cases...); i != 0 { // parks; the receive wins
				t.Errorf("first Select chose %d", i)
			}
			task.Go(func(task *sched.Task) error { got, _ = out.Recv(task); return nil })
			task.Yield()
			if i := sched.Select(task, cases...); i != 1 { // the send proceeds
				t.Errorf("second Select chose %d", i)
			}
			return nil
		})
		if err != nil || got != 7 {
			t.Fatalf("err %v, got %d; want 7", err, got)
		}
	})
}
