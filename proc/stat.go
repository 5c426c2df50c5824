package proc

import (
	"os"
	"strconv"

	"github.com/weavert/weave/internal/procfs"
)

// Stat is a snapshot of a process from /proc: its threads, where those that
// sleep wait in the kernel, resident memory and context switches.
type Stat struct {
	PID     int
	Threads []Thread // the live threads, main thread first
	RSS     int64    // resident set size in bytes
	// Voluntary and Involuntary are the context switches of the live
	// threads, summed: a switch is voluntary when the thread blocked (a
	// read, a futex wait, a sleep) and involuntary when the kernel preempted
	// it. Threads that have exited no longer count.
	Voluntary, Involuntary uint64
}

// Thread is one thread of a process.
type Thread struct {
	TID                    int
	Name                   string // the thread's comm, at most 15 bytes
	State                  byte   // R running, S sleeping, D disk wait, Z zombie, …
	Voluntary, Involuntary uint64
	// WaitChannel is where in the kernel a thread that is not running
	// sleeps (its wchan): do_epoll_wait in epoll_wait(2), futex_do_wait on
	// a futex, as Go parks a thread with nothing to run; names vary with
	// the kernel's version. Empty for a running thread, and where the
	// kernel does not say.
	WaitChannel string
}

// Self returns the Stat of the calling process.
func Self() (Stat, error) { return readStat(os.Getpid()) }

// Stat returns the child's Stat. After the child has exited it returns
// os.ErrProcessDone.
func (p *Process) Stat() (Stat, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Holding mu keeps reap from marking the child exited and reaping it
	// meanwhile, so the pid cannot name another process while we read.
	if p.exited {
		return Stat{}, os.ErrProcessDone
	}
	return readStat(p.pid)
}

func readStat(pid int) (Stat, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	ps, err := procfs.ReadStatus(dir + "/status")
	if err != nil {
		return Stat{}, err
	}
	tids, err := procfs.Tasks(pid)
	if err != nil {
		return Stat{}, err
	}
	s := Stat{PID: pid, RSS: ps.RSS, Threads: make([]Thread, 0, len(tids))}
	for _, tid := range tids {
		ts, err := procfs.ReadStatus(dir + "/task/" + strconv.Itoa(tid) + "/status")
		if err != nil {
			continue // the thread exited while we listed the others
		}
		th := Thread{
			TID: tid, Name: ts.Name, State: ts.State,
			Voluntary: ts.Voluntary, Involuntary: ts.Involuntary,
		}
		if ts.State != 'R' {
			th.WaitChannel, _ = procfs.WaitChannel(pid, tid)
		}
		s.Threads = append(s.Threads, th)
		s.Voluntary += ts.Voluntary
		s.Involuntary += ts.Involuntary
	}
	return s, nil
}
