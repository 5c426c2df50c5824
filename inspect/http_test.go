package inspect_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/weavert/weave/inspect"
)

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestHandler(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/debug/weave/", inspect.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		path, status, ctype, body string
	}{
		{"/debug/weave/", "200", "text/html", "<script src=\"app.js\">"},
		{"/debug/weave/index.html", "200", "text/html", "snapshot"},
		{"/debug/weave/app.js", "200", "text/javascript", "snapshot.json"},
		{"/debug/weave/style.css", "200", "text/css", ".task.running"},
		{"/debug/weave/snapshot.json", "200", "application/json", `"version": 2`},
		{"/debug/weave/trace.json", "200", "application/json", `"traceEvents"`},
		{"/debug/weave/nosuch.js", "404", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, srv, tt.path)
			if s := resp.Status[:3]; s != tt.status {
				t.Fatalf("status %s, want %s", resp.Status, tt.status)
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) || !strings.Contains(body, tt.body) {
				t.Errorf("Content-Type %q, body %.200q; want %q containing %q", resp.Header.Get("Content-Type"), body, tt.ctype, tt.body)
			}
		})
	}
	resp, _ := get(t, srv, "/debug/weave/trace.json")
	if !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("the trace is not a download")
	}
	resp, _ = get(t, srv, "/debug/weave")
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/debug/weave/" {
		t.Errorf("/debug/weave: %s to %q, want a redirect to the slash", resp.Status, resp.Header.Get("Location"))
	}
	_, body := get(t, srv, "/debug/weave/snapshot.json")
	var tree inspect.Tree
	if err := json.Unmarshal([]byte(body), &tree); err != nil || tree.Process == nil {
		t.Fatalf("snapshot.json does not decode: %v", err)
	}
	for _, v := range tree.Process.Env {
		if v.Value != "" {
			t.Errorf("snapshot.json shows the value of %s", v.Name)
		}
	}
}

// The page loads nothing from outside: no address in its files but the
// SVG namespace, which names and loads nothing.
func TestPageSelfContained(t *testing.T) {
	srv := httptest.NewServer(inspect.Handler())
	defer srv.Close()
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for _, f := range []string{"/index.html", "/app.js", "/style.css"} {
		_, body := get(t, srv, f)
		for _, m := range url.FindAllString(body, -1) {
			if m != "http://www.w3.org" {
				t.Errorf("%s refers to %s", f, m)
			}
		}
	}
}
