package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/weavert/weave/proc"
)

// Rows of the process layer. The children are this binary, re-executed into
// the entry points registered here: a program that runs `weave bench` must
// call proc.Main first in main (cmd/weave does).
//
// process/switch is thread/switch across two processes: the futex word lives
// in a shared memory file that both map, and the calls use the shared (not
// process-private) futex operations, so each switch also changes address
// space.

const (
	entryEmpty = "weave/bench/empty" // returns at once
	entryIdle  = "weave/bench/idle"  // waits for its parent to hang up
	entryPing  = "weave/bench/ping"  // the child end of process/switch
)

func init() {
	proc.Register(entryEmpty, func(context.Context, *proc.Conn) error { return nil })
	proc.Register(entryIdle, func(_ context.Context, c *proc.Conn) error {
		_, err := c.Recv()
		if err == io.EOF {
			return nil
		}
		return err
	})
	proc.Register(entryPing, pingChild)

	register(probe{name: "process/switch", layer: "process", unit: "ns", count: 100_000, quick: 5_000,
		setup: processSwitch})
	register(probe{name: "process/create", layer: "process", unit: "ns", count: 100, quick: 5,
		setup: timed(1, processCreate)})
	register(probe{name: "process/memory", layer: "process", unit: "B", count: 1, quick: 1,
		setup: processMemory})
}

// mapShared maps the first page of the file at path, shared.
func mapShared(path string) (mem []byte, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return unix.Mmap(int(f.Fd()), 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

// pingReport is what the child end of process/switch sends after each try.
type pingReport struct {
	Voluntary, Involuntary int64
	Err                    string
}

// pingChild is the child end of process/switch: for each count it receives,
// it runs that many round trips and reports its context switches.
func pingChild(_ context.Context, c *proc.Conn) error {
	if len(os.Args) < 2 {
		return errors.New("usage: ping SHARED-FILE")
	}
	mem, err := mapShared(os.Args[1])
	if err != nil {
		return err
	}
	defer unix.Munmap(mem)
	turn := (*uint32)(unsafe.Pointer(&mem[0]))
	for {
		n, err := proc.RecvJSON[int](c)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		sw, err := pingEnd(turn, n, 1, 0, false)
		rep := pingReport{Voluntary: sw.voluntary, Involuntary: sw.involuntary}
		if err != nil {
			rep.Err = err.Error()
		}
		if err := proc.SendJSON(c, rep); err != nil {
			return err
		}
	}
}

// processSwitch starts the child end once per row; each try runs n round
// trips between this process's thread and the child's.
func processSwitch(n int) (func() (float64, error), func() string, error) {
	f, err := os.CreateTemp(sharedDir(), "weave-bench-*")
	if err != nil {
		return nil, nil, err
	}
	path := f.Name()
	err = f.Truncate(int64(os.Getpagesize()))
	f.Close()
	if err != nil {
		os.Remove(path)
		return nil, nil, err
	}
	mem, err := mapShared(path)
	if err != nil {
		os.Remove(path)
		return nil, nil, err
	}
	p, err := proc.Start(context.Background(), proc.Spec{Entry: entryPing, Args: []string{path}})
	if err != nil {
		unix.Munmap(mem)
		os.Remove(path)
		return nil, nil, err
	}
	turn := (*uint32)(unsafe.Pointer(&mem[0]))
	var trips int64
	var total switches
	try := func() (float64, error) {
		if err := proc.SendJSON(p.Conn(), n); err != nil {
			return 0, fmt.Errorf("starting a try in the child: %w", err)
		}
		var mine switches
		ns, err := perOp(n, 2, func(n int) (err error) {
			mine, err = pingEnd(turn, n, 0, 1, false)
			return err
		})
		if err != nil {
			return 0, err
		}
		rep, err := proc.RecvJSON[pingReport](p.Conn())
		if err != nil {
			return 0, fmt.Errorf("the child's report: %w", err)
		}
		if rep.Err != "" {
			return 0, fmt.Errorf("in the child: %s", rep.Err)
		}
		total = total.plus(mine).plus(switches{rep.Voluntary, rep.Involuntary})
		trips += int64(n)
		return ns, nil
	}
	done := func() string {
		p.Conn().Close() // the child's Recv sees EOF and it returns
		p.Wait()
		unix.Munmap(mem)
		os.Remove(path)
		return switchNote(total, trips)
	}
	return try, done, nil
}

// sharedDir is where the shared page lives: memory-backed /dev/shm if the
// machine has it.
func sharedDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// processCreate starts the re-executed binary into an empty entry and waits
// for it to end: fork, exec, the Go runtime's start-up, the handshake, exit
// and reaping.
func processCreate(n int) error {
	for range n {
		p, err := proc.Start(context.Background(), proc.Spec{Entry: entryEmpty})
		if err != nil {
			return err
		}
		if _, err := p.Wait(); err != nil {
			return err
		}
	}
	return nil
}

// processMemory reads the resident memory of a minimal child: the
// re-executed binary waiting in its entry.
func processMemory(int) (func() (float64, error), func() string, error) {
	try := func() (float64, error) {
		p, err := proc.Start(context.Background(), proc.Spec{Entry: entryIdle})
		if err != nil {
			return 0, err
		}
		st, err := p.Stat()
		p.Conn().Close()
		if _, werr := p.Wait(); err == nil {
			err = werr
		}
		return float64(st.RSS), err
	}
	return try, func() string { return "resident memory of a child: this binary, waiting in an entry point" }, nil
}
