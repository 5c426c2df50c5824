package simtest_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/sched/simtest"
)

// checksumChild is set in the environment of the test binary that
// TestChecksumAcrossProcesses starts again: there, the test prints the
// checksums instead of comparing them.
const checksumChild = "WEAVE_SIMTEST_CHECKSUM_CHILD"

// checksums runs the seeds of busy under Random and PCT(3), and returns a
// line per run: seed, strategy, steps, virtual time and checksum; then one
// for the first failure of a shard of an exploration.
func checksums(t *testing.T) string {
	var b strings.Builder
	for seed := range uint64(4) {
		for _, strat := range []simtest.Strategy{simtest.Random(), simtest.PCT(3).WithSteps(5000)} {
			s := sched.New(sched.Deterministic(strat.Chooser(seed)))
			if err := s.Run(busy); err != nil {
				t.Fatalf("seed %d %v: %v", seed, strat, err)
			}
			st := s.LastRun()
			fmt.Fprintf(&b, "checksum: seed %d %v: %d steps, +%v, %#016x\n", seed, strat, st.Steps, st.Virtual, st.Checksum)
		}
	}
	// And an exploration's first failure, as a shard would find it.
	f, _ := simtest.Explore(racy, simtest.PCT(2), simtest.Seeds(100), simtest.Shard(1, 2))
	if f == nil {
		t.Fatal("the lost update is not found")
	}
	fmt.Fprintf(&b, "checksum: failure at seed %d %v, step %d of %d, %#016x\n", f.Seed, f.Strategy, f.Step, f.Steps, f.Checksum)
	return b.String()
}

// A seed names the same run in every process, whatever its GOMAXPROCS: the
// test binary runs this test again, with GOMAXPROCS=1 and with -test.cpu=3,
// and the runs of each seed give the same checksums there as here. So the
// shards of an exploration may run anywhere.
func TestChecksumAcrossProcesses(t *testing.T) {
	if os.Getenv(checksumChild) != "" {
		fmt.Print(checksums(t))
		return
	}
	want := checksums(t)
	for _, child := range []struct {
		args []string
		env  string
	}{
		{nil, "GOMAXPROCS=1"},
		{[]string{"-test.cpu=3"}, "GOMAXPROCS=2"},
	} {
		args := append([]string{"-test.run=^TestChecksumAcrossProcesses$", "-test.count=1"}, child.args...)
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), checksumChild+"=1", child.env)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", child.env, child.args, err, out)
		}
		var got strings.Builder
		for _, line := range strings.SplitAfter(string(out), "\n") {
			if strings.HasPrefix(line, "checksum: ") {
				got.WriteString(line)
			}
		}
		if got.String() != want {
			t.Fatalf("with %s %v, the runs gave\n%s\nhere\n%s", child.env, child.args, got.String(), want)
		}
	}
}
