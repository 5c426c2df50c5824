package bench

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weavert/weave/internal/procfs"
)

func TestPercentile(t *testing.T) {
	sorted := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for p, want := range map[int]float64{50: 5, 90: 9, 99: 10, 100: 10, 1: 1} {
		if got := percentile(sorted, p); got != want {
			t.Errorf("percentile(1..10, %d) = %v, want %v", p, got, want)
		}
	}
	if got := percentile([]int64{7}, 99); got != 7 {
		t.Errorf("percentile of one = %v", got)
	}
}

// The load generator and a server, as the rows run them: the server answers
// with its usage, the generator opens connections that the server serves,
// and echoes over them; requests it cannot do are errors that leave it
// running. Stopping them leaves no process behind.
func TestNetChildren(t *testing.T) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			load, err := startChild(entryLoad)
			if err != nil {
				t.Fatal(err)
			}
			defer stopChild(load)
			p, addr, err := startServer(s.entry)
			if err != nil {
				t.Fatal(err)
			}
			defer stopChild(p)

			before, err := callServer(p, usageReq{Settle: true})
			if err != nil || before.CPU <= 0 || before.RSS <= 0 {
				t.Fatalf("usage = %+v, %v", before, err)
			}
			if _, err := callLoad(load, loadReq{Op: "open", Name: s.name, Addr: addr, Conns: 20}); err != nil {
				t.Fatal(err)
			}
			rep, err := callLoad(load, loadReq{Op: "echo", Name: s.name, Warmup: time.Millisecond, Window: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Messages <= 0 || rep.Total < rep.Messages || rep.Seconds <= 0 || !(0 < rep.P50 && rep.P50 <= rep.P99) {
				t.Fatalf("echo = %+v", rep)
			}
			after, err := callServer(p, usageReq{})
			if err != nil || after.CPU <= before.CPU {
				t.Fatalf("the server's CPU time went from %v to %+v, %v", before.CPU, after, err)
			}

			for _, bad := range []struct {
				req  loadReq
				want string
			}{
				{loadReq{Op: "nope"}, "unknown request"},
				{loadReq{Op: "echo", Name: "nobody"}, "no connections"},
				{loadReq{Op: "open", Name: "x", Addr: closedAddr(t), Conns: 3}, "refused"},
			} {
				if _, err := callLoad(load, bad.req); err == nil || !strings.Contains(err.Error(), bad.want) {
					t.Errorf("%+v: %v, want an error with %q", bad.req, err, bad.want)
				}
			}
			if _, err := callLoad(load, loadReq{Op: "close", Name: s.name}); err != nil {
				t.Fatal(err)
			}
		})
	}
	noChildren(t)
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// noChildren fails t if a child process of the test is still there.
func noChildren(t *testing.T) {
	t.Helper()
	kids, err := procfs.Children(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) > 0 {
		t.Errorf("child processes left behind: %v", kids)
	}
}
