package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/weavert/weave/proc"
)

func TestMain(m *testing.M) {
	proc.Main() // the process rows re-execute this test binary
	// A race-enabled binary sleeps a second in os.Exit (GORACE
	// atexit_sleep_ms); the children are this binary.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	goleak.VerifyTestMain(m)
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		in          []float64
		med, lo, hi float64
	}{
		{[]float64{3, 1, 2}, 2, 1, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
		{[]float64{7}, 7, 7, 7},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		med, lo, hi := summarize(tt.in)
		if med != tt.med || lo != tt.lo || hi != tt.hi {
			t.Errorf("summarize(%v) = %v, %v, %v; want %v, %v, %v", in, med, lo, hi, tt.med, tt.lo, tt.hi)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("summarize reordered its input")
		}
	}
	if med, _, _ := summarize(nil); !math.IsNaN(med) {
		t.Errorf("summarize(nil) = %v, want NaN", med)
	}
}

func TestHuman(t *testing.T) {
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{48.7, "ns", "48.7 ns"}, {1.5, "ns", "1.50 ns"}, {2322, "ns", "2.32 µs"}, {1515528, "ns", "1.52 ms"},
		{512, "B", "512 B"}, {4510, "B", "4.40 KiB"}, {3952640, "B", "3.77 MiB"},
		{950, "msg/s", "950 msg/s"}, {56213, "msg/s", "56.2k msg/s"}, {1.2e6, "msg/s", "1.20M msg/s"},
	}
	for _, tt := range tests {
		if got := human(tt.v, tt.unit); got != tt.want {
			t.Errorf("human(%v, %q) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	good := map[string][]int{"0": {0}, "0,1": {0, 1}, "1-3": {1, 2, 3}, "0, 2-3": {0, 2, 3}}
	for in, want := range good {
		got, err := ParseCPUs(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseCPUs(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "3-1", "1,"} {
		if _, err := ParseCPUs(in); err == nil {
			t.Errorf("ParseCPUs(%q) accepted a bad list", in)
		}
	}
}

func TestParseSwitches(t *testing.T) {
	status := "Name:\tx\nvoluntary_ctxt_switches:\t42\nnonvoluntary_ctxt_switches:\t7\n"
	if v, err := parseSwitches(status, "voluntary_ctxt_switches"); v != 42 || err != nil {
		t.Fatalf("got %d, %v", v, err)
	}
	if v, err := parseSwitches(status, "nonvoluntary_ctxt_switches"); v != 7 || err != nil {
		t.Fatalf("got %d, %v", v, err)
	}
	if _, err := parseSwitches("Name: x\n", "voluntary_ctxt_switches"); err == nil {
		t.Fatal("a missing counter must be an error")
	}
}

func TestSwitchNote(t *testing.T) {
	if n := switchNote(switches{120, 80}, 100); !strings.HasPrefix(n, "2.00 context switches per round trip (1.20 voluntary, 0.80 involuntary)") || strings.Contains(n, "not about 2") {
		t.Errorf("two per round trip: %q", n)
	}
	if n := switchNote(switches{10, 0}, 100); !strings.Contains(n, "not about 2") {
		t.Errorf("0.1 per round trip must be flagged: %q", n)
	}
}

// The method on a fake probe: the warm-up try is dropped, and the median,
// min and max are those of the timed tries.
func TestMeasureDropsWarmUp(t *testing.T) {
	vals := []float64{1000, 5, 3, 4}
	i := 0
	p := probe{name: "fake/switch", layer: "coroutine", unit: "ns", setup: func(n int) (func() (float64, error), func() string, error) {
		return func() (float64, error) { v := vals[i]; i++; return v, nil }, func() string { return "note" }, nil
	}}
	rows, err := measure(p, 1, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	if row := rows[0]; row.Median != 4 || row.Min != 3 || row.Max != 5 || row.Tries != 3 || row.Note != "note" {
		t.Fatalf("row = %+v", row)
	}
}

// A probe of several rows: each try measures all of them, and each row gets
// the median of its own figures, its warm-up dropped, and its own note; the
// setup learns whether the run is quick, and a try that returns the wrong
// number of figures fails the probe after releasing what setup made.
func TestMeasureRows(t *testing.T) {
	tries := [][]float64{{1000, 1}, {5, 50}, {3, 30}, {4, 40}}
	i, released, sawQuick := 0, 0, false
	p := probe{name: "fake", layer: "network",
		rows: []rowSpec{{"fake/a", "ns"}, {"fake/b", "B"}},
		setupRows: func(n int, quick bool) (func() ([]float64, error), func() []string, error) {
			sawQuick = quick
			try := func() ([]float64, error) { v := tries[i]; i++; return v, nil }
			return try, func() []string { released++; return []string{"a's", "b's"} }, nil
		}}
	rows, err := measure(p, 1, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{
		{Name: "fake/a", Layer: "network", Unit: "ns", Median: 4, Min: 3, Max: 5, Tries: 3, Note: "a's"},
		{Name: "fake/b", Layer: "network", Unit: "B", Median: 40, Min: 30, Max: 50, Tries: 3, Note: "b's"},
	}
	if !slices.Equal(rows, want) || !sawQuick || released != 1 {
		t.Fatalf("rows = %+v, quick %v, released %d times", rows, sawQuick, released)
	}

	tries, i = [][]float64{{1, 2}, {1}}, 0
	if _, err := measure(p, 1, 3, false); err == nil || !strings.Contains(err.Error(), "1 rows, not 2") || released != 2 {
		t.Fatalf("a try of the wrong size: %v, released %d times", err, released)
	}
}

// Names lists every row of a probe of several; Only selects a probe by any of
// its rows, and reports all of them; a probe's maxTries bounds its tries.
func TestOnlyRowsTogether(t *testing.T) {
	saved := probes
	t.Cleanup(func() { probes = saved })
	probes = nil
	setup := func(int, bool) (func() ([]float64, error), func() []string, error) {
		return func() ([]float64, error) { return []float64{1, 2}, nil }, func() []string { return nil }, nil
	}
	register(probe{name: "fake/switch", layer: "coroutine", unit: "ns", count: 1, quick: 1, setup: timed(1, func(int) error { return nil })})
	register(probe{name: "pair", layer: "process", count: 1, quick: 1, rows: []rowSpec{{"pair/a", "ns"}, {"pair/b", "ns"}}, setupRows: setup, maxTries: 2})
	if got := Names(); !slices.Equal(got, []string{"fake/switch", "pair/a", "pair/b"}) {
		t.Fatalf("Names() = %v", got)
	}
	r, err := Run(Options{Quick: true, Tries: 5, Only: regexp.MustCompile("pair/b")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, row := range r.Results {
		got = append(got, row.Name)
		if row.Tries != 2 {
			t.Errorf("%s: %d tries, not the probe's most, 2", row.Name, row.Tries)
		}
	}
	if !slices.Equal(got, []string{"pair/a", "pair/b"}) {
		t.Fatalf("--only pair/b measured %v", got)
	}
}

func quickRun(t *testing.T, only string) Report {
	t.Helper()
	r, err := Run(Options{Quick: true, Tries: 3, Only: regexp.MustCompile(only)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunRows(t *testing.T) {
	r := quickRun(t, ".")
	names := map[string]Row{}
	for _, row := range r.Results {
		names[row.Name] = row
		if !(row.Median > 0) || row.Min > row.Median || row.Median > row.Max {
			t.Errorf("%s: median %v, min %v, max %v", row.Name, row.Median, row.Min, row.Max)
		}
	}
	for _, want := range []string{"coro/switch", "iterpull/switch", "goroutine/switch", "thread/switch", "futex/overhead", "coro/create", "goroutine/create", "thread/create", "coro/memory", "goroutine/memory", "thread/memory",
		"process/switch", "process/create", "process/memory",
		"sched/yield", "sched/chan", "sched/spawn", "sched/memory",
		"net/echo", "gonet/echo", "net/echo/p50", "gonet/echo/p50", "net/echo/p99", "gonet/echo/p99", "net/echo/cpu", "gonet/echo/cpu", "net/idle", "gonet/idle"} {
		if _, ok := names[want]; !ok {
			t.Errorf("no %s row", want)
		}
	}
	for _, name := range []string{"thread/switch", "process/switch"} {
		if n := names[name].Note; !strings.Contains(n, "context switches per round trip") {
			t.Errorf("%s note = %q", name, n)
		}
	}
	if r.Machine.Cores < 1 || r.Machine.Go == "" || r.Machine.Kernel == "" {
		t.Errorf("machine = %+v", r.Machine)
	}
	noChildren(t)
}

func TestOutputs(t *testing.T) {
	r := Report{
		Machine: Machine{CPU: "Test CPU", Cores: 2, Go: "go1.26", Kernel: "6.1"},
		Results: []Row{
			{Name: "coro/switch", Layer: "coroutine", Unit: "ns", Median: 50, Min: 45, Max: 60, Tries: 11},
			{Name: "thread/switch", Layer: "thread", Unit: "ns", Median: 2500, Min: 2000, Max: 3000, Tries: 11, Note: "2.00 context switches per round trip"},
			{Name: "coro/memory", Layer: "coroutine", Unit: "B", Median: 4500, Min: 4400, Max: 4600, Tries: 11},
			{Name: "sched/yield", Layer: "scheduler", Unit: "ns", Median: 100, Min: 90, Max: 110, Tries: 11},
			{Name: "net/echo", Layer: "network", Unit: "msg/s", Median: 60000, Min: 55000, Max: 65000, Tries: 11},
			{Name: "gonet/echo", Layer: "network", Unit: "msg/s", Median: 50000, Min: 45000, Max: 55000, Tries: 11},
			{Name: "net/echo/p99", Layer: "network", Unit: "ns", Median: 2e7, Min: 1.9e7, Max: 2.1e7, Tries: 11},
			{Name: "gonet/echo/p99", Layer: "network", Unit: "ns", Median: 4e7, Min: 3.9e7, Max: 4.1e7, Tries: 11},
		},
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Machine map[string]any   `json:"machine"`
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Machine["cpu"] != "Test CPU" || len(back.Results) != len(r.Results) {
		t.Fatalf("JSON = %s", js.String())
	}
	for _, key := range []string{"name", "unit", "median", "min", "max", "tries"} {
		if _, ok := back.Results[0][key]; !ok {
			t.Errorf("JSON result has no %q", key)
		}
	}

	var table bytes.Buffer
	if err := WriteTable(&table, r); err != nil {
		t.Fatal(err)
	}
	out := table.String()
	for _, want := range []string{"Test CPU", "coro/switch", "50.0×", "2.00 context switches"} {
		if !strings.Contains(out, want) {
			t.Errorf("table has no %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`sched/yield .* 2\.0×`).MatchString(out) {
		t.Errorf("sched/yield is not compared with coro/switch:\n%s", out)
	}
	if strings.Index(out, "coro/switch") > strings.Index(out, "thread/switch") {
		t.Errorf("rows are not grouped by layer, top down:\n%s", out)
	}
	// The network rows come last, under a header of their own, each compared
	// with the standard library's server.
	for _, want := range []string{`vs coro\n`, `vs gonet\n(.*\n)*.*net/echo .* 60\.0k msg/s .* 1\.2×`, `gonet/echo .* 1\.0×`, `net/echo/p99 .* 20\.0 ms .* 0\.5×`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("table does not match %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "vs gonet") < strings.Index(out, "thread/switch") {
		t.Errorf("the network rows are not last:\n%s", out)
	}

	if strings.Contains(out, "noisy") {
		t.Errorf("rows whose tries agree are marked noisy:\n%s", out)
	}

	var svg bytes.Buffer
	if err := WriteSVG(&svg, r); err != nil {
		t.Fatal(err)
	}
	s := svg.String()
	if !strings.HasPrefix(s, "<svg") || !strings.Contains(s, "thread/switch") || strings.Contains(s, "coro/memory") || strings.Contains(s, "net/") {
		t.Errorf("SVG must draw the switch rows and not the memory or network rows:\n%s", s)
	}
}

// A row whose slowest try took more than twice its fastest is marked as
// noisy beside its figures, and a note under the table says what to do: the
// full run if this one was quick, --pin if it was not pinned.
func TestTableMarksSpread(t *testing.T) {
	for _, tc := range []struct {
		quick  bool
		pinned []int
		advice []string
	}{
		{true, nil, []string{"without --quick", "--pin 0"}},
		{false, nil, []string{"--pin 0"}},
		{true, []int{0}, []string{"without --quick"}},
	} {
		r := Report{
			Machine: Machine{CPU: "Test CPU", Cores: 2, Go: "go1.26", Kernel: "6.1", Pinned: tc.pinned},
			Quick:   tc.quick,
			Results: []Row{
				{Name: "coro/switch", Layer: "coroutine", Unit: "ns", Median: 319, Min: 54.8, Max: 1450, Tries: 3},
				{Name: "coro/create", Layer: "coroutine", Unit: "ns", Median: 340, Min: 320, Max: 620, Tries: 3},
				{Name: "thread/switch", Layer: "thread", Unit: "ns", Median: 2500, Min: 1000, Max: 3000, Tries: 3, Note: "2.00 context switches per round trip"},
				{Name: "coro/memory", Layer: "coroutine", Unit: "B", Median: 4500, Min: -900, Max: 4600, Tries: 3},
			},
		}
		var table bytes.Buffer
		if err := WriteTable(&table, r); err != nil {
			t.Fatal(err)
		}
		out := table.String()
		lines := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				lines[f[0]] = l
			}
		}
		for name, noisy := range map[string]bool{"coro/switch": true, "coro/create": false, "thread/switch": true, "coro/memory": false} {
			if got := strings.Contains(lines[name], "noisy"); got != noisy {
				t.Errorf("row %s marked noisy: %v, want %v:\n%s", name, got, noisy, out)
			}
		}
		if !strings.Contains(lines["coro/switch"], "max 26× min") || !strings.Contains(lines["thread/switch"], "2.00 context switches") {
			t.Errorf("the mark does not say the spread, or hides the row's note:\n%s", out)
		}
		for _, want := range tc.advice {
			if !strings.Contains(out, want) {
				t.Errorf("quick %v, pinned %v: the table does not advise %q:\n%s", tc.quick, tc.pinned, want, out)
			}
		}
		if !tc.quick && strings.Contains(out, "--quick") || tc.pinned != nil && strings.Contains(out, "--pin") {
			t.Errorf("quick %v, pinned %v: advice that does not apply:\n%s", tc.quick, tc.pinned, out)
		}
	}
}
