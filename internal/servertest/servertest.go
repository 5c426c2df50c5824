// Package servertest runs a server in a test's own process, as
// net/http/httptest does, and checks that it leaves no descriptor open: the
// examples' servers are tested with it.
package servertest

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/weavert/weave/internal/procfs"
)

// Server is a server started by Start.
type Server struct {
	// Addr is the address the server listens on.
	Addr string

	fds  int // open before it started
	once sync.Once
	stop context.CancelFunc
	done chan error
	err  error
}

// Start runs serve on a goroutine, with a context that Stop cancels, and
// returns once serve has called ready with the address it listens on. If
// serve returns first, the test fails. The test's cleanup stops the server.
func Start(t testing.TB, serve func(ctx context.Context, ready func(net.Addr)) error) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{fds: descriptors(t), stop: cancel, done: make(chan error, 1)}
	ready := make(chan net.Addr, 1)
	go func() { s.done <- serve(ctx, func(a net.Addr) { ready <- a }) }()
	select {
	case a := <-ready:
		s.Addr = a.String()
	case err := <-s.done:
		cancel()
		t.Fatalf("the server ended before it listened: %v", err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// Stop cancels the server's context, waits for serve to return and returns
// its error. It may be called more than once.
func (s *Server) Stop() error {
	s.once.Do(func() {
		s.stop()
		s.err = <-s.done
	})
	return s.err
}

// CheckDescriptors fails the test if the process has another number of
// descriptors open than before Start: call it once the server has stopped
// and the test's clients are closed.
func (s *Server) CheckDescriptors(t testing.TB) {
	t.Helper()
	if n := descriptors(t); n != s.fds {
		t.Errorf("%d descriptors open, %d before the server started", n, s.fds)
	}
}

// descriptors counts this process's open descriptors, once package net has
// opened those of its poller, which it keeps.
func descriptors(t testing.TB) int {
	t.Helper()
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
	}
	n, err := procfs.CountFDs()
	if err != nil {
		t.Fatal(err)
	}
	return n
}
