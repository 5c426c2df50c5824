package procfs_test

import (
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/weavert/weave/internal/procfs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseStatus(t *testing.T) {
	in := "Name:\tweave worker\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t42\nPPid:\t7\n" +
		"Uid:\t1000\t0\t0\t0\nVmSize:\t 1560260 kB\nVmData:\t  107072 kB\n" +
		"VmRSS:\t    2048 kB\nThreads:\t5\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n"
	got, err := procfs.ParseStatus([]byte(in))
	want := procfs.Status{Name: "weave worker", State: 'S', PPID: 7, UID: 1000, Threads: 5, RSS: 2 << 20,
		Data: 107072 << 10, Size: 1560260 << 10, Voluntary: 12, Involuntary: 3}
	if err != nil || got != want {
		t.Fatalf("ParseStatus = %+v, %v; want %+v", got, err, want)
	}
	if _, err := procfs.ParseStatus([]byte("Threads:\tmany\n")); err == nil {
		t.Fatal("ParseStatus accepted a bad number")
	}
}

func TestParseStat(t *testing.T) {
	// A command name may hold spaces and parentheses.
	in := "1234 (a) b (c) Z 99 1234 1 0 -1 4194304 102 0 0 0 0 0 0 0 20 0 1 0 244310 3133440 394 0\n"
	got, err := procfs.ParseStat([]byte(in))
	if want := (procfs.Stat{State: 'Z', PPID: 99, Flags: 4194304, StartTime: 244310}); err != nil || got != want {
		t.Fatalf("ParseStat = %+v, %v; want %+v", got, err, want)
	}
	if !got.Ending() || (procfs.Stat{State: 'S', Flags: 4194304}).Ending() || !(procfs.Stat{State: 'S', Flags: 4194308}).Ending() {
		t.Fatal("Ending does not read the state and PF_EXITING")
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2"} {
		if _, err := procfs.ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q) succeeded", bad)
		}
	}
}

func TestSelf(t *testing.T) {
	s, err := procfs.ReadStatus("/proc/self/status")
	if err != nil || s.PPID != os.Getppid() || s.Threads < 1 || s.RSS <= 0 {
		t.Fatalf("ReadStatus(self) = %+v, %v", s, err)
	}
	tids, err := procfs.Tasks(os.Getpid())
	if err != nil || len(tids) == 0 {
		t.Fatalf("Tasks = %v, %v", tids, err)
	}
	st, err := procfs.ReadStat(os.Getpid())
	if err != nil || st.PPID != os.Getppid() || st.State == 0 {
		t.Fatalf("ReadStat(self) = %+v, %v", st, err)
	}
	if st.Ending() {
		t.Fatalf("ReadStat(self) says this process is ending: %+v", st)
	}
	if n, err := procfs.UserTasks(os.Getuid()); err != nil || n < s.Threads {
		t.Fatalf("UserTasks = %d, %v; this process alone has %d threads", n, err, s.Threads)
	}
	if s.UID != os.Getuid() || s.Data <= 0 || s.Size < s.Data {
		t.Fatalf("ReadStatus(self) = %+v", s)
	}
	if n, err := procfs.CountFDs(); err != nil || n < 3 {
		t.Fatalf("CountFDs = %d, %v", n, err)
	}
}

// CgroupV2 agrees with the mount table: /sys/fs/cgroup is cgroup2 or not.
func TestCgroupV2(t *testing.T) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Skip(err)
	}
	v2 := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "/sys/fs/cgroup" {
			v2 = f[2] == "cgroup2"
		}
	}
	if got := procfs.CgroupV2(); got != v2 {
		t.Fatalf("CgroupV2() = %v, mount table says %v", got, v2)
	}
	t.Logf("cgroup v2: %v", v2)
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"))
	f.Fuzz(func(t *testing.T, b []byte) {
		procfs.ParseStat(b)
		procfs.ParseStatus(b)
	})
}
