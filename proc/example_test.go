package proc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"

	"github.com/weavert/weave/proc"
)

// The entry points a program's children can run are registered before
// proc.Main, here in init; TestMain (or main) then calls proc.Main first.
func init() {
	proc.Register("upper", func(ctx context.Context, c *proc.Conn) error {
		for {
			msg, err := c.Recv()
			if err == io.EOF {
				return nil // the parent closed the connection, or sent SIGTERM
			}
			if err != nil {
				return err
			}
			if string(msg) == "poison" {
				return errors.New("poisoned message")
			}
			if err := c.Send(bytes.ToUpper(msg)); err != nil {
				return err
			}
		}
	})
}

// A parent starts a child running the "upper" entry point of this same
// binary, and they exchange messages.
func Example() {
	p, err := proc.Start(context.Background(), proc.Spec{Entry: "upper"})
	if err != nil {
		log.Fatal(err)
	}
	p.Conn().Send([]byte("hello from the parent"))
	msg, err := p.Conn().Recv()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(msg))

	p.Conn().Close() // the child's Recv returns io.EOF, and its entry returns nil
	st, err := p.Wait()
	fmt.Println(st.ExitCode(), err)
	// Output:
	// HELLO FROM THE PARENT
	// 0 <nil>
}

// A supervised worker dies of a poisoned message and is restarted.
func ExampleSupervisor() {
	sup := proc.NewSupervisor(proc.OneForOne, proc.Child{
		Name: "worker",
		Spec: proc.Spec{Entry: "upper", Stderr: io.Discard},
	})
	sup.Logger = slog.New(slog.DiscardHandler)
	started := make(chan *proc.Process, 2)
	sup.Started = func(child string, p *proc.Process) { started <- p }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()

	w := <-started
	w.Conn().Send([]byte("poison"))
	_, err := w.Conn().Recv() // the end of the stream says how the worker ended
	var ee *proc.ExitError
	if errors.Is(err, io.EOF) && errors.As(err, &ee) {
		fmt.Println("first worker:", ee.State)
	}

	w = <-started // the restarted worker
	w.Conn().Send([]byte("still serving"))
	msg, _ := w.Conn().Recv()
	fmt.Println("second worker:", string(msg))

	cancel()
	fmt.Println("supervisor:", <-done)
	// Output:
	// first worker: exit status 1
	// second worker: STILL SERVING
	// supervisor: context canceled
}
