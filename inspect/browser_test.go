package inspect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weavert/weave/inspect"
	"github.com/weavert/weave/internal/browser"
	"github.com/weavert/weave/sched"
	"golang.org/x/sys/unix"
)

// In a real browser, the page shows the processes, threads and tasks of a
// running program and follows it as it changes.
func TestPageInBrowser(t *testing.T) {
	ctx := browser.New(t)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	// A child with two threads and eleven tasks, parked.
	_, peer := startChild(t, "inspected", "kid")
	if m, err := peer.Recv(); err != nil || string(m) != "ready" {
		t.Fatalf("Recv = %q, %v", m, err)
	}
	// And here a scheduler of two threads: main and 25 tasks, parked
	// until the test lets 10 of them go.
	rec := inspect.NewRecorder(inspect.Config{Name: "page", Threads: 2})
	defer rec.Close()
	release, finish := make(chan struct{}), make(chan struct{})
	ran := make(chan error, 1)
	go func() {
		s := sched.New(sched.Threads(2), sched.WithTracer(rec))
		ran <- s.Run(func(t *sched.Task) error {
			few, rest := sched.NewChan[int](0), sched.NewChan[int](0)
			for i := range 25 {
				ch := rest
				if i < 10 {
					ch = few
				}
				t.Go(func(t *sched.Task) error { ch.Recv(t); return nil })
			}
			wait := func(c chan struct{}) {
				sched.Await(t, func(context.Context) (struct{}, error) { <-c; return struct{}{}, nil })
			}
			wait(release)
			few.Close()
			wait(finish)
			rest.Close()
			return nil
		})
	}()
	defer func() {
		close(finish)
		if err := <-ran; err != nil {
			t.Error(err)
		}
	}()

	srv := httptest.NewServer(inspect.Handler())
	defer srv.Close()

	// shows waits until the page shows want processes, threads and tasks,
	// as drawn, and returns how many times it has updated.
	shows := func(procs, threads, tasks int) int {
		t.Helper()
		js := fmt.Sprintf(`(() => {
			const s = document.getElementById("summary").dataset;
			return s.processes == %d && s.threads == %d && s.tasks == %d &&
				document.querySelectorAll("#tree .process").length == %d &&
				document.querySelectorAll("#tree .thread:not(.unstarted)").length == %d &&
				document.querySelectorAll("#tree .task").length == %d;
		})()`, procs, threads, tasks, procs, threads, tasks)
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			got, _ := chromedp.Run(ctx, chromedp.Text("#summary"))
			t.Fatalf("the page never showed %d processes, %d threads, %d tasks: %v (it shows %q)", procs, threads, tasks, err, got)
		}
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Number(document.getElementById("summary").dataset.updates)`))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	before := shows(2, 4, 26+11)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	browser.Save(t, "inspect-test.png", png)

	close(release) // ten tasks end: the page follows
	after := shows(2, 4, 16+11)
	if after <= before {
		t.Errorf("updates %d then %d: the page did not update", before, after)
	}
}

// In a real browser, a task's mark names in full what the task waits for: a
// descriptor, with the direction, its number and its FD's name; an Await
// that runs; one queued for the pool.
func TestPageShowsWaits(t *testing.T) {
	ctx := browser.New(t)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	rec := inspect.NewRecorder(inspect.Config{Name: "waits"})
	defer rec.Close()
	gate, reading, ran := make(chan struct{}), make(chan string, 1), make(chan error, 1)
	go func() {
		s := sched.New(sched.Threads(1), sched.AwaitLimit(1), sched.WithTracer(rec))
		ran <- s.Run(func(t *sched.Task) error {
			r, err := sched.NewFD(t, p[0], "pipe r")
			if err != nil {
				reading <- ""
				return err
			}
			defer r.Close()
			await := func(t *sched.Task) error {
				_, err := sched.Await(t, func(context.Context) (struct{}, error) { <-gate; return struct{}{}, nil })
				return err
			}
			t.GoNamed("busy", await)
			t.Yield() // it takes the pool's one goroutine
			t.GoNamed("queued", await)
			reading <- fmt.Sprintf("I/O read on *sched.FD %p (fd %d, pipe r)", r, r.Fd())
			_, err = r.Read(t, make([]byte, 1)) // until the test writes
			return err
		})
	}()
	io := <-reading
	defer func() {
		close(gate)
		unix.Write(p[1], []byte("x"))
		if err := <-ran; err != nil {
			t.Error(err)
		}
	}()
	if io == "" {
		return
	}

	srv := httptest.NewServer(inspect.Handler())
	defer srv.Close()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	wants, err := json.Marshal([]string{
		"main · parked (" + io + ")",
		"busy · parked (Await)",
		"queued · parked (Await queued on the Await pool (AwaitLimit 1, all busy))",
	})
	if err != nil {
		t.Fatal(err)
	}
	const titles = `[...document.querySelectorAll("#tree .task")].map(m => m.title)`
	js := fmt.Sprintf(`%s.every(w => %s.some(t => t.includes(w)))`, wants, titles)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](titles))
		t.Fatalf("the marks never showed the waits %s: %v; their titles: %q", wants, err, got)
	}
}
