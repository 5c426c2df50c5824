package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/weavert/weave/internal/servertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// server runs serve with cfg on a loopback port of this process.
func server(t *testing.T, cfg config) *servertest.Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	return servertest.Start(t, func(ctx context.Context, ready func(net.Addr)) error {
		return serve(ctx, cfg, ready)
	})
}

// user is a client of the chat server, as a test sees it.
type user struct {
	t    *testing.T
	name string
	c    *net.TCPConn
	r    *bufio.Reader
}

// dial connects to addr and says name.
func dial(t *testing.T, addr, name string) *user {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	u := &user{t: t, name: name, c: c.(*net.TCPConn), r: bufio.NewReader(c)}
	u.say(name)
	return u
}

// enter connects as name and checks the welcome, which lists here.
func enter(t *testing.T, addr, name, here string) *user {
	t.Helper()
	u := dial(t, addr, name)
	u.expect("* welcome " + name + "; here: " + here)
	return u
}

// gather has the users of names join in turn, each welcomed with the names
// before it, and each told of those after it.
func gather(t *testing.T, addr string, names ...string) []*user {
	t.Helper()
	var users []*user
	for i, name := range names {
		here := "nobody else"
		if i > 0 {
			here = strings.Join(names[:i], ", ")
		}
		joining := enter(t, addr, name, here)
		for _, u := range users {
			u.expect("* " + name + " joined")
		}
		users = append(users, joining)
	}
	return users
}

func (u *user) say(line string) {
	u.t.Helper()
	if _, err := fmt.Fprintln(u.c, line); err != nil {
		u.t.Fatalf("%s says %q: %v", u.name, line, err)
	}
}

// read returns the next line the user gets.
func (u *user) read() (string, error) {
	line, err := u.r.ReadString('\n')
	if err != nil {
		return line, fmt.Errorf("%s: after %q: %w", u.name, line, err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}

func (u *user) expect(want string) {
	u.t.Helper()
	got, err := u.read()
	if err != nil || got != want {
		u.t.Fatalf("%s got %q (%v), want %q", u.name, got, err, want)
	}
}

// expectEnd checks that the server closed the user's connection.
func (u *user) expectEnd() {
	u.t.Helper()
	if line, err := u.r.ReadString('\n'); err != io.EOF {
		u.t.Fatalf("%s got %q (%v), want the end of the stream", u.name, line, err)
	}
}

// Clients join, talk at once, leave, and vanish: each hears the others'
// lines in the order each sent them, never its own, and hears who comes
// and goes; a client that disconnects abruptly is cleaned up; shutting
// down closes every connection and leaves no descriptor behind.
func TestChat(t *testing.T) {
	// A queue longer than all the lines of the test: no one falls behind
	// by that much, however the threads are scheduled.
	srv := server(t, config{Threads: 2, Queue: 1024})
	addr := srv.Addr

	users := gather(t, addr, "alice", "bob", "carol")
	alice, bob, carol := users[0], users[1], users[2]

	// Alice and Bob talk at once; everyone reads at once.
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for _, u := range []*user{alice, bob} {
		wg.Go(func() {
			for i := range n {
				if _, err := fmt.Fprintf(u.c, "line %d of %s\n", i, u.name); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	hear := func(u *user, from ...string) {
		next := map[string]int{}
		for range n * len(from) {
			line, err := u.read()
			if err != nil {
				errs <- err
				return
			}
			who, text, _ := strings.Cut(line, ": ")
			if want := fmt.Sprintf("line %d of %s", next[who], who); text != want || !slices.Contains(from, who) {
				errs <- fmt.Errorf("%s got %q, want %q from one of %v", u.name, line, want, from)
				return
			}
			next[who]++
		}
	}
	wg.Go(func() { hear(alice, "bob") })
	wg.Go(func() { hear(bob, "alice") })
	wg.Go(func() { hear(carol, "alice", "bob") })
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Bob leaves by closing his side: the others are told, and he reads
	// the end of his stream.
	bob.c.CloseWrite()
	alice.expect("* bob left")
	carol.expect("* bob left")
	bob.expectEnd()

	// Dave vanishes: a reset, with no goodbye.
	dave := enter(t, addr, "dave", "alice, carol")
	alice.expect("* dave joined")
	carol.expect("* dave joined")
	dave.c.SetLinger(0)
	dave.c.Close()
	alice.expect("* dave left")
	carol.expect("* dave left")
	// He is gone from the hub: his name is free, and he is not listed.
	dave = enter(t, addr, "dave", "alice, carol")
	alice.expect("* dave joined")
	carol.expect("* dave joined")

	// A name in use is refused.
	again := dial(t, addr, "alice")
	again.expect("* the name alice is taken")
	again.expectEnd()
	alice.say("still one alice")
	carol.expect("alice: still one alice")
	dave.expect("alice: still one alice")

	if err := srv.Stop(); !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("serve after the shutdown: %v, want context.Canceled alone", err)
	}
	for _, u := range []*user{alice, carol, dave} {
		u.expectEnd()
		u.c.Close()
	}
	bob.c.Close()
	again.c.Close()
	srv.CheckDescriptors(t)
}

// A client that stops reading is disconnected once its queue is full, and
// the others are told; they got every line, in order, meanwhile.
func TestSlowClient(t *testing.T) {
	srv := server(t, config{Threads: 2, Queue: 256})
	addr := srv.Addr
	users := gather(t, addr, "alice", "carol", "eve")
	alice, carol, eve := users[0], users[1], users[2]
	// Eve reads no more, into a small buffer: the server's writes to her
	// soon wait, and her queue fills.
	eve.c.SetReadBuffer(4096)

	// Alice sends as long as Carol keeps up, at most 64 lines ahead of
	// her: a reader slower than the chat falls behind as Eve does.
	long := strings.Repeat("x", 1000)
	credit := make(chan struct{}, 64)
	for range cap(credit) {
		credit <- struct{}{}
	}
	done := make(chan struct{})
	sent := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				sent <- nil
				return
			case <-credit:
			}
			if _, err := fmt.Fprintf(alice.c, "%d %s\n", i, long); err != nil {
				sent <- err
				return
			}
		}
	}()
	for i := 0; ; i++ {
		line, err := carol.read()
		if err != nil {
			t.Fatal(err)
		}
		if line == "* eve left (too slow)" {
			break
		}
		if want := fmt.Sprintf("alice: %d %s", i, long); line != want {
			t.Fatalf("carol got %.40q…, want %.40q…", line, want)
		}
		credit <- struct{}{}
	}
	close(done)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	// Eve's connection was reset: what the server still held for her is
	// dropped.
	if _, err := io.Copy(io.Discard, eve.r); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("eve's stream: %v, want a reset", err)
	}
	// Alice heard of it too, among nothing else.
	alice.expect("* eve left (too slow)")
	if err := srv.Stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("serve: %v", err)
	}
}
