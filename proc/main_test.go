package proc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/weavert/weave/proc"
)

// Entry points of the children the tests start. The test binary re-executes
// itself; TestMain registers these, then proc.Main turns a child into the
// entry its parent named.
var entries = map[string]proc.Entry{
	// echo sends every message back until the parent closes.
	"echo": func(ctx context.Context, c *proc.Conn) error {
		var buf []byte
		for {
			m, err := c.RecvBuf(buf)
			buf = m
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := c.Send(m); err != nil {
				return err
			}
		}
	},
	// stdin sends back all of its standard input.
	"stdin": func(ctx context.Context, c *proc.Conn) error {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		return c.Send(b)
	},
	// hello sends one message and returns.
	"hello": func(ctx context.Context, c *proc.Conn) error {
		return c.Send([]byte("hi"))
	},
	"exit0": func(ctx context.Context, c *proc.Conn) error { return nil },
	"fail": func(ctx context.Context, c *proc.Conn) error {
		return errors.New("deliberate failure")
	},
	// crashy echoes, and dies on the poisoned message "crash".
	"crashy": func(ctx context.Context, c *proc.Conn) error {
		for {
			m, err := c.Recv()
			if err != nil {
				return nil
			}
			if string(m) == "crash" {
				os.Exit(42)
			}
			if string(m) == "exit0" {
				return nil
			}
			c.Send(m)
		}
	},
	// waitctx returns when its context is cancelled, after sending the
	// cause (the parent may not be listening any more).
	"waitctx": func(ctx context.Context, c *proc.Conn) error {
		c.Send([]byte("ready"))
		<-ctx.Done()
		c.Send([]byte(context.Cause(ctx).Error()))
		return ctx.Err()
	},
	// slowstop needs slowStop after its context ends before it returns:
	// longer than the hangup grace, shorter than the grace its parent gives.
	"slowstop": func(ctx context.Context, c *proc.Conn) error {
		c.Send([]byte("ready"))
		<-ctx.Done()
		time.Sleep(slowStop)
		return ctx.Err()
	},
	// selfclose closes its own connection and goes on working for longer
	// than the hangup grace; it fails if its context was cancelled.
	"selfclose": func(ctx context.Context, c *proc.Conn) error {
		c.Close()
		time.Sleep(1500 * time.Millisecond)
		if ctx.Err() != nil {
			return fmt.Errorf("closing its own connection cancelled the entry's context: %w", context.Cause(ctx))
		}
		return nil
	},
	// stubborn ignores its context and the connection: only signals and the
	// hangup timer end it.
	"stubborn": func(ctx context.Context, c *proc.Conn) error {
		c.Send([]byte("ready"))
		select {}
	},
	// env reports its environment, arguments and working directory.
	"env": func(ctx context.Context, c *proc.Conn) error {
		wd, _ := os.Getwd()
		return proc.SendJSON(c, envReport{Env: os.Environ(), Args: os.Args[1:], Dir: wd})
	},
	// rlimits reports its limits (soft, hard) and how many files it could open.
	"rlimits": func(ctx context.Context, c *proc.Conn) error {
		rep := map[string][2]uint64{}
		for name, res := range map[string]int{
			"nofile": unix.RLIMIT_NOFILE, "data": unix.RLIMIT_DATA, "as": unix.RLIMIT_AS,
			"cpu": unix.RLIMIT_CPU, "nproc": unix.RLIMIT_NPROC,
		} {
			var l unix.Rlimit
			unix.Getrlimit(res, &l)
			rep[name] = [2]uint64{l.Cur, l.Max}
		}
		var files []*os.File
		for {
			f, err := os.Open(os.DevNull)
			if err != nil {
				break
			}
			files = append(files, f)
		}
		for _, f := range files {
			f.Close()
		}
		rep["opened"] = [2]uint64{uint64(len(files))}
		return proc.SendJSON(c, rep)
	},
	// hog allocates until it dies; it holds what it allocated.
	"hog": func(ctx context.Context, c *proc.Conn) error {
		c.Send([]byte("ready"))
		var keep [][]byte
		for range 1024 {
			keep = append(keep, make([]byte, 64<<20))
		}
		runtime.KeepAlive(keep)
		return errors.New("hog: allocated 64 GiB without dying")
	},
	// spin burns CPU until killed.
	"spin": func(ctx context.Context, c *proc.Conn) error {
		c.Send([]byte("ready"))
		for x := 0; ; x++ {
			if x == -1 {
				return nil
			}
		}
	},
	// halfframe writes the header and part of a frame straight to its end
	// of the socketpair (fd 3), then SIGKILLs itself mid-message.
	"halfframe": func(ctx context.Context, c *proc.Conn) error {
		c.Send([]byte("ready"))
		b := []byte{0, 0, 0x10, 0, 'p', 'a', 'r', 't'} // announces 4096 bytes, sends 4
		syscall.Write(3, b)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	},
	// groupleader starts a grandchild in its own process group with os/exec
	// (no proc: no Pdeathsig, no group of its own), reports its pid, waits.
	"groupleader": func(ctx context.Context, c *proc.Conn) error {
		cmd := exec.Command("/bin/sleep", "1000")
		if err := cmd.Start(); err != nil {
			return err
		}
		c.Send([]byte(strconv.Itoa(cmd.Process.Pid)))
		<-ctx.Done()
		return nil
	},
	// spawner starts a grandchild with proc (a plain /bin/sleep: no Conn,
	// so no EOF to notice), reports its pid and waits to be killed.
	"spawner": func(ctx context.Context, c *proc.Conn) error {
		p, err := proc.Start(context.Background(), proc.Spec{Path: "/bin/sleep", Args: []string{"1000"}})
		if err != nil {
			return err
		}
		c.Send([]byte(strconv.Itoa(p.PID())))
		select {}
	},
	// middle starts a child running groupleader, reports that child's pid
	// and its grandchild's, and waits to be killed.
	"middle": func(ctx context.Context, c *proc.Conn) error {
		p, err := proc.Start(context.Background(), proc.Spec{Entry: "groupleader"})
		if err != nil {
			return err
		}
		gpid, err := p.Conn().Recv()
		if err != nil {
			return err
		}
		c.Send([]byte(fmt.Sprintf("%d %s", p.PID(), gpid)))
		select {}
	},
	// limitedspawner starts a Path with limits (through the trampoline): a
	// Go program, this binary waiting for ever, which handles no signal
	// itself. It reports the Path's pid and waits to be killed.
	"limitedspawner": func(ctx context.Context, c *proc.Conn) error {
		p, err := proc.Start(context.Background(), proc.Spec{Path: os.Args[0], Env: []string{envSleep + "=1"}, Limits: proc.Limits{OpenFiles: 64}})
		if err != nil {
			return err
		}
		c.Send([]byte(strconv.Itoa(p.PID())))
		select {}
	},
	// stat reports proc.Self().
	"stat": func(ctx context.Context, c *proc.Conn) error {
		s, err := proc.Self()
		if err != nil {
			return err
		}
		if err := proc.SendJSON(c, s); err != nil {
			return err
		}
		_, err = c.Recv() // stay alive until the parent has looked
		if err == io.EOF {
			return nil
		}
		return err
	},
}

// slowStop is how long the slowstop entry takes to finish.
const slowStop = 2500 * time.Millisecond

type envReport struct {
	Env  []string
	Args []string
	Dir  string
}

// Environment variables that make the test binary a baseline child for the
// benchmarks, without proc: see bench_test.go.
const (
	envExecChild = "PROC_TEST_EXEC_CHILD"
	envRawEcho   = "PROC_TEST_RAW_ECHO"
)

// envDieEarly makes the test binary write the variable's value to its
// standard error and exit with status 7 before proc.Main: a child whose
// runtime fails before its handshake.
const envDieEarly = "PROC_TEST_DIE_EARLY"

// envSleep makes the test binary wait for ever.
const envSleep = "PROC_TEST_SLEEP"

// envStartProcs makes the test binary a parent that starts the entry "exit0"
// with Limits.Procs set to the variable's value, prints Start's and Wait's
// errors and exits: TestLimitsProcs runs it as a user other than root.
const envStartProcs = "PROC_TEST_START_PROCS"

func startProcs(limit string) {
	n, _ := strconv.ParseUint(limit, 10, 64)
	if limit == "hard" { // as high as this user may set it
		var l unix.Rlimit
		unix.Getrlimit(unix.RLIMIT_NPROC, &l)
		n = l.Max
	}
	p, err := proc.Start(context.Background(), proc.Spec{Entry: "exit0", Limits: proc.Limits{Procs: n}})
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	_, err = p.Wait()
	fmt.Println("wait:", err)
}

func TestMain(m *testing.M) {
	if msg := os.Getenv(envDieEarly); msg != "" {
		os.Stderr.WriteString(msg)
		os.Exit(7)
	}
	if os.Getenv(envExecChild) != "" {
		os.Stdout.Write([]byte{'x'})
		os.Exit(0)
	}
	if n := os.Getenv(envRawEcho); n != "" {
		size, _ := strconv.Atoi(n)
		rawEcho(3, size)
		os.Exit(0)
	}
	for name, fn := range entries {
		proc.Register(name, fn)
	}
	proc.Main()
	if os.Getenv(envSleep) != "" {
		for {
			time.Sleep(time.Hour)
		}
	}
	if n := os.Getenv(envStartProcs); n != "" {
		startProcs(n)
		os.Exit(0)
	}
	// A race-enabled binary sleeps a second in os.Exit (GORACE
	// atexit_sleep_ms); the children are this binary, and are many.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	goleak.VerifyTestMain(m)
}

// rawEcho echoes fixed-size messages with blocking read(2) and write(2): the
// floor a Conn is compared against.
func rawEcho(fd, size int) {
	buf := make([]byte, size)
	for {
		if !rawFull(fd, buf, syscall.Read) || !rawFull(fd, buf, syscall.Write) {
			return
		}
	}
}

func rawFull(fd int, b []byte, op func(int, []byte) (int, error)) bool {
	for len(b) > 0 {
		n, err := op(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return false
		}
		b = b[n:]
	}
	return true
}

// start starts spec and fails the test if it cannot; the process is killed
// and waited for at the end of the test.
func start(t testing.TB, spec proc.Spec) *proc.Process {
	t.Helper()
	p, err := proc.Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("Start(%+v): %v", spec, err)
	}
	t.Cleanup(func() {
		p.Kill()
		p.Wait()
	})
	return p
}

// recvString receives one message and fails the test on error.
func recvString(t testing.TB, c *proc.Conn) string {
	t.Helper()
	m, err := c.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return string(m)
}

func signalOf(err error) syscall.Signal {
	var ee *proc.ExitError
	if errors.As(err, &ee) {
		return ee.Signal()
	}
	return 0
}
