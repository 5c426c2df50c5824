package main

import (
	"context"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weavert/weave/internal/browser"
)

var pageLine = regexp.MustCompile(`^live page: (http://127\.0\.0\.1:\d+/)$`)

// The demo's live page, in a real browser: three processes, six threads,
// the sieves' thousands of tasks, updating; then its timeline. With
// WEAVE_SCREENSHOTS set, the two screenshots are the README's pictures.
func TestDemoPage(t *testing.T) {
	ctx := browser.New(t)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd, out := startWeave(t, "demo", "--duration", "10m", "--http", ":0")
	awaitLine(t, out, startLine)
	url := awaitLine(t, out, pageLine)[1]
	go func() {
		for out.Scan() {
		}
	}()

	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	// Three processes of two threads each, and the children's sieves of
	// 2,000 tasks each, seen over at least three updates.
	const shown = `(() => {
		const s = document.getElementById("summary").dataset;
		return s.processes == 3 && s.threads == 6 && s.tasks > 4000 && s.updates >= 3 &&
			document.querySelectorAll("#tree .process").length == 3 &&
			document.querySelectorAll("#tree .process .process").length == 2;
	})()`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](shown, chromedp.WithPollingTimeout(time.Minute))); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Text("#summary"))
		t.Fatalf("the page never showed the demo's tree: %v (it shows %q)", err, got)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	browser.Save(t, "inspect.png", png)

	// The timeline, once the children have made a good number of task
	// switches: arrows between processes, run segments of tasks.
	const worked = `(() => {
		let sw = 0;
		for (const e of document.querySelectorAll("#tree .process .process > .head .stats")) {
			const m = e.textContent.match(/task switches ([0-9,]+)/);
			if (m) sw += Number(m[1].replaceAll(",", ""));
		}
		return sw > 200000;
	})()`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](worked, chromedp.WithPollingTimeout(time.Minute))); err != nil {
		t.Fatal(err)
	}
	// By default the view shows the 3 ms before the last message between
	// processes arrived: the README's picture. Then the 300 ms before it,
	// where a slow (race-enabled) run is at work too.
	timeline := func(hash string) []int {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(url+hash)); err != nil {
			t.Fatal(err)
		}
		const drawn = `document.getElementById("timeline-status").dataset.done == "1"`
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](drawn, chromedp.WithPollingTimeout(time.Minute))); err != nil {
			t.Fatal(err)
		}
		counts, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`(() => {
			const s = document.getElementById("timeline-status").dataset;
			s.done = "";
			return [Number(s.slices), Number(s.arrows)];
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		return counts
	}
	timeline("#timeline")
	png, err = chromedp.Run(ctx, chromedp.Screenshot("#timeline-view svg"))
	if err != nil {
		t.Fatal(err)
	}
	browser.Save(t, "timeline.png", png)
	if counts := timeline("#timeline?span=300"); counts[0] < 100 || counts[1] < 10 {
		t.Errorf("the timeline shows %d run segments and %d arrows in 300 ms", counts[0], counts[1])
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("demo after SIGINT: %v", err)
	}
}
