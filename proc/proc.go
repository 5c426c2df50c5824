package proc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weavert/weave/internal/procfs"
	"golang.org/x/sys/unix"
)

// Spec says what process to start and how. Exactly one of Entry and Path is
// set.
type Spec struct {
	// Entry names an entry point registered with Register. The child is
	// this same binary (/proc/self/exe), re-executed; it talks to the parent
	// through Process.Conn.
	Entry string
	// Path is an executable to run instead, found through $PATH if it has
	// no slash. It gets no Conn; Limits, the process group, Pdeathsig, Kill
	// and Stat apply to it as to an Entry.
	Path string
	// Args are the child's arguments after the program name: os.Args[1:]
	// in an Entry, argv[1:] for a Path.
	Args []string
	// Env is added to the child's environment; a later NAME=value replaces
	// an earlier one of the same name. The child's environment is the
	// parent's os.Environ() followed by Env, or Env alone with CleanEnv.
	// Nothing else is added: an Entry sees exactly that in os.Environ().
	Env      []string
	CleanEnv bool
	// Dir is the child's working directory; empty means the parent's.
	Dir string
	// Limits are applied in the child before its Entry runs (or its Path is
	// executed).
	Limits Limits
	// MaxFrame is the largest message either end of the Conn accepts;
	// 0 means DefaultMaxFrame.
	MaxFrame int
	// Stdin is the child's standard input; nil means /dev/null. An *os.File
	// is given to the child as it is; any other Reader is copied to the
	// child through a pipe by a goroutine, which ends when Stdin does or
	// when the child exits. Then a copy still waiting in Stdin's Read is
	// stopped by closing Stdin if it is an io.Closer (as io.Pipe's reader,
	// a net.Conn or an os/exec pipe are); otherwise that goroutine ends when
	// the Read returns. The child's end is reported when it exits, whatever
	// Stdin does.
	//
	// Stdout is its standard output; nil means /dev/null. Stderr is its
	// standard error; nil means the parent's os.Stderr, so that a crashing
	// child's stack is seen. Other than *os.File values are copied through
	// pipes as by os/exec: Wait waits for the child's output to end, and for
	// at most a second after the child exited for what a descendant that
	// left its process group still holds open.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

func (s *Spec) name() string {
	if s.Entry != "" {
		return s.Entry
	}
	return s.Path
}

// Process is a child process started by Start. Its methods may be called from
// any goroutine.
type Process struct {
	name string
	pid  int
	cmd  *exec.Cmd
	conn *Conn

	pidfd    *os.File   // nil where pidfd(2) is unavailable
	stdin    *stdinCopy // nil unless Spec.Stdin is a Reader other than a file
	stopCtx  func() bool
	connOnce sync.Once

	mu     sync.Mutex
	exited bool // the leader has exited; it may be a zombie still

	done  chan struct{}
	state *os.ProcessState
	err   error
}

// Start starts a child process as spec says and returns once it is running.
// For an Entry that means the child has applied its limits, found its entry
// point and is about to call it (Start blocks until the child says so: bound
// it with ctx); a child that does not know the entry is an
// error wrapping ErrUnknownEntry, returned after that child has exited.
//
// The child is the leader of a new process group (Kill ends the group) and
// dies with SIGKILL if the parent dies (see Pdeathsig in the package doc). If
// ctx is done before the child exits, Start kills the child's process group,
// and returns ctx.Err() if it had not returned yet.
//
// Start panics if spec sets both or neither of Entry and Path, and if it
// names an Entry (or sets Limits for a Path) in a program that has not called
// Main: the child would run that program's main instead.
func Start(ctx context.Context, spec Spec) (*Process, error) {
	if (spec.Entry == "") == (spec.Path == "") {
		panic("proc: Spec needs exactly one of Entry and Path")
	}
	maxFrame := spec.MaxFrame
	if maxFrame == 0 {
		maxFrame = DefaultMaxFrame
	}
	if maxFrame < 0 || maxFrame > maxMaxFrame {
		panic(fmt.Sprintf("proc: Spec.MaxFrame %d out of range", maxFrame))
	}
	if err := spec.Limits.validate(spec.Entry != ""); err != nil {
		return nil, fmt.Errorf("proc: start %s: %w", spec.name(), err)
	}
	if spec.Entry != "" && !mainCalled.Load() {
		// The child would run this program's main instead of the entry:
		// under go test, every test again, starting children of its own.
		panic("proc: Start of an Entry needs proc.Main at the start of main (or TestMain)")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{
		Dir:    spec.Dir,
		Env:    environ(spec),
		Stdout: spec.Stdout,
		Stderr: spec.Stderr,
		// Only for pipes made for non-*os.File Stdout and Stderr that a
		// child left open to another process.
		WaitDelay: time.Second,
	}
	// A Path with limits goes through this binary too: Main applies the
	// limits, then execs the Path. prlimit(2) on the child after fork would
	// leave it running unlimited for a moment, and os/exec runs no code of
	// ours between fork and exec.
	trampoline := spec.Path != "" && !spec.Limits.isZero()
	var parentEnd, childEnd *os.File
	var stderr *stderrTail
	if spec.Entry != "" || trampoline {
		cfg := childConfig{Parent: os.Getpid(), Entry: spec.Entry, MaxFrame: maxFrame, Limits: spec.Limits}
		if spec.Stderr == nil && os.Stderr != nil {
			cfg.Stderr = connFD + 1 // the parent's, after the child's end of the Conn
		}
		if trampoline {
			if !mainCalled.Load() {
				panic("proc: Spec.Path with Limits needs proc.Main at the start of main")
			}
			path, err := lookPath(spec.Path)
			if err != nil {
				return nil, fmt.Errorf("proc: start %s: %w", spec.Path, err)
			}
			cfg.Exec = path
			cfg.Argv = append([]string{spec.Path}, spec.Args...)
		}
		js, err := json.Marshal(cfg)
		if err != nil {
			return nil, fmt.Errorf("proc: start %s: %w", spec.name(), err)
		}
		if cfg.Stderr != 0 {
			if stderr, err = newStderrTail(os.Stderr); err != nil {
				return nil, fmt.Errorf("proc: start %s: stderr pipe: %w", spec.name(), err)
			}
			cmd.Stderr = stderr.child
		}
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			if stderr != nil {
				stderr.started(false)
			}
			return nil, fmt.Errorf("proc: start %s: socketpair: %w", spec.name(), err)
		}
		parentEnd = os.NewFile(uintptr(fds[0]), "proc-conn")
		childEnd = os.NewFile(uintptr(fds[1]), "proc-conn-child")
		cmd.Path = "/proc/self/exe" // this binary, even if its file was replaced or removed
		cmd.Args = append([]string{os.Args[0]}, spec.Args...)
		if trampoline {
			cmd.Args = cmd.Args[:1]
		}
		cmd.Env = append(cmd.Env, envConfig+"="+string(js))
		cmd.ExtraFiles = []*os.File{childEnd}
		if stderr != nil {
			cmd.ExtraFiles = append(cmd.ExtraFiles, os.Stderr)
		}
	} else {
		path, err := lookPath(spec.Path)
		if err != nil {
			return nil, fmt.Errorf("proc: start %s: %w", spec.Path, err)
		}
		cmd.Path = path
		cmd.Args = append([]string{spec.Path}, spec.Args...)
	}
	if cmd.Stderr == nil && os.Stderr != nil {
		cmd.Stderr = os.Stderr // a Path's, or an Entry's whose start is not watched
	}
	// A child that runs Main kills its group when its parent dies (see
	// parent.go), on a signal it can catch; any other dies of SIGKILL.
	pdeath := syscall.SIGKILL
	if parentEnd != nil {
		pdeath = sigParentDeath
	}
	pidfd := -1
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: pdeath,
		PidFD:     &pidfd,
	}

	stdin, err := newStdinCopy(cmd, spec.Stdin)
	if err == nil {
		err = spawn(cmd)
	}
	if childEnd != nil {
		childEnd.Close()
	}
	if stdin != nil {
		stdin.started(err == nil)
	}
	if stderr != nil {
		stderr.started(err == nil)
	}
	if err != nil {
		if parentEnd != nil {
			parentEnd.Close()
		}
		return nil, fmt.Errorf("proc: start %s: %w", spec.name(), err)
	}
	p := &Process{name: spec.name(), pid: cmd.Process.Pid, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	if pidfd >= 0 {
		if err := unix.SetNonblock(pidfd, true); err == nil {
			p.pidfd = os.NewFile(uintptr(pidfd), "pidfd")
		} else {
			unix.Close(pidfd)
		}
	}
	p.stopCtx = context.AfterFunc(ctx, func() { p.Kill() })
	go p.reap()
	if parentEnd == nil {
		return p, nil
	}

	conn := NewConn(parentEnd, maxFrame)
	hello, err := conn.Recv()
	if err == nil && len(hello) > 0 && hello[0] == helloOK || trampoline && err == io.EOF {
		// The child runs its entry, or, when the connection closed on exec,
		// the Path runs, limited.
		if stderr != nil {
			stderr.stop()
		}
		if err != nil {
			conn.Close()
			return p, nil
		}
		conn.ended = p.ended
		p.conn = conn
		return p, nil
	}
	// The child is not going to run: make sure it is gone, then say why.
	conn.Close()
	p.Kill()
	<-p.done
	tail, caught := "", stderr != nil
	if caught {
		tail = stderr.stop()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("proc: start %s: %w", spec.name(), p.notReady(hello, err, caught, tail))
}

// notReady says why a child that was started did not get to run: its answer
// to the handshake, or how it ended before one, with the end of what it wrote
// to its standard error if that was caught.
func (p *Process) notReady(hello []byte, err error, caught bool, tail string) error {
	switch {
	case err == nil && len(hello) > 0 && hello[0] == helloLimit:
		return fmt.Errorf("%w: %s", ErrLimit, hello[1:])
	case err == nil && len(hello) > 0 && hello[0] == helloUnknownEntry:
		return fmt.Errorf("%w %s", ErrUnknownEntry, hello[1:])
	case err == nil && len(hello) > 0:
		return fmt.Errorf("child setup: %s", hello[1:])
	case err == nil:
		return errors.New("empty handshake")
	}
	how := p.err
	if how == nil {
		how = err // it exited with status 0 without a handshake
	}
	switch {
	case !caught:
		return fmt.Errorf("exited before its handshake (did its main call proc.Main first? its standard error went to Spec.Stderr): %w", how)
	case tail == "":
		return fmt.Errorf("exited before its handshake, writing nothing to its standard error (did its main call proc.Main first?): %w", how)
	}
	return fmt.Errorf("exited before its handshake: %w; its standard error ended with:\n%s", how, tail)
}

func lookPath(path string) (string, error) {
	if strings.Contains(path, "/") {
		return path, nil
	}
	return exec.LookPath(path)
}

func environ(spec Spec) []string {
	var env []string
	if !spec.CleanEnv {
		env = os.Environ()
	}
	env = append(env, spec.Env...)
	// Later entries win; keep each name once, at its first position.
	seen := make(map[string]int, len(env))
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := seen[k]; ok {
			out[i] = kv
			continue
		}
		seen[k] = len(out)
		out = append(out, kv)
	}
	if out == nil {
		out = []string{} // non-nil: an empty environment, not the parent's
	}
	return out
}

// reap is the one place where children are reaped: one goroutine per child,
// for the child's life. It waits for the exit without reaping (WNOWAIT), so
// that the leader's pid — and with it the process group id — cannot be reused
// while it marks the process exited and kills what is left of the group; only
// then does it reap.
func (p *Process) reap() {
	p.waitExit()
	p.mu.Lock()
	p.exited = true
	// Whatever the child left in its process group goes with it.
	unix.Kill(-p.pid, unix.SIGKILL)
	p.mu.Unlock()
	if p.stdin != nil {
		p.stdin.stop()
	}

	err := p.cmd.Wait()
	p.state = p.cmd.ProcessState
	switch {
	case p.state != nil && !p.state.Success():
		p.err = &ExitError{Name: p.name, PID: p.pid, State: p.state}
	case p.state == nil || err != nil && !isExitError(err):
		p.err = err
	}
	if p.pidfd != nil {
		p.pidfd.Close()
	}
	p.stopCtx()
	release()
	close(p.done)
}

func isExitError(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}

// waitExit returns when the child has exited, leaving it unreaped. With a
// pidfd it waits in the netpoller and holds no thread; without one it blocks
// a thread in waitid(2).
func (p *Process) waitExit() {
	if p.pidfd != nil {
		rc, err := p.pidfd.SyscallConn()
		if err == nil {
			var done bool
			err = rc.Read(func(fd uintptr) bool {
				var info unix.Siginfo
				err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
				switch {
				case err == unix.EINTR:
					return false
				case err == unix.EAGAIN:
					return false
				case err != nil:
					return true // fall back below
				}
				done = info.Signo != 0
				return done
			})
			if err == nil && done {
				return
			}
		}
	}
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// ended says how the child ended, for its Conn once the stream has ended: if
// the child has exited or is exiting, it waits for the reaper and returns
// Wait's error and true; if the child lives on (it closed its end), false.
// The stream ends before the child is a zombie, so "exiting" is read from
// /proc, where the kernel marks the main thread as soon as it starts exiting.
func (p *Process) ended() (error, bool) {
	p.mu.Lock()
	exiting := p.exited
	if !exiting {
		// Not reaped yet (reap marks exited first), so the pid is the child's.
		st, err := procfs.ReadStat(p.pid)
		exiting = err != nil || st.Ending()
	}
	p.mu.Unlock()
	if !exiting {
		return nil, false
	}
	<-p.done
	return p.err, true
}

// PID returns the child's process id, which is also its process group id.
func (p *Process) PID() int { return p.pid }

// Conn returns the connection to the child, or nil for a Spec.Path process.
func (p *Process) Conn() *Conn { return p.conn }

// Done returns a channel that is closed when the child has exited and been
// reaped; Wait does not block after that.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to the child process (not to its group). It returns
// os.ErrProcessDone if the child has already been reaped. The pid is not
// reused in between: the signal goes through a pidfd.
func (p *Process) Signal(sig os.Signal) error {
	return p.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL to the child's whole process group: the child and every
// descendant that has not left the group. It does not wait; Wait does.
// Killing a child that has exited is a no-op that returns nil.
func (p *Process) Kill() error { return p.signalGroup(unix.SIGKILL) }

func (p *Process) signalGroup(sig unix.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return nil
	}
	// The leader is not reaped yet (reap marks exited first), so its pid
	// still names this group.
	if err := unix.Kill(-p.pid, sig); err != nil && err != unix.ESRCH {
		return fmt.Errorf("proc: kill %s: %w", p.name, err)
	}
	return nil
}

// Stop asks the child to finish: SIGTERM to its process group, which cancels
// an Entry's context. If the child has not exited after grace, its group is
// killed with SIGKILL. Stop returns what Wait returns.
func (p *Process) Stop(grace time.Duration) (*os.ProcessState, error) {
	p.signalGroup(unix.SIGTERM)
	t := time.NewTimer(grace)
	select {
	case <-p.done:
	case <-t.C:
		p.Kill()
	}
	t.Stop()
	return p.Wait()
}

// Wait waits for the child to exit and returns its state. The error is nil if
// the child exited with status 0, an *ExitError if it exited otherwise or was
// killed. Wait may be called any number of times, from any goroutine.
//
// Like os/exec's pipes, the parent's Conn is closed when Wait returns: receive
// what you need before calling Wait. Messages the child sent before exiting
// stay readable until then; after it, Recv returns the end of the child's
// stream (io.EOF, or an error wrapping io.EOF and the child's ExitError: see
// Conn.Recv) and Send ErrClosed.
func (p *Process) Wait() (*os.ProcessState, error) {
	<-p.done
	p.connOnce.Do(func() {
		if p.conn != nil {
			p.conn.closeExited()
		}
	})
	return p.state, p.err
}

// String returns the Spec's Entry (or Path) and the pid, as in "worker[4242]".
func (p *Process) String() string { return fmt.Sprintf("%s[%d]", p.name, p.pid) }

// The spawner: every child is forked by one goroutine locked to its OS thread.
//
// Pdeathsig is delivered when the *thread* that forked the child exits, not
// the process (prctl(2): "the parent" is the creating thread). A goroutine
// that forks from whatever thread it is on would tie the child's life to a
// thread the Go runtime may retire — it does, when a locked goroutine exits
// without unlocking — and the child would be killed for no reason. So the
// forks happen on a thread that stays locked, and alive, as long as any child
// it forked has not been reaped. With no children left it exits (and so does
// its thread, which it never unlocks), so an idle program keeps no extra
// thread or goroutine.
var spawner struct {
	mu   sync.Mutex
	reqs chan spawnReq
	live int // children forked and not yet reaped, plus forks in progress
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func spawn(cmd *exec.Cmd) error {
	spawner.mu.Lock()
	if spawner.reqs == nil {
		spawner.reqs = make(chan spawnReq)
		go spawnLoop(spawner.reqs)
	}
	spawner.live++
	reqs := spawner.reqs
	spawner.mu.Unlock()

	done := make(chan error, 1)
	reqs <- spawnReq{cmd, done}
	err := <-done
	if err != nil {
		release()
	}
	return err
}

// release ends one child's claim on the spawner thread.
func release() {
	spawner.mu.Lock()
	spawner.live--
	if spawner.live == 0 {
		close(spawner.reqs)
		spawner.reqs = nil
	}
	spawner.mu.Unlock()
}

func spawnLoop(reqs <-chan spawnReq) {
	runtime.LockOSThread()
	// No UnlockOSThread: when this returns, no live child was forked here,
	// and the thread ends with the goroutine.
	for r := range reqs {
		r.done <- r.cmd.Start()
	}
}
