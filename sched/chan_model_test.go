package sched_test

import (
	"fmt"
	"testing"

	"github.com/weavert/weave/sched"
)

// FuzzChan runs random sequences of channel operations on a sched.Chan, in
// one task on Threads(1), and on a Go channel of the same capacity, and
// checks that they agree at every step: what each operation returns, the
// length, and the panics of sends and closes on a closed channel. Blocking
// operations are made only when they would not block (a Send into a buffer
// with room, a Recv from a buffer with values or a closed channel), since
// one task cannot wait for itself.
func FuzzChan(f *testing.F) {
	f.Add([]byte{3, 0, 0, 2, 1, 3, 4, 1, 1, 1})
	f.Add([]byte{0, 0, 1, 5, 4, 1, 0})
	f.Add([]byte{2, 2, 2, 2, 3, 3, 5, 0, 2, 1, 3, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) == 0 {
			return
		}
		capacity := int(ops[0] % 5)
		ops = ops[1:]
		err := sched.New(sched.Threads(1)).Run(func(task *sched.Task) error {
			c := sched.NewChan[int](capacity)
			g := make(chan int, capacity)
			for step, op := range ops {
				v := int(op)
				var got, want string
				switch op % 6 {
				case 0: // TrySend
					got = catch(func() string { return fmt.Sprint(c.TrySend(task, v)) })
					want = catch(func() string {
						select {
						case g <- v:
							return "true"
						default:
							return "false"
						}
					})
				case 1: // TryRecv
					got = catch(func() string { v, ok, ready := c.TryRecv(task); return fmt.Sprint(v, ok, ready) })
					want = catch(func() string {
						select {
						case v, ok := <-g:
							return fmt.Sprint(v, ok, true)
						default:
							return fmt.Sprint(0, false, false)
						}
					})
				case 2: // Send, if it would not block
					if len(g) == cap(g) && !closed(g) {
						continue
					}
					got = catch(func() string { c.Send(task, v); return "sent" })
					want = catch(func() string { g <- v; return "sent" })
				case 3: // Recv, if it would not block
					if len(g) == 0 && !closed(g) {
						continue
					}
					got = catch(func() string { v, ok := c.Recv(task); return fmt.Sprint(v, ok) })
					want = catch(func() string { v, ok := <-g; return fmt.Sprint(v, ok) })
				case 4: // Close
					got = catch(func() string { c.Close(); return "closed" })
					want = catch(func() string { close(g); return "closed" })
				case 5: // a Select with a default branch, over a receive and a send
					got = catch(func() string {
						var r string
						i := sched.TrySelect(task, sched.OnRecv(c, func(v int, ok bool) { r = fmt.Sprint(v, ok) }))
						return fmt.Sprint(i, r)
					})
					want = catch(func() string {
						select {
						case v, ok := <-g:
							return fmt.Sprint(0, fmt.Sprint(v, ok))
						default:
							return fmt.Sprint(-1, "")
						}
					})
				}
				if got != want || c.Len() != len(g) || c.Cap() != cap(g) {
					return fmt.Errorf("step %d (op %d): got %q, len %d; Go channel %q, len %d", step, op%6, got, c.Len(), want, len(g))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// catch returns what f returns, or "panic: " and the panic's text, with the
// package's prefix taken off so that sched's panics read as Go's.
func catch(f func() string) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = "panic: " + trimPrefix(fmt.Sprint(r))
		}
	}()
	return f()
}

func trimPrefix(s string) string {
	const p = "sched: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// closed reports whether the empty-or-not Go channel g is closed, without
// taking a value from it: only when it is empty can it tell.
func closed(g chan int) bool {
	if len(g) > 0 {
		return false
	}
	select {
	case _, ok := <-g:
		return !ok
	default:
		return false
	}
}
