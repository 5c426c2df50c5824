// Command chat is a chat server in which no client can hold up the others.
//
// One task, the hub, owns the set of clients: it alone adds, removes and
// broadcasts, so the set needs no lock. Each connection has two tasks of
// its own: a reader, which turns the client's lines into events on the
// hub's channel, and a writer, which drains the client's queue of outgoing
// lines (a sched.Chan) onto its socket. The hub never waits on a client:
// it puts each line in the others' queues with TrySend. A client that
// stops reading stalls only its own writer, and its queue fills.
//
// A client whose queue is full is disconnected, and the others are told
// ("* eve left (too slow)"), as IRC servers do past a client's send queue
// and NATS with a slow consumer. Dropping lines instead would leave it a
// conversation with holes and no sign of them; disconnected, it knows, and
// may come back. Its connection is reset, not closed gently, so that what
// the kernel still holds for it goes too. -queue is the slack: how many
// lines a client may fall behind, its writer included, before it counts as
// gone (at most 4 KiB a line). So a client that reads more slowly than the
// others write, for long, is dropped too; a public server would also pace
// each sender (IRC's flood control), so that one client's flood cannot
// outrun the others' reading.
//
// One channel carries all the events, joins, lines and leaves alike: the
// hub sees each client's events in the order its reader sent them, so its
// lines reach every other client in the order it sent them, after its join
// and before its leave.
//
// The protocol is a line each way. A client's first line is its name; the
// server answers "* welcome NAME; here: A, B" (or "nobody else") and tells
// the others "* NAME joined". Then each line the client sends reaches the
// others as "NAME: line". When it closes its connection, or only its
// sending side, the others read "* NAME left". A name in use is refused
// with "* the name NAME is taken", and the connection closed.
//
//	go run ./examples/chat -addr 127.0.0.1:7008
//	nc 127.0.0.1 7008
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/socket"
	"golang.org/x/sys/unix"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7008", "listen on `host:port` (port 0: any free port)")
	threads := flag.Int("threads", 2, "the scheduler's `threads`")
	queue := flag.Int("queue", 1024, "`lines` a client may fall behind before it is disconnected")
	flag.Parse()
	if *threads < 1 || *queue < 1 {
		fmt.Fprintln(os.Stderr, "chat: -threads and -queue must be at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := config{Addr: *addr, Threads: *threads, Queue: *queue}
	err := serve(ctx, cfg, func(a net.Addr) { fmt.Println("chat: listening on", a) })
	if err != nil && !errors.Is(err, context.Canceled) {
		log.New(os.Stderr, "chat: ", 0).Print(err)
		os.Exit(1)
	}
}

type config struct {
	Addr    string
	Threads int
	Queue   int // lines a client may fall behind
}

// maxLine bounds a line a client sends, in bytes; a longer one ends its
// connection.
const maxLine = 4096

// client is one connection, once it has said its name.
type client struct {
	name string
	conn *socket.Conn
	out  *sched.Chan[string] // lines to send it, drained by its writer
}

// event is what a client's reader tells the hub.
type event struct {
	kind eventKind
	c    *client
	line string // of a say
}

type eventKind uint8

const (
	join eventKind = iota
	say
	leave
)

// serve runs the chat server until ctx ends; ready is called with its
// address once it listens. It returns ctx's error after a clean shutdown.
func serve(ctx context.Context, cfg config, ready func(net.Addr)) error {
	s := sched.New(sched.Threads(cfg.Threads))
	return s.RunContext(ctx, func(t *sched.Task) error {
		l, err := socket.Listen(t, "tcp", cfg.Addr)
		if err != nil {
			return err
		}
		defer l.Close()
		events := sched.NewChan[event](0)
		t.GoNamed("hub", func(t *sched.Task) error { return hub(t, events) })
		ready(l.Addr())
		for {
			conn, err := l.Accept(t)
			if err != nil {
				return err // the end of ctx: a cancellation, not a failure
			}
			t.Go(func(t *sched.Task) error {
				read(t, conn, cfg.Queue, events)
				return nil
			})
		}
	})
}

// read is a connection's reader: it reads the client's name, starts its
// writer, and sends the hub the client's join, each of its lines, and its
// leave. The writer closes the connection.
func read(t *sched.Task, conn *socket.Conn, queue int, events *sched.Chan[event]) {
	lines := bufio.NewScanner(conn.Bind(t))
	lines.Buffer(make([]byte, 0, 256), maxLine)
	if !lines.Scan() {
		conn.Close() // gone, or cancelled, before it said its name
		return
	}
	c := &client{name: strings.TrimSpace(lines.Text()), conn: conn, out: sched.NewChan[string](queue)}
	t.Go(func(t *sched.Task) error {
		write(t, c)
		return nil
	})
	events.Send(t, event{kind: join, c: c})
	for lines.Scan() {
		events.Send(t, event{kind: say, c: c, line: lines.Text()})
	}
	if t.Context().Err() != nil {
		return // the server is shutting down: no one is told
	}
	// The end of the stream, a reset, a line too long, or a connection
	// the hub or the writer closed: it leaves.
	events.Send(t, event{kind: leave, c: c})
}

// write is a connection's writer: it sends the client the lines of its
// queue, as many as are waiting in one write, until the hub closes the
// queue or the connection fails; then it closes the connection.
func write(t *sched.Task, c *client) {
	defer c.conn.Close()
	w := bufio.NewWriterSize(c.conn.Bind(t), 64<<10)
	for {
		line, ok := c.out.Recv(t)
		if !ok {
			return // closed by the hub, and every line sent
		}
		for ok {
			w.WriteString(line)
			w.WriteByte('\n')
			var ready bool
			if line, ok, ready = c.out.TryRecv(t); !ready {
				break
			}
		}
		if w.Flush() != nil {
			return
		}
	}
}

// reset closes conn at once, with a reset: what the kernel still holds to
// send is dropped. Closed gently, the socket of a client that does not read
// would stay in the kernel, with up to its send buffer's megabytes, for as
// long as the client keeps its receive window shut.
func reset(conn *socket.Conn) {
	conn.FD().Control(func(fd int) {
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	})
	conn.Close()
}

// hub owns the clients, by name: it takes the events of every reader, in
// the order they come, and never waits on a client.
func hub(t *sched.Task, events *sched.Chan[event]) error {
	clients := map[string]*client{}
	var remove func(c *client, why string)
	// broadcast queues line for every client but from, and disconnects
	// those whose queue is full.
	broadcast := func(from *client, line string) {
		var slow []*client
		for _, c := range clients {
			if c != from && !c.out.TrySend(t, line) {
				slow = append(slow, c)
			}
		}
		for _, c := range slow {
			if clients[c.name] == c { // not removed by an earlier one's notice
				reset(c.conn) // its writer may be stuck in a write: end it now
				remove(c, " (too slow)")
			}
		}
	}
	remove = func(c *client, why string) {
		delete(clients, c.name)
		c.out.Close() // its writer sends what is queued, then closes the connection
		broadcast(nil, "* "+c.name+" left"+why)
	}
	for {
		e, _ := events.Recv(t) // never closed: the run's end unwinds the hub
		c := e.c
		joined := clients[c.name] == c
		switch {
		case e.kind == join && (c.name == "" || clients[c.name] != nil):
			msg := "* the name " + c.name + " is taken"
			if c.name == "" {
				msg = "* the first line must be your name"
			}
			c.out.TrySend(t, msg)
			c.out.Close()
		case e.kind == join:
			names := make([]string, 0, len(clients))
			for name := range clients {
				names = append(names, name)
			}
			slices.Sort(names)
			here := strings.Join(names, ", ")
			if here == "" {
				here = "nobody else"
			}
			clients[c.name] = c
			c.out.TrySend(t, "* welcome "+c.name+"; here: "+here) // its queue is empty
			broadcast(c, "* "+c.name+" joined")
		case e.kind == say && joined:
			broadcast(c, c.name+": "+e.line)
		case e.kind == leave && joined:
			remove(c, "")
		}
		// Otherwise the event is of a client refused or removed already:
		// its reader has yet to see its connection closed.
	}
}
