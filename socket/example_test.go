package socket_test

import (
	"bufio"
	"fmt"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/socket"
)

// A server with a task per connection, and a client, in one run: every wait
// parks a task, and no goroutine serves a connection.
func Example() {
	err := sched.New(sched.Threads(2)).Run(func(t *sched.Task) error {
		l, err := socket.Listen(t, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		t.Go(func(t *sched.Task) error {
			c, err := l.Accept(t)
			if err != nil {
				return err
			}
			defer c.Close()
			// Code written for a net.Conn runs over Bind unchanged.
			line, err := bufio.NewReader(c.Bind(t)).ReadString('\n')
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.Bind(t), "hello, %s", line)
			return err
		})
		c, err := socket.Dial(t, "tcp", l.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write(t, []byte("weave\n")); err != nil {
			return err
		}
		reply, err := bufio.NewReader(c.Bind(t)).ReadString('\n')
		fmt.Print(reply)
		return err
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output: hello, weave
}
