package poll

import (
	"errors"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func open(t *testing.T) *Poller {
	t.Helper()
	p, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func pipe(t *testing.T) (r, w int) {
	t.Helper()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// Readiness comes back with the token it was registered with, once per
// edge.
func TestReadiness(t *testing.T) {
	p := open(t)
	raw := make([]unix.EpollEvent, 8)
	r, w := pipe(t)
	const token = 7 | 3<<32
	if err := p.Add(r, token); err != nil {
		t.Fatal(err)
	}
	evs, woken, err := p.Wait(nil, raw, 0)
	if err != nil || woken || len(evs) != 0 {
		t.Fatalf("an empty pipe: %v, woken %v, %v", evs, woken, err)
	}
	unix.Write(w, []byte("x"))
	evs, _, err = p.Wait(nil, raw, -1)
	if err != nil || len(evs) != 1 || evs[0].Token != token || !evs[0].Read || evs[0].End {
		t.Fatalf("after a write: %+v, %v", evs, err)
	}
	// Edge-triggered: no new edge, no event, though the byte is unread.
	if evs, _, _ = p.Wait(nil, raw, 0); len(evs) != 0 {
		t.Fatalf("the same edge again: %+v", evs)
	}
	unix.Close(w)
	evs, _, _ = p.Wait(nil, raw, -1)
	if len(evs) != 1 || !evs[0].Read || !evs[0].Hup || !evs[0].End {
		t.Fatalf("after the writer closed: %+v", evs)
	}
	if err := p.Del(r); err != nil {
		t.Fatal(err)
	}
}

// A Wake ends a blocking Wait, from another goroutine or before it began;
// a Wait that does not block leaves it for the one that does.
func TestWake(t *testing.T) {
	p := open(t)
	raw := make([]unix.EpollEvent, 8)
	done := make(chan bool)
	go func() {
		_, woken, _ := p.Wait(nil, raw, -1)
		done <- woken
	}()
	p.Wake()
	if !<-done {
		t.Fatal("a Wake did not end the Wait")
	}
	p.Wake()
	p.Wake() // coalesced with the first
	if _, woken, _ := p.Wait(nil, make([]unix.EpollEvent, 8), 0); woken {
		t.Fatal("a Wait that does not block took the Wake")
	}
	if _, woken, _ := p.Wait(nil, raw, -1); !woken {
		t.Fatal("the pending Wake did not end the Wait")
	}
	if _, woken, _ := p.Wait(nil, raw, time.Millisecond); woken {
		t.Fatal("two Wakes before a Wait ended two Waits")
	}
}

// epoll refuses regular files.
func TestRegularFile(t *testing.T) {
	p := open(t)
	f, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := p.Add(int(f.Fd()), 1); !errors.Is(err, unix.EPERM) {
		t.Fatalf("Add of a regular file: %v, want EPERM", err)
	}
}
