package socket_test

import (
	"io"
	"net"
	"runtime"
	"testing"

	"github.com/weavert/weave/sched"
	"github.com/weavert/weave/socket"
)

// Ping-pong over one socketpair, 64 bytes each way: two tasks of a
// scheduler with two threads, beside two goroutines on package net's poller
// with GOMAXPROCS=2; and the same on one thread each. One op is a round trip:
// a write and a read at each end, and the wait in the poller between.

const pingSize = 64

func BenchmarkPingPongGoroutines(b *testing.B) { pingPongGoroutines(b, 2) }
func BenchmarkPingPongTasks(b *testing.B)      { pingPongTasks(b, 2) }

func BenchmarkPingPongGoroutinesOneThread(b *testing.B) { pingPongGoroutines(b, 1) }
func BenchmarkPingPongTasksOneThread(b *testing.B)      { pingPongTasks(b, 1) }

func pingPongGoroutines(b *testing.B, procs int) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	fa, fb := filePair(b)
	a, err := net.FileConn(fa)
	fa.Close()
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	p, err := net.FileConn(fb)
	fb.Close()
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error)
	go func() {
		defer p.Close()
		buf := make([]byte, pingSize)
		for {
			if _, err := io.ReadFull(p, buf); err != nil {
				done <- nil // the pinger hung up
				return
			}
			if _, err := p.Write(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	buf := make([]byte, pingSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(a, buf); err != nil {
			b.Fatal(err)
		}
	}
	a.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func pingPongTasks(b *testing.B, threads int) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
	fa, fb := filePair(b)
	defer fa.Close()
	defer fb.Close()
	b.ReportAllocs()
	err := sched.New(sched.Threads(threads)).Run(func(t *sched.Task) error {
		a, err := socket.Adopt(t, fa)
		if err != nil {
			return err
		}
		defer a.Close()
		p, err := socket.Adopt(t, fb)
		if err != nil {
			return err
		}
		fa.Close()
		fb.Close()
		t.Go(func(t *sched.Task) error {
			defer p.Close()
			buf := make([]byte, pingSize)
			r := p.Bind(t)
			for {
				if _, err := io.ReadFull(r, buf); err != nil {
					return nil // the pinger hung up
				}
				if _, err := p.Write(t, buf); err != nil {
					return err
				}
			}
		})
		buf := make([]byte, pingSize)
		r := a.Bind(t)
		for b.Loop() {
			if _, err := a.Write(t, buf); err != nil {
				return err
			}
			if _, err := io.ReadFull(r, buf); err != nil {
				return err
			}
		}
		return a.Close()
	})
	if err != nil {
		b.Fatal(err)
	}
}
