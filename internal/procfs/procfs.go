// Package procfs reads the few /proc and /sys files that weave needs: a
// process's threads, resident memory and context switches, its parent and
// state, and which cgroup version the machine runs.
//
// It is machinery for package proc and the tools around it; users read these
// numbers through proc.Stat and proc.Self. Every function reads the files
// fresh: nothing is cached, so two calls may disagree about a process that is
// changing.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Status is what /proc/PID/status (or /proc/PID/task/TID/status) says about
// one process or thread.
type Status struct {
	Name        string // the command name, at most 15 bytes
	State       byte   // R, S, D, T, t, Z, X, I …
	PPID        int
	UID         int    // the real user ID
	Threads     int    // for a process: its number of threads
	RSS         int64  // resident set size in bytes (process-wide)
	Data        int64  // VmData: private writable memory in bytes, as RLIMIT_DATA counts it
	Size        int64  // VmSize: all mapped memory in bytes, as RLIMIT_AS counts it
	Voluntary   uint64 // voluntary context switches of this task only
	Involuntary uint64 // involuntary context switches of this task only
}

// ReadStatus parses the status file at path, such as "/proc/self/status".
func ReadStatus(path string) (Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Status{}, err
	}
	return ParseStatus(b)
}

// ParseStatus parses the contents of a /proc status file. Unknown lines are
// ignored; a line it needs that does not parse is an error.
func ParseStatus(b []byte) (Status, error) {
	var s Status
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		key, val, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		v := strings.TrimSpace(string(val))
		var err error
		switch string(key) {
		case "Name":
			s.Name = v
		case "State":
			if v == "" {
				return s, fmt.Errorf("procfs: empty State line")
			}
			s.State = v[0]
		case "PPid":
			s.PPID, err = strconv.Atoi(v)
		case "Threads":
			s.Threads, err = strconv.Atoi(v)
		case "Uid":
			real, _, _ := strings.Cut(v, "\t")
			s.UID, err = strconv.Atoi(real)
		case "VmRSS":
			s.RSS, err = kiB(v)
		case "VmData":
			s.Data, err = kiB(v)
		case "VmSize":
			s.Size, err = kiB(v)
		case "voluntary_ctxt_switches":
			s.Voluntary, err = strconv.ParseUint(v, 10, 64)
		case "nonvoluntary_ctxt_switches":
			s.Involuntary, err = strconv.ParseUint(v, 10, 64)
		}
		if err != nil {
			return s, fmt.Errorf("procfs: status line %q: %w", line, err)
		}
	}
	return s, nil
}

// kiB parses a status value such as "2048 kB" into bytes.
func kiB(v string) (int64, error) {
	kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	return kb << 10, err
}

// Tasks returns the thread IDs of process pid, in the order the kernel lists
// them (the main thread, whose TID is pid, first).
func Tasks(pid int) ([]int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(names))
	for _, n := range names {
		tid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		tids = append(tids, tid)
	}
	return tids, nil
}

// WaitChannel returns where in the kernel thread tid of process pid sleeps,
// from /proc/PID/task/TID/wchan: the name of a kernel function, such as
// do_epoll_wait or futex_do_wait (names vary with the kernel's version).
// It returns "" for a thread that is running or runnable, and where the
// kernel does not say (it writes "0").
func WaitChannel(pid, tid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/wchan")
	if err != nil {
		return "", err
	}
	if w := strings.TrimSpace(string(b)); w != "0" {
		return w, nil
	}
	return "", nil
}

// Stat is the part of /proc/PID/stat that identifies a process over time,
// and tells whether it is ending.
type Stat struct {
	State     byte
	PPID      int
	Flags     uint64 // the kernel's flags of its main thread (see PFExiting)
	StartTime uint64 // clock ticks after boot; with the pid it names one process forever
}

// PFExiting is set in the Flags of a process whose main thread has entered
// exit(2) and will not run user code again.
const PFExiting = 0x4

// Ending reports whether the process is exiting or has exited: its main
// thread is exiting, or it is a zombie.
func (s Stat) Ending() bool { return s.Flags&PFExiting != 0 || s.State == 'Z' || s.State == 'X' }

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(b)
}

// ParseStat parses the contents of a /proc/PID/stat file. The command name
// in parentheses may itself contain spaces and parentheses, so fields are
// counted from the last ')'.
func ParseStat(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, errors.New("procfs: stat: no ')'")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[6] field 9 (flags),
	// f[19] field 22 (starttime).
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, errors.New("procfs: stat: too few fields")
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, fmt.Errorf("procfs: stat ppid: %w", err)
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("procfs: stat flags: %w", err)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("procfs: stat starttime: %w", err)
	}
	return Stat{State: f[0][0], PPID: ppid, Flags: flags, StartTime: st}, nil
}

// Children returns the pids of the processes whose parent is ppid, with their
// states. It scans /proc, so it is slow (a millisecond or so): for tests and
// tools, not hot paths.
func Children(ppid int) (map[int]byte, error) {
	kids := map[int]byte{}
	err := eachPID(func(pid int) {
		st, err := ReadStat(pid)
		if err == nil && st.PPID == ppid { // an error: gone meanwhile
			kids[pid] = st.State
		}
	})
	return kids, err
}

// UserTasks returns the number of tasks (threads) whose real user ID is uid:
// the count that RLIMIT_NPROC limits. It scans /proc, so it is slow (a
// millisecond or so).
func UserTasks(uid int) (int, error) {
	n := 0
	err := eachPID(func(pid int) {
		s, err := ReadStatus("/proc/" + strconv.Itoa(pid) + "/status")
		if err == nil && s.UID == uid { // an error: gone meanwhile
			n += s.Threads
		}
	})
	return n, err
}

// eachPID calls f with the pid of every process that /proc lists.
func eachPID(f func(pid int)) error {
	dir, err := os.Open("/proc")
	if err != nil {
		return err
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil {
			f(pid)
		}
	}
	return nil
}

// CountFDs returns the number of open file descriptors of this process (the
// entries of /proc/self/fd, less the one used to list them).
func CountFDs() (int, error) {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0, err
	}
	return len(names) - 1, nil
}

// cgroup2Magic is CGROUP2_SUPER_MAGIC from linux/magic.h.
const cgroup2Magic = 0x63677270

// CgroupV2 reports whether /sys/fs/cgroup is a cgroup v2 (unified) hierarchy.
// Hybrid machines, with v1 controllers at /sys/fs/cgroup/<controller> and an
// empty v2 tree at /sys/fs/cgroup/unified, report false: their memory and pids
// controllers are v1 ones.
func CgroupV2() bool {
	var fs unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &fs); err != nil {
		return false
	}
	return fs.Type == cgroup2Magic
}
