// Package browser starts headless Chromium for the tests of the pages weave
// serves, through the DevTools protocol (chromedp).
//
// A test calls New. Without a browser it skips, saying why, unless the
// environment variable CI is set: there a missing browser fails the test,
// because CI installs one (.ci/run).
package browser

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// Find returns the path of a Chromium (or Chrome) binary: $WEAVE_CHROMIUM
// if set, else the first of the usual names on $PATH; "" if there is none.
func Find() string {
	if p := os.Getenv("WEAVE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts a headless browser with a fresh profile and returns a context
// to drive it with chromedp. The browser ends with the test.
func New(t testing.TB) context.Context {
	t.Helper()
	path := Find()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no Chromium found, and CI is set: .ci/run installs Debian's chromium package")
		}
		t.Skip("no Chromium found (install Debian's chromium package, or set WEAVE_CHROMIUM): skipping the browser test")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// A closed network refuses the browser's own connections: ask for
		// none.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first action starts the browser, for the life of ctx: no timeout
	// on it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// Save writes a screenshot to $WEAVE_SCREENSHOTS/name, if that directory is
// set, and says where.
func Save(t testing.TB, name string, png []byte) {
	t.Helper()
	dir := os.Getenv("WEAVE_SCREENSHOTS")
	if dir == "" {
		return
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
