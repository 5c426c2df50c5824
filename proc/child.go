package proc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Entry is the function a child process runs: the body of a process started
// with Spec.Entry. It talks to its parent through c. ctx is cancelled when the
// parent asks the child to stop (SIGTERM, as Supervisor and Process.Stop send)
// or when the parent's end of c closes (the parent exited or closed its Conn);
// context.Cause(ctx) tells which.
//
// The child exits when the Entry returns: with status 0 if it returned nil,
// or returned ctx's error after ctx was cancelled; with status 1 otherwise,
// after printing the error to standard error. A panic crashes the child as in
// any Go program (status 2, stack on standard error) and nothing else.
type Entry func(ctx context.Context, c *Conn) error

var (
	registry   sync.Map // name -> Entry
	mainCalled atomic.Bool
	mainDone   atomic.Bool
)

// Register makes fn the entry point called name, so that Start can run it in
// a child process. Call Register before Main — from an init function, or at
// the top of main or TestMain — in every binary that may be started as a
// child: the child finds its entry by name in its own registry.
//
// Register panics if name is empty or already registered, if fn is nil, or if
// Main has already run.
func Register(name string, fn Entry) {
	if name == "" {
		panic("proc: Register with an empty name")
	}
	if fn == nil {
		panic("proc: Register(" + name + ") with a nil Entry")
	}
	if mainDone.Load() {
		panic("proc: Register(" + name + ") after Main: register entry points before calling Main")
	}
	if _, dup := registry.LoadOrStore(name, fn); dup {
		panic("proc: entry point " + name + " registered twice")
	}
}

// Main turns this process into the child it was started to be, if it was
// started by Start: it applies the Spec's limits, runs the registered entry
// point and exits, never returning. In any other process it returns at once.
// Call it first thing in main, and in TestMain of a test binary that starts
// children (the test binary re-executes itself, and its TestMain must not run
// the tests in the child):
//
//	func main() {
//		proc.Main()
//		...
//	}
//
// Work done before Main (package init functions, flag definitions) runs in
// children too; deferred calls of main do not run in a child, which leaves
// through os.Exit.
func Main() {
	mainCalled.Store(true)
	cfg, ok := os.LookupEnv(envConfig)
	mainDone.Store(true)
	if !ok {
		return
	}
	// The Entry sees exactly the environment its Spec asked for.
	os.Unsetenv(envConfig)
	os.Exit(runChild(cfg))
}

// envConfig carries a childConfig, as JSON, from Start to Main.
const envConfig = "WEAVE_PROC_CHILD"

// connFD is the child's end of the socketpair: the first of cmd.ExtraFiles.
const connFD = 3

// childConfig is what the parent tells the child before it runs. It travels in
// the environment rather than over the connection so that Main can apply
// limits before anything else happens, without a round trip.
type childConfig struct {
	Parent   int      `json:"parent"`           // the parent's pid: getppid changes when it dies
	Stderr   int      `json:"stderr,omitempty"` // the parent's standard error, to put in place at the handshake
	Entry    string   `json:"entry,omitempty"`
	Exec     string   `json:"exec,omitempty"` // Spec.Path behind a limits trampoline
	Argv     []string `json:"argv,omitempty"`
	MaxFrame int      `json:"max"`
	Limits   Limits   `json:"limits"`
}

// Exit statuses of a child that did not get to run its Entry; 1 and 2 are
// the Entry's error and a Go panic.
const (
	exitHangup    = 3   // the Entry did not return within hangupGrace of the parent closing the Conn
	exitBadConfig = 125 // the environment variable from Start did not parse
	exitSetup     = 126 // a limit could not be set
	exitNoEntry   = 127 // unknown entry point, or exec of Spec.Path failed
)

// hangupGrace is how long a child's Entry has to return after the parent's end
// of the connection closed, before the child exits on its own.
const hangupGrace = time.Second

// Hello codes: the first frame a child sends is one byte of code and a message.
const (
	helloOK byte = iota
	helloUnknownEntry
	helloSetup
	helloLimit // a limit the child could not run under (ErrLimit)
)

func runChild(cfgText string) int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(cfgText), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "proc: child: bad %s: %v\n", envConfig, err)
		return exitBadConfig
	}
	watchParent(cfg.Parent)
	// Our grandchildren must not inherit the connection to our parent: the
	// parent could then never see it close.
	unix.CloseOnExec(connFD)
	if cfg.Stderr != 0 {
		unix.CloseOnExec(cfg.Stderr)
	}
	conn := NewConn(os.NewFile(connFD, "proc-conn"), cfg.MaxFrame)
	hello := func(code byte, msg string) {
		conn.Send(append([]byte{code}, msg...))
	}
	if cfg.Entry != "" {
		if err := cfg.Limits.checkRoom(); err != nil {
			hello(helloLimit, strings.TrimPrefix(err.Error(), ErrLimit.Error()+": "))
			return exitSetup
		}
	}
	if err := cfg.Limits.apply(); err != nil {
		hello(helloSetup, err.Error())
		return exitSetup
	}
	if cfg.Exec != "" {
		// Trampoline for Spec.Path with limits: the limits are set, become
		// the program. On success the connection closes by close-on-exec,
		// which the parent takes as the go-ahead.
		beforeExec(cfg.Parent)
		handOverStderr(cfg.Stderr)
		err := syscall.Exec(cfg.Exec, cfg.Argv, os.Environ())
		hello(helloSetup, fmt.Sprintf("exec %s: %v", cfg.Exec, err))
		return exitNoEntry
	}
	v, ok := registry.Load(cfg.Entry)
	if !ok {
		var names []string
		registry.Range(func(k, _ any) bool { names = append(names, k.(string)); return true })
		slices.Sort(names)
		hello(helloUnknownEntry, fmt.Sprintf("%q (this binary registers: %s)", cfg.Entry, strings.Join(names, ", ")))
		return exitNoEntry
	}
	fn := v.(Entry)

	ctx, cancel := context.WithCancelCause(context.Background())
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		<-term
		cancel(ErrTerminated)
		// Recv returns io.EOF once the messages already sent have been
		// read, so that the usual receive loop ends by itself; Send still
		// works, for last words.
		conn.shutdownRead()
	}()
	go watchHangup(cfg.Parent, conn, cancel)

	handOverStderr(cfg.Stderr)
	hello(helloOK, "")
	err := fn(ctx, conn)
	// From here on the child is exiting by itself: a hangup timer must not
	// change its exit status. (A race-enabled binary sleeps a second in
	// os.Exit, so the timer could otherwise fire meanwhile.)
	exiting.Lock()
	entryReturned = true
	exiting.Unlock()
	// With no parent to reap it, the child ends its group itself. A dying
	// parent has closed its end of the connection, so /proc is read only
	// then.
	if hungUp(connFD) {
		orphanedIf(cfg.Parent)
	}
	if err == nil || (ctx.Err() != nil && errors.Is(err, ctx.Err())) {
		return 0
	}
	fmt.Fprintf(os.Stderr, "proc: %s: %v\n", cfg.Entry, err)
	return 1
}

// hungUp reports whether fd's peer has closed its end, or fd is closed.
func hungUp(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd)}}
	_, err := unix.Poll(fds, 0)
	return err != nil || fds[0].Revents != 0
}

// handOverStderr puts the parent's standard error, descriptor fd, in place of
// the pipe through which the parent watched this child's start (see
// stderrTail), before the handshake: the parent stops reading the pipe once it
// has the handshake.
func handOverStderr(fd int) {
	if fd != 0 && unix.Dup3(fd, 2, 0) == nil {
		unix.Close(fd)
	}
}

// exiting orders the two ways out of a child that ran its Entry: the Entry
// returning and the hangup timer. Whichever takes it first decides the exit
// status.
var (
	exiting       sync.Mutex
	entryReturned bool
)

// watchHangup waits until the parent's end of the connection is closed,
// without reading from it: EPOLLHUP reports it while the data the parent sent
// stays queued for the Entry. If the parent is dead or dying, the child ends
// at once with its group, as on the parent-death signal (which an Entry may
// have reset). If the Entry closed conn itself, the hangup is its own doing
// and the watch ends. Otherwise it cancels the Entry's context and gives it
// hangupGrace to return: this covers a parent that lives on but has let go
// of the child.
func watchHangup(parent int, conn *Conn, cancel context.CancelCauseFunc) {
	waitHangup()
	orphanedIf(parent)
	if conn.closed.Load() {
		return
	}
	cancel(ErrParentGone)
	time.AfterFunc(hangupGrace, func() {
		exiting.Lock() // never unlocked: this exits
		if entryReturned {
			return
		}
		orphanedIf(parent)
		buf := make([]byte, 64<<10)
		buf = buf[:runtime.Stack(buf, true)]
		fmt.Fprintf(os.Stderr, "proc: child %d: entry did not return within %v of its connection closing; exiting. Goroutines:\n%s\n",
			os.Getpid(), hangupGrace, buf)
		os.Exit(exitHangup)
	})
}

// waitHangup returns when the connection's peer has closed its end. The
// connection's descriptor is not in Go's netpoller (see Conn); an epoll
// instance watching it can be, so the wait holds no thread. Where that
// fails, poll(2) on a thread of its own does the same.
//
// The event is EPOLLHUP, which a Unix stream socket reports once both of its
// directions are shut down: the peer's close(2) or shutdown(SHUT_RDWR) does
// that. Not EPOLLRDHUP, which only says that reading is over: the child's own
// shutdown(SHUT_RD) on SIGTERM reports it too, and taking that for the
// parent's hangup would cut the grace period the parent gave to one second.
func waitHangup() {
	if epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC); err == nil {
		ev := unix.EpollEvent{Events: unix.EPOLLHUP, Fd: connFD}
		if unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, connFD, &ev) == nil && unix.SetNonblock(epfd, true) == nil {
			f := os.NewFile(uintptr(epfd), "proc-hangup")
			if rc, err := f.SyscallConn(); err == nil {
				var evs [1]unix.EpollEvent
				err = rc.Read(func(fd uintptr) bool {
					n, err := unix.EpollWait(int(fd), evs[:], 0)
					return n > 0 || err != nil && err != unix.EINTR
				})
				if err == nil {
					return // f stays open: the process is about to end
				}
			}
			f.Close()
		} else {
			unix.Close(epfd)
		}
	}
	fds := []unix.PollFd{{Fd: connFD, Events: unix.POLLHUP}}
	for {
		_, err := unix.Poll(fds, -1)
		if err != unix.EINTR && (err != nil || fds[0].Revents != 0) {
			return
		}
	}
}
