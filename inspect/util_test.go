package inspect_test

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/weavert/weave/proc"
)

func itoa(n int) string { return strconv.Itoa(n) }

// connPair returns the two ends of a socketpair as Conns.
func connPair(t *testing.T) (*proc.Conn, *proc.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := proc.NewConn(os.NewFile(uintptr(fds[0]), "a"), 0)
	b := proc.NewConn(os.NewFile(uintptr(fds[1]), "b"), 0)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}
