// Command echo is a TCP echo server with a task per connection.
//
// Each connection is served by a task of its own, which reads and writes
// with package socket. A read with nothing to read parks the task, not its
// thread: the scheduler's threads run the other connections' tasks
// meanwhile, and a thread with nothing at all to run waits in the
// scheduler's epoll poller, which wakes the tasks whose sockets are ready.
// So the server holds a parked task per idle client, a few KiB each, and
// no goroutine or thread per client.
//
// A client that shuts down its sending side (a half-close) gets back all it
// sent, then the end of the stream. Ctrl-C stops the server: the listener
// closes and every connection's task is cancelled, which closes its
// connection.
//
//	go run ./examples/echo -addr 127.0.0.1:7007 -threads 2
//	nc 127.0.0.1 7007
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/socket"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7007", "listen on `host:port` (port 0: any free port)")
	threads := flag.Int("threads", 2, "the scheduler's `threads`")
	flag.Parse()
	if *threads < 1 {
		fmt.Fprintln(os.Stderr, "echo: -threads must be at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logs := log.New(os.Stderr, "echo: ", 0)
	err := serve(ctx, *addr, *threads, logs, func(a net.Addr) { fmt.Println("echo: listening on", a) })
	if err != nil && !errors.Is(err, context.Canceled) {
		logs.Print(err)
		os.Exit(1)
	}
}

// serve listens on addr and echoes every connection until ctx ends, on a
// scheduler of the given threads; ready is called with the address once
// the server listens. It returns ctx's error after a clean shutdown.
func serve(ctx context.Context, addr string, threads int, logs *log.Logger, ready func(net.Addr)) error {
	s := sched.New(sched.Threads(threads))
	return s.RunContext(ctx, func(t *sched.Task) error {
		l, err := socket.Listen(t, "tcp", addr)
		if err != nil {
			return err
		}
		defer l.Close()
		ready(l.Addr())
		for {
			c, err := l.Accept(t)
			if err != nil {
				// The end of ctx ends the wait with ctx's error: the run
				// counts it as a cancellation, not a failure.
				return err
			}
			t.Go(func(t *sched.Task) error {
				if err := echo(t, c); err != nil && t.Context().Err() == nil {
					// A client that resets its connection is not the
					// server's failure: say so and serve the others.
					logs.Printf("%v: %v", c.RemoteAddr(), err)
				}
				return nil
			})
		}
	})
}

// echo writes back to c everything it reads, until the client has sent all
// it will (io.EOF), and closes c.
func echo(t *sched.Task, c *socket.Conn) error {
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(t, buf)
		if n > 0 {
			if _, werr := c.Write(t, buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil // a half-close: all it sent is back; Close ends our side
		}
		if err != nil {
			return err
		}
	}
}
