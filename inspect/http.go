package inspect

import (
	"embed"
	"encoding/json"
	"net/http"
	"path"
	"strings"
)

//go:embed ui
var ui embed.FS

var assets = map[string]string{
	"":           "text/html; charset=utf-8",
	"index.html": "text/html; charset=utf-8",
	"app.js":     "text/javascript; charset=utf-8",
	"style.css":  "text/css; charset=utf-8",
}

// Handler returns the handler of the live page of this process, as
// net/http/pprof serves profiles: mount it on a path that ends in a slash,
//
//	http.Handle("/debug/weave/", inspect.Handler())
//
// Under that path it serves
//
//	index.html      the picture: process boxes, thread lanes, a mark per task
//	                colored by its state, updated about once a second, and a
//	                timeline view of the trace (index.html#timeline)
//	snapshot.json   Snapshot of this process and its children (environment
//	                values redacted)
//	trace.json      WriteTrace, as a download
//
// Every file of the page is embedded in the binary: the page loads nothing
// from anywhere else.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	name := path.Base(r.URL.Path)
	if strings.HasSuffix(r.URL.Path, "/") {
		name = ""
	}
	switch name {
	case "snapshot.json":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		enc.Encode(Snapshot(r.Context(), Options{}))
		return
	case "trace.json":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Query().Get("download") != "0" {
			w.Header().Set("Content-Disposition", `attachment; filename="weave-trace.json"`)
		}
		if err := WriteTrace(r.Context(), w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		return
	}
	ctype, ok := assets[name]
	if !ok {
		if !strings.Contains(name, ".") {
			// The page's own links are relative: it needs the slash.
			http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently)
			return
		}
		http.NotFound(w, r)
		return
	}
	if name == "" {
		name = "index.html"
	}
	b, err := ui.ReadFile("ui/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Write(b)
}
