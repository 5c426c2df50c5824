package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weavert/weave/inspect"
	"github.com/weavert/weave/proc"
	"github.com/weavert/weave/sched"
)

// demoChildren is the number of worker processes of the demo.
const demoChildren = 2

// runDemo is the tour: a parent process and two children, each running a
// scheduler of two threads; the children find primes with thousands of
// chained tasks, the parent hands out the rounds and tallies them. While it
// runs the terminal shows the tree of processes, threads and tasks; at the
// end, task switches against the kernel's context switches.
func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := flags("demo", "[--duration D] [--http ADDR] [--trace FILE] [-n N]", stderr)
	duration := seconds(10 * time.Second)
	fs.Var(&duration, "duration", "how long to run: `seconds`, or a duration with its unit (2m)")
	addr := fs.String("http", "", "serve the live page on `ADDR` (a port alone binds to loopback: :8080 is 127.0.0.1:8080)")
	traceName := fs.String("trace", "", "write the timeline of all three processes to `FILE` (Chrome Trace Event JSON: open it in ui.perfetto.dev)")
	n := fs.Int("n", 2000, "primes in each child's sieve: the sieve is a chain of that many tasks")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *n < 1 || *n > 20_000 {
		return usagef("-n must be between 1 and 20000, not %d", *n)
	}
	if duration <= 0 {
		return usagef("--duration must be positive, not %v", duration)
	}
	// What would fail at the end, or after the children started, fails
	// now: the trace file's folder, the page's port.
	trace, err := createTrace(*traceName)
	if err != nil {
		return err
	}
	defer trace.discard()
	live, err := listenLive(*addr)
	if err != nil {
		return err
	}
	if live != nil {
		defer live.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{stdout: stdout, n: *n, duration: time.Duration(duration), timeline: trace != nil || live != nil}
	d.live = isTerminal(stdout)
	return d.run(ctx, live, trace)
}

type demo struct {
	stdout   io.Writer
	n        int
	duration time.Duration
	timeline bool
	live     bool // stdout is a terminal: redraw the picture in place

	start time.Time
	lines int // of the picture on the terminal, to redraw it in place

	lastPicture string
	peers       []*inspect.Peer
	procs       []*proc.Process

	rangeMu sched.Mutex
	next    int // the first number not handed out yet

	mu     sync.Mutex
	rounds []int // per child: rounds done
	last   []result
	primes []int // per child: primes found
	values []uint64
}

// rangeSize is how many numbers each job tests.
const rangeSize = 2000

func (d *demo) run(ctx context.Context, live net.Listener, trace *traceOut) (err error) {
	rec := inspect.NewRecorder(inspect.Config{
		Name: "parent", Threads: workerThreads, LockedThreads: true, Timeline: d.timeline,
	})
	defer rec.Close()

	env := []string{envPrimes + "=" + strconv.Itoa(d.n)}
	if d.timeline {
		env = append(env, envTimeline+"=1")
	}
	defer d.stopChildren()
	for range demoChildren {
		// Not ctx: Start would kill the child when it ends, and Ctrl-C must
		// let the demo finish its round and summary first.
		p, err := proc.Start(context.Background(), proc.Spec{Entry: workerEntry, Env: env})
		if err != nil {
			return err
		}
		d.procs = append(d.procs, p)
	}
	d.rounds = make([]int, demoChildren)
	d.last = make([]result, demoChildren)
	d.primes = make([]int, demoChildren)
	d.values = make([]uint64, demoChildren)
	fmt.Fprintf(d.stdout, "weave demo: parent pid %d, children %s (pid %d) and %s (pid %d), for %v\n",
		os.Getpid(), childName(0), d.procs[0].PID(), childName(1), d.procs[1].PID(), d.duration)

	if live != nil {
		srv := serveLive(live)
		defer srv.Close()
		fmt.Fprintf(d.stdout, "live page: http://%s/\n", live.Addr())
	}

	d.start = time.Now()
	runCtx, cancel := context.WithTimeout(ctx, d.duration)
	defer cancel()
	s := sched.New(sched.Threads(workerThreads), sched.LockThreads(), sched.MeasureRunTime(), sched.WithTracer(rec))
	d.next = primeBound(d.n) + 1
	var end ending
	err = s.Run(func(t *sched.Task) error {
		// A task of this run reads each child's Conn, parked on the
		// poller: the dispatchers send and receive with no goroutine and
		// no Await between them and the children. Those tasks end when the
		// Peers close, as this task returns: what needs the children
		// (the last snapshot, the trace) is done before.
		for i, p := range d.procs {
			peer, err := inspect.ChildTask(t, childName(i), p)
			if err != nil {
				return err
			}
			defer peer.Close()
			d.peers = append(d.peers, peer)
		}
		g := sched.NewGroup(t)
		for i, peer := range d.peers {
			g.GoNamed(t, "dispatch "+peer.Name(), func(t *sched.Task) error { return d.dispatch(runCtx, t, i) })
		}
		g.GoNamed(t, "picture", func(t *sched.Task) error { return d.redraw(runCtx, t) })
		if err := g.Wait(t); err != nil {
			return err
		}
		end.elapsed = time.Since(d.start)
		// The children wait for their next job: their counters stand
		// still, and their threads are idle.
		end.tree, _ = sched.Await(t, func(ctx context.Context) (*inspect.Tree, error) {
			return inspect.Snapshot(ctx, inspect.Options{Timeout: 5 * time.Second}), nil
		})
		end.idle, _ = sched.Await(t, func(context.Context) ([]childIdle, error) {
			return d.idleThreads(end.tree), nil
		})
		if trace != nil {
			_, err := sched.Await(t, func(context.Context) (struct{}, error) { return struct{}{}, trace.write() })
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !d.live {
		// The last picture taken while the work went on, once.
		fmt.Fprint(d.stdout, d.lastPicture)
	}
	if trace != nil {
		fmt.Fprintf(d.stdout, "timeline: %s (open it in ui.perfetto.dev or chrome://tracing)\n", trace.name)
	}
	fmt.Fprint(d.stdout, d.summary(end, ctx.Err() != nil))
	return nil
}

// ending is what the demo knows once the work is over, for its summary.
type ending struct {
	elapsed time.Duration
	tree    *inspect.Tree
	idle    []childIdle
}

// childName names child i in the tree.
func childName(i int) string { return fmt.Sprintf("worker-%d", i+1) }

// dispatch hands rounds to child i until ctx ends: each job goes out with
// an arrow in the trace, each result comes back as one. Both park t, on
// the poller, while the child's socket is full or empty.
func (d *demo) dispatch(ctx context.Context, t *sched.Task, i int) error {
	peer := d.peers[i]
	for round := 1; ctx.Err() == nil; round++ {
		// The two dispatchers share the numbers to test: each takes the
		// next range for its child.
		d.rangeMu.Lock(t)
		lo := d.next
		d.next += rangeSize
		d.rangeMu.Unlock()
		b, _ := json.Marshal(job{Round: round, Lo: lo, Hi: lo + rangeSize})
		if err := peer.SendFrom(t, b); err != nil {
			return fmt.Errorf("%s: %w", peer.Name(), err)
		}
		msg, err := peer.RecvTask(t)
		if err != nil {
			return fmt.Errorf("%s: %w", peer.Name(), err)
		}
		var res result
		if err := json.Unmarshal(msg, &res); err != nil {
			return fmt.Errorf("%s: result %q: %w", peer.Name(), msg, err)
		}
		d.mu.Lock()
		d.rounds[i]++
		d.last[i] = res
		d.primes[i] += res.Primes
		d.values[i] += res.Values
		d.mu.Unlock()
	}
	return nil
}

// redraw takes a snapshot about four times a second and draws it in place
// on a terminal; elsewhere it keeps the last one for the end.
func (d *demo) redraw(ctx context.Context, t *sched.Task) error {
	for {
		// Snapshot is the tree of every process: it reads this process's
		// /proc files, regular files that no poller waits on, and waits for
		// the children's answers, which the Peers' tasks receive. It is
		// the call the live page's handlers make on their goroutines:
		// here, too, it runs on one, through Await.
		tree, _ := sched.Await(t, func(context.Context) (*inspect.Tree, error) {
			return inspect.Snapshot(ctx, inspect.Options{Timeout: time.Second}), nil
		})
		if ctx.Err() != nil && d.lastPicture != "" {
			return nil // the children are ending their round: keep the picture of the work
		}
		pic := d.picture(tree, time.Since(d.start))
		d.lastPicture = pic
		if d.live {
			// Lines cut to the terminal's width: a wrapped line would
			// throw off the count of lines to redraw.
			pic = fitWidth(pic, terminalWidth(d.stdout))
			d.clear()
			d.lines = countLines(pic)
			fmt.Fprint(d.stdout, pic)
		}
		if t.Sleep(250*time.Millisecond) != nil {
			return nil
		}
	}
}

// stopChildren closes each child's Conn, which tells it to finish, and
// waits for it; one that does not end within two seconds is killed. No
// child outlives the demo.
func (d *demo) stopChildren() {
	for _, p := range d.procs {
		p.Conn().Close() // closed already, with its Peer, unless the run failed first
	}
	for _, p := range d.procs {
		select {
		case <-p.Done():
		case <-time.After(2 * time.Second):
			p.Kill()
		}
		p.Wait()
	}
}

// traceOut is where the timeline goes: a file made next to the one named
// before the run starts, so that a folder that does not exist or cannot be
// written is said at once, and renamed to that name once the trace is in it,
// so that a run that fails leaves a file of that name as it was.
type traceOut struct {
	name string
	tmp  *os.File
	done bool
}

// createTrace makes the file for the trace named name; none if name is "".
func createTrace(name string) (*traceOut, error) {
	if name == "" {
		return nil, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("--trace %s: %v", name, err)
	}
	return &traceOut{name: name, tmp: tmp}, nil
}

// write writes the timeline of the processes and puts the file in place.
func (t *traceOut) write() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := inspect.WriteTrace(ctx, t.tmp)
	if cerr := t.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(t.tmp.Name(), t.name)
	}
	if err != nil {
		return fmt.Errorf("--trace %s: %w", t.name, err)
	}
	t.done = true
	return nil
}

// discard removes the file made for the trace unless write put it in place.
func (t *traceOut) discard() {
	if t != nil && !t.done {
		t.tmp.Close()
		os.Remove(t.tmp.Name())
	}
}

// listenLive listens for the live page on addr; a port alone means loopback,
// and "" no page.
func listenLive(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, usagef("--http %q: %v", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe.Err
		}
		return nil, fmt.Errorf("--http %s: %v", addr, err)
	}
	return ln, nil
}

// serveLive serves the live page on ln.
func serveLive(ln net.Listener) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/", inspect.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "weave demo: http:", err)
		}
	}()
	return srv
}

// terminalWidth returns the width of terminal w in columns, 80 if unknown.
func terminalWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			return int(ws.Col)
		}
	}
	return 80
}

// fitWidth cuts every line of s to at most width-1 characters.
func fitWidth(s string, width int) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		r := []rune(strings.TrimSuffix(l, "\n"))
		if len(r) >= width {
			lines[i] = string(r[:width-1]) + "\n"
		}
	}
	return strings.Join(lines, "")
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// childIdle is where a child's scheduler threads sleep in the kernel once
// the work is over.
type childIdle struct {
	name    string
	pid     int
	threads []idleThread
	settled bool // the threads were all found asleep, twice alike
	err     error
}

// idleThread is one scheduler thread of a child, and its wait channel.
type idleThread struct {
	index, tid int
	wait       string // "" if it was not asleep
}

// idleThreads says, for each child of tree, where its scheduler threads
// sleep in the kernel: the wait channel of each thread, read by this
// process from the child's /proc (proc.Thread.WaitChannel), so that the
// reading wakes nothing in the child, as a request would. The threads are
// the snapshot's, by TID. A child that has just answered is read again
// until two readings some milliseconds apart agree, every scheduler thread
// asleep with the same context switches, for at most a second.
func (d *demo) idleThreads(tree *inspect.Tree) []childIdle {
	var idle []childIdle
	for i, c := range tree.Process.Children {
		ci := childIdle{name: c.Name, pid: c.PID}
		if c.Process == nil || len(c.Process.Schedulers) == 0 || i >= len(d.procs) {
			ci.err = errors.New(c.Error)
			idle = append(idle, ci)
			continue
		}
		var prev map[int]proc.Thread
		for try := 0; try < 200 && !ci.settled; try++ {
			if try > 0 {
				time.Sleep(5 * time.Millisecond)
			}
			st, err := d.procs[i].Stat()
			if err != nil {
				ci.err = err
				break
			}
			now := map[int]proc.Thread{}
			for _, th := range st.Threads {
				now[th.TID] = th
			}
			ci.threads, ci.settled = ci.threads[:0], true
			for _, th := range c.Process.Schedulers[0].Threads {
				k, was := now[th.TID], prev[th.TID]
				ci.threads = append(ci.threads, idleThread{index: th.Index, tid: th.TID, wait: k.WaitChannel})
				ci.settled = ci.settled && th.TID != 0 && k.State == 'S' && k == was
			}
			prev = now
		}
		idle = append(idle, ci)
	}
	return idle
}
