// Package socket is networking for tasks: TCP, Unix and UDP sockets whose
// waits park the calling task, never its thread. The last worker with
// nothing to run waits in the scheduler's epoll poller, which wakes the
// tasks whose sockets are ready: a server holds a task per connection with
// no goroutine per connection, as Tokio does with mio and Go's runtime with
// its netpoller. (The name does not shadow package net, whose addresses and
// errors it uses.)
//
//	err := sched.New(sched.Threads(2)).Run(func(t *sched.Task) error {
//		l, err := socket.Listen(t, "tcp", ":8080")
//		if err != nil {
//			return err
//		}
//		defer l.Close()
//		for {
//			c, err := l.Accept(t)
//			if err != nil {
//				return err
//			}
//			t.Go(func(t *sched.Task) error {
//				defer c.Close()
//				buf := make([]byte, 4096)
//				for {
//					n, err := c.Read(t, buf)
//					if err != nil {
//						return nil // io.EOF: the client is done
//					}
//					if _, err := c.Write(t, buf[:n]); err != nil {
//						return err
//					}
//				}
//			})
//		}
//	})
//
// # Calls
//
// Every call that may wait takes the calling task, as every call of package
// sched does, and must be made by that task while it runs: Listener.Accept,
// Dial, Conn.Read and Conn.Write, PacketConn.ReadFrom and WriteTo. Close,
// the deadlines and the addresses may be called by any task of the run, at
// any time. One task at a time should read a Conn and one write it.
//
// Code written for a net.Conn works inside a task through Conn.Bind, which
// returns a net.Conn whose methods park that task: bufio, encoding/json,
// encoding/binary and crypto/tls run over it unchanged.
//
// # Errors
//
// Errors are those of package net: a *net.OpError around net.ErrClosed
// once the socket is closed (Close wakes every task parked on it), around
// os.ErrDeadlineExceeded once a deadline passed (and it is a net.Error
// whose Timeout is true), around the task's context's error if the context
// ended (a cancelled Group), and around the system's error, such as
// syscall.ECONNRESET or EPIPE, so that errors.Is works as with net. The end
// of a stream is io.EOF itself, after every byte the peer sent.
//
// # Deadlines and cancellation
//
// Deadlines run on the scheduler's timers. A task parked on a socket wakes
// when its context ends, with the context's error. A task parked on a
// socket waits for the world: the run is never found deadlocked on it, and
// goes on until the socket is ready, closed, its deadline passes or the
// task's context ends.
//
// # Descriptors
//
// Sockets belong to the run of the task that made them: the end of the run
// closes those left open. Adopt and AdoptConn make a Conn of a duplicate of
// the descriptor of an *os.File or of a net.Conn. sched.FD waits on any
// pollable descriptor (an eventfd, a signalfd, a serial port), as Tokio's
// AsyncFd does; Conn.FD returns a Conn's.
//
// Regular files are not sockets: epoll cannot wait on them, and Adopt
// refuses them with an error matching sched.ErrNotPollable. Read and write
// files through sched.Await, which runs a blocking call on a goroutine of
// its pool.
//
// A deterministic run (sched.Deterministic) has no real sockets: they would
// make it unrepeatable. Calls return sched.ErrDeterministic there.
//
// # Processes
//
// Proc makes a proc.Conn, the message connection between a parent and a
// child process, a ProcConn whose Send and Recv park the calling task.
package socket
