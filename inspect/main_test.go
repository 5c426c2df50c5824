package inspect_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/weavert/weave/inspect"
	"github.com/weavert/weave/proc"
	"github.com/weavert/weave/sched"
)

// Entry points of the children the tests start: the test binary
// re-executes itself into them.
var entries = map[string]proc.Entry{
	// inspected runs a scheduler of two locked threads with ten tasks
	// parked on a channel, says "ready" and waits for the parent to close.
	"inspected": func(ctx context.Context, c *proc.Conn) error {
		rec := inspect.NewRecorder(inspect.Config{Name: "child", Threads: 2, LockedThreads: true, Timeline: true})
		defer rec.Close()
		peer := inspect.Parent(c)
		defer peer.Close()
		s := sched.New(sched.Threads(2), sched.LockThreads(), sched.MeasureRunTime(), sched.WithTracer(rec))
		return s.Run(func(t *sched.Task) error {
			ch := sched.NewChan[int](0)
			for i := range 10 {
				t.GoNamed(fmt.Sprintf("waiter-%d", i), func(t *sched.Task) error {
					ch.Recv(t)
					return nil
				})
			}
			if err := peer.SendFrom(t, []byte("ready")); err != nil {
				return err
			}
			sched.Await(t, func(context.Context) ([]byte, error) { return peer.Recv() })
			ch.Close()
			return nil
		})
	},
	// busy runs a loaded scheduler of two threads, one of whose tasks
	// sends busyMessages messages with arrows, each from a run segment of
	// its own; then, its run over, says "done" and waits for the parent to
	// close.
	"busy": func(ctx context.Context, c *proc.Conn) error {
		rec := inspect.NewRecorder(inspect.Config{Name: "busy", Threads: 2, Timeline: true})
		defer rec.Close()
		peer := inspect.Parent(c)
		defer peer.Close()
		s := sched.New(sched.Threads(2), sched.WithTracer(rec))
		err := s.Run(func(t *sched.Task) error {
			pingPong(t, 4, 500)
			for range busyMessages {
				if err := peer.SendFrom(t, []byte("m")); err != nil {
					return err
				}
				t.Yield()
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := peer.Send([]byte("done")); err != nil {
			return err
		}
		peer.Recv() // until the parent closes
		return nil
	},
	// tasked echoes each message with a Peer that a task reads, until
	// "bye"; then it closes its end.
	"tasked": func(ctx context.Context, c *proc.Conn) error {
		rec := inspect.NewRecorder(inspect.Config{Name: "tasked", Threads: 2, LockedThreads: true, Timeline: true})
		defer rec.Close()
		s := sched.New(sched.Threads(2), sched.LockThreads(), sched.MeasureRunTime(), sched.WithTracer(rec))
		return s.Run(func(t *sched.Task) error {
			peer, err := inspect.ParentTask(t, c)
			if err != nil {
				return err
			}
			defer peer.Close()
			for {
				m, err := peer.RecvTask(t)
				if err != nil {
					return err
				}
				if err := peer.SendFrom(t, m); err != nil || string(m) == "bye" {
					return err
				}
			}
		})
	},
	// garbage answers every frame with bytes no Peer sends.
	"garbage": func(ctx context.Context, c *proc.Conn) error {
		for {
			m, err := c.Recv()
			if err != nil {
				return nil
			}
			c.Send([]byte{0xff, 1, 2, 3})
			c.Send(nil)
			if len(m) >= 9 {
				// An answer to the request, of the right kind, that does
				// not decode.
				c.Send(append([]byte{m[0] + 1}, append(m[1:9], '{', 'x')...))
			}
		}
	},
	// mute never answers: it reads and drops every frame.
	"mute": func(ctx context.Context, c *proc.Conn) error {
		for {
			if _, err := c.Recv(); err != nil {
				return nil
			}
		}
	},
}

// busyMessages is how many messages the busy child sends.
const busyMessages = 500

func TestMain(m *testing.M) {
	for name, fn := range entries {
		proc.Register(name, fn)
	}
	proc.Main()
	// A race-enabled child sleeps a second in os.Exit unless told not to.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	goleak.VerifyTestMain(m)
}
