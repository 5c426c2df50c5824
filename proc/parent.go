package proc

import (
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/weavert/weave/internal/procfs"
)

// When the parent dies, a child dies with its process group.
//
// The parent's reaper kills what a child left in its group when the child
// exits; a parent that is SIGKILLed runs no reaper, so the child itself must
// kill its group when its parent dies, or a grandchild it started with plain
// os/exec (no Pdeathsig of its own) lives on. SIGKILL as the parent-death
// signal (prctl PR_SET_PDEATHSIG) cannot be caught, so a child that runs Main
// gets sigParentDeath instead and, on it, sends SIGKILL to its whole group,
// itself included. A program started by Spec.Path without limits runs no
// code of ours and keeps SIGKILL; one behind the limits trampoline gets
// SIGKILL back just before the exec.
//
// Rejected:
//   - SIGTERM, SIGHUP or SIGUSR1 as the parent-death signal: each has a
//     meaning that a program may rely on (SIGTERM is Stop's), and a child
//     must not take a reload request for its parent's death.
//   - Keeping SIGKILL and a helper process per child that outlives the
//     parent to kill the group: a process more per child, and it would need
//     a way of its own to learn of the parent's death.
//   - A controlling terminal per child, whose hangup signals the
//     foreground group: a pseudo-terminal per child, and a grandchild that
//     ignores SIGHUP survives it.
//
// The Go runtime drops a real-time signal that nobody asked for, so the one
// window is between exec and signal.Notify in Main: a parent that dies then
// is noticed by checking the parent right after Notify. The signal is checked
// the same way when it comes, so that a stray signal 63 from elsewhere, or the
// death of one thread of a parent that lives on (the kernel signals the death
// of the forking thread), kills nothing.
//
// Checking the parent means: the child's main thread has another parent now
// (/proc/self/stat, not getppid(2), which answers for the calling thread, and
// the kernel moves a dying parent's children one thread at a time), or the
// parent's own main thread is exiting (PF_EXITING in /proc/PID/stat). The
// second is needed because a dying multi-threaded parent hands its children
// to its other threads, one after the other, before init gets them, and
// signals each move: the child may look while it still has a parent.
//
// The child also checks its parent when its connection hangs up, and when it
// exits after a hangup. A dying parent's files are closed before its children
// move, so the hangup of a cooperative Entry comes first, and the child must
// not simply exit then: it would leave its group behind. And an Entry that
// resets all signals (signal.Reset()) still takes its group with it.
//
// The two reads of /proc cost tens of microseconds, so they are made only
// where the parent may be gone: right after Notify, getppid alone says
// whether the parent died before (the hangup watcher sees the rest), and at
// exit they follow a hangup only.

// sigParentDeath is the parent-death signal of a child that runs Main: the
// second highest real-time signal, which the Go runtime leaves to programs
// and which nothing else here uses.
const sigParentDeath = syscall.Signal(63)

// watchParent kills this child's group, and the child, when its parent (pid
// parent, the one that started it) dies.
func watchParent(parent int) {
	died := make(chan os.Signal, 1)
	signal.Notify(died, sigParentDeath)
	go func() {
		for range died {
			orphanedIf(parent)
		}
	}()
	// A parent that died before Notify, whose signal the runtime dropped,
	// has handed this thread on already, or is still at it: then the
	// hangup watcher, which looks at /proc, sees it. getppid alone saves two
	// reads of /proc in every child's start.
	if os.Getppid() != parent {
		orphaned()
	}
}

// orphanedIf calls orphaned if this child's parent is dead or dying.
func orphanedIf(parent int) {
	if parentGone(parent) {
		orphaned()
	}
}

// parentGone reports whether this child's parent, which had pid parent, has
// died or is dying. While the child's main thread still has it as parent,
// the parent has not been reaped, so its pid names it and /proc says whether
// it is exiting.
func parentGone(parent int) bool {
	self, err := procfs.ReadStat(os.Getpid())
	if err != nil {
		return os.Getppid() != parent
	}
	if self.PPID != parent {
		return true
	}
	st, err := procfs.ReadStat(parent)
	return err != nil || st.Ending()
}

// orphaned sends SIGKILL to this child's process group, whose leader it is,
// and to itself in case it left the group. It does not return.
func orphaned() {
	unix.Kill(-os.Getpid(), unix.SIGKILL)
	unix.Kill(os.Getpid(), unix.SIGKILL)
	select {}
}

// beforeExec gives the program that the limits trampoline is about to
// become SIGKILL as its parent-death signal, since it will not run Main.
// The setting belongs to the thread that calls prctl, and survives the exec
// only on the thread that execs, so both happen on this one.
func beforeExec(parent int) {
	runtime.LockOSThread()
	unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	orphanedIf(parent)
}
