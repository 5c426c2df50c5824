package proc

import (
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weavert/weave/internal/procfs"
)

// Limits are resource limits for a child, applied as rlimits (setrlimit(2),
// soft and hard limit alike) before its Entry runs or its Path is executed.
// A zero field leaves that limit as the child inherits it. Lowering a hard
// limit cannot be undone by the child.
//
// A limit under which the child could not run is refused: Start returns an
// error wrapping ErrLimit that says which limit and why, rather than a child
// that crashes at random. Each field says what it must leave room for.
//
// Limits are rlimits rather than cgroups because rlimits work on every Linux
// machine and need no privileges; cgroup v2 is not used (see the package doc).
type Limits struct {
	// OpenFiles is RLIMIT_NOFILE: one more than the highest file
	// descriptor the child can open. At least 16 for an Entry: a child uses
	// descriptors 0 to 10 or so before its entry opens any (the standard
	// three, its connection and that connection's wake-ups, Go's poller and
	// the files the runtime reads its CPU quota from, the hangup watcher),
	// under 9 it crashed at random, and its entry needs a few of its own. At
	// least 4 for a Path: its standard three and one to open anything at all.
	OpenFiles uint64 `json:"nofile,omitempty"`
	// Data is RLIMIT_DATA in bytes: the child's private writable memory
	// (heap, Go's arenas, thread stacks). A Go child that exceeds it dies of
	// "fatal error: out of memory" (status 2). It includes what the child's
	// runtime has already mapped when the limit is applied (its VmData:
	// 40 to 110 MiB for a Go binary, over 400 MiB when built with -race).
	// An Entry child refuses a Data that leaves less than 16 MiB above
	// that, room for two more threads' stacks: below it, its next thread or
	// heap growth fails. For a Path, what the program needs is its own
	// business.
	Data uint64 `json:"data,omitempty"`
	// AddressSpace is RLIMIT_AS in bytes: all mapped memory, including
	// reservations never touched; a Go binary maps over 1.5 GiB at start, so
	// prefer Data to limit memory. An Entry child refuses an AddressSpace
	// that leaves less than 256 MiB above what it has mapped (its VmSize):
	// Go reserves address space for its heap 64 MiB at a time.
	AddressSpace uint64 `json:"as,omitempty"`
	// CPU is RLIMIT_CPU, rounded up to whole seconds: when the child has
	// used that much CPU time the kernel kills it with SIGKILL. A negative
	// CPU is refused.
	CPU time.Duration `json:"cpu,omitempty"`
	// Procs is RLIMIT_NPROC: the number of processes and threads the
	// child's user may have. The kernel counts every task of that user, not
	// just the child's, and does not apply it to root (CAP_SYS_RESOURCE).
	// An Entry child of another user refuses a Procs that leaves it fewer
	// than 16 threads above what its user already runs: a Go program
	// starts threads as it goes, and dies when it cannot.
	Procs uint64 `json:"nproc,omitempty"`
}

// The least room a child needs, beyond what it already uses when Main applies
// its limits; see Limits for why.
const (
	minEntryOpenFiles = 16
	minPathOpenFiles  = 4
	dataRoom          = 16 << 20
	addressRoom       = 256 << 20
	procsRoom         = 16
)

// validate refuses, in the parent, the limits that no child can run under.
func (l Limits) validate(entry bool) error {
	least, what := uint64(minEntryOpenFiles), "a child runs with: it uses 0 to 9 or so before its entry opens any"
	if !entry {
		least, what = minPathOpenFiles, "a program runs with: its standard input, output and error, and one to open anything"
	}
	if l.OpenFiles != 0 && l.OpenFiles < least {
		return fmt.Errorf("%w: Limits.OpenFiles %d is below %d, the least %s", ErrLimit, l.OpenFiles, least, what)
	}
	if l.CPU < 0 {
		return fmt.Errorf("%w: Limits.CPU %v is negative", ErrLimit, l.CPU)
	}
	return nil
}

// checkRoom refuses, in an Entry child before the limits are applied, the
// memory and process limits it could not run under, given what it already
// uses.
func (l Limits) checkRoom() error {
	if l.Data == 0 && l.AddressSpace == 0 && (l.Procs == 0 || os.Getuid() == 0) {
		return nil
	}
	s, err := procfs.ReadStatus("/proc/self/status")
	if err != nil {
		return fmt.Errorf("proc: reading what the child uses: %w", err)
	}
	if l.Data != 0 && l.Data < uint64(s.Data)+dataRoom {
		return fmt.Errorf("%w: Limits.Data %s is below %s: the child has %s of private memory mapped already (VmData) and needs %s more to start a thread or grow its heap",
			ErrLimit, mib(l.Data), mib(uint64(s.Data)+dataRoom), mib(uint64(s.Data)), mib(dataRoom))
	}
	if l.AddressSpace != 0 && l.AddressSpace < uint64(s.Size)+addressRoom {
		return fmt.Errorf("%w: Limits.AddressSpace %s is below %s: the child has %s mapped already (VmSize) and needs %s more, as Go reserves its heap 64 MiB at a time",
			ErrLimit, mib(l.AddressSpace), mib(uint64(s.Size)+addressRoom), mib(uint64(s.Size)), mib(addressRoom))
	}
	if l.Procs != 0 && os.Getuid() != 0 {
		n, err := procfs.UserTasks(os.Getuid())
		if err != nil {
			return fmt.Errorf("proc: counting the user's tasks: %w", err)
		}
		if l.Procs < uint64(n)+procsRoom {
			return fmt.Errorf("%w: Limits.Procs %d is below %d: user %d runs %d processes and threads already, and the child needs room for %d more threads",
				ErrLimit, l.Procs, n+procsRoom, os.Getuid(), n, procsRoom)
		}
	}
	return nil
}

// mib formats a number of bytes in MiB.
func mib(b uint64) string {
	if b%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", b>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func (l Limits) apply() error {
	set := func(name string, res int, v uint64) error {
		if v == 0 {
			return nil
		}
		// syscall.Setrlimit (which unix.Setrlimit calls) also keeps Go's
		// os/exec from restoring an older RLIMIT_NOFILE in grandchildren.
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: v, Max: v}); err != nil {
			return fmt.Errorf("proc: setrlimit %s=%d: %w", name, v, err)
		}
		return nil
	}
	cpu := uint64(0)
	if l.CPU > 0 {
		cpu = uint64(math.Ceil(l.CPU.Seconds()))
	}
	return errors.Join(
		set("RLIMIT_NOFILE", unix.RLIMIT_NOFILE, l.OpenFiles),
		set("RLIMIT_DATA", unix.RLIMIT_DATA, l.Data),
		set("RLIMIT_AS", unix.RLIMIT_AS, l.AddressSpace),
		set("RLIMIT_CPU", unix.RLIMIT_CPU, cpu),
		set("RLIMIT_NPROC", unix.RLIMIT_NPROC, l.Procs),
	)
}

func (l Limits) isZero() bool { return l == Limits{} }
