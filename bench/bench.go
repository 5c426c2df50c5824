package bench

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"time"
)

// A Row is one measured figure.
type Row struct {
	Name   string  `json:"name"`   // e.g. "coro/switch"
	Layer  string  `json:"layer"`  // coroutine, goroutine, thread, process, scheduler
	Unit   string  `json:"unit"`   // "ns" or "B"
	Median float64 `json:"median"` // of the tries
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Tries  int     `json:"tries"`
	// Note says what the figure means when it needs saying: how many real
	// context switches a round trip took, or why a row was skipped.
	Note string `json:"note,omitempty"`
}

// A Report is the result of a run.
type Report struct {
	Machine Machine `json:"machine"`
	Quick   bool    `json:"quick,omitempty"` // a run of Options.Quick
	Results []Row   `json:"results"`
}

// Options control a run.
type Options struct {
	// Quick uses small counts, for a run of a few seconds (tests, CI).
	Quick bool
	// Tries is the number of timed tries per figure; at least 11 unless
	// set lower on purpose. Zero means 11.
	Tries int
	// Only, if set, selects the rows whose names it matches. Rows measured
	// together (a system and its baseline) are reported together.
	Only *regexp.Regexp
	// Pin, if not empty, restricts the whole process to these CPUs, so
	// that both ends of a switch share them (--pin 0: one CPU).
	Pin []int
	// Progress, if set, receives a line per row as the run goes.
	Progress io.Writer
}

// A probe measures one row. Each try returns the figure for that try, in the
// row's unit; count is the number of operations a try should time.
type probe struct {
	name, layer, unit string
	// count is the number of operations per try: full and quick.
	count, quick int
	// setup, if set, prepares a measurement and returns the function that
	// runs one try of n operations, and a function to release what setup
	// made. Setup runs once per row, not per try.
	setup func(n int) (try func() (float64, error), done func() (note string), err error)
	// rows, with setupRows instead of setup, makes the probe measure several
	// rows together: each try measures every row once, in turn, so that a
	// system and its baseline are interleaved under the same conditions
	// rather than measured a minute apart. The rows share the layer; name
	// names the group in the progress lines.
	rows      []rowSpec
	setupRows func(n int, quick bool) (try func() ([]float64, error), done func() (notes []string), err error)
	// maxTries, if set, bounds the timed tries of a probe whose tries take
	// seconds each and agree closely.
	maxTries int
}

// rowSpec is one row of a probe that measures several.
type rowSpec struct{ name, unit string }

// specs returns the rows p measures.
func (p probe) specs() []rowSpec {
	if p.rows != nil {
		return p.rows
	}
	return []rowSpec{{p.name, p.unit}}
}

// setupAll returns p's setup as a setup of several rows.
func (p probe) setupAll() func(n int, quick bool) (func() ([]float64, error), func() []string, error) {
	if p.setupRows != nil {
		return p.setupRows
	}
	return func(n int, _ bool) (func() ([]float64, error), func() []string, error) {
		try, done, err := p.setup(n)
		if err != nil {
			return nil, nil, err
		}
		tryAll := func() ([]float64, error) {
			v, err := try()
			return []float64{v}, err
		}
		return tryAll, func() []string { return []string{done()} }, nil
	}
}

// probes is the list of rows, in the order they are reported.
var probes []probe

func register(p probe) { probes = append(probes, p) }

// Names returns the names of every row, in order.
func Names() []string {
	var names []string
	for _, p := range probes {
		for _, r := range p.specs() {
			names = append(names, r.name)
		}
	}
	return names
}

// Run measures the selected rows and returns the report.
func Run(opt Options) (Report, error) {
	tries := opt.Tries
	if tries <= 0 {
		tries = 11
	}
	var rep Report
	if len(opt.Pin) > 0 {
		if err := pin(opt.Pin); err != nil {
			return rep, err
		}
	}
	rep.Machine = describeMachine(opt.Pin)
	rep.Quick = opt.Quick
	for _, p := range probes {
		if opt.Only != nil && !slices.ContainsFunc(p.specs(), func(r rowSpec) bool { return opt.Only.MatchString(r.name) }) {
			continue
		}
		if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, "measuring %s …\n", p.name)
		}
		n := p.count
		if opt.Quick {
			n = p.quick
		}
		t := tries
		if p.maxTries > 0 {
			t = min(t, p.maxTries)
		}
		rows, err := measure(p, n, t, opt.Quick)
		if err != nil {
			return rep, fmt.Errorf("bench: %s: %w", p.name, err)
		}
		rep.Results = append(rep.Results, rows...)
	}
	// Group the rows by layer, top down as in the picture of the layers,
	// keeping their order within a layer.
	slices.SortStableFunc(rep.Results, func(a, b Row) int {
		return slices.Index(layers, a.Layer) - slices.Index(layers, b.Layer)
	})
	return rep, nil
}

// measure runs one warm-up try and then the timed tries of p, and returns
// its rows.
func measure(p probe, n, tries int, quick bool) ([]Row, error) {
	specs := p.specs()
	try, done, err := p.setupAll()(n, quick)
	if err != nil {
		return nil, err
	}
	vals := make([][]float64, len(specs))
	for i := range tries + 1 {
		v, err := try()
		if err == nil && len(v) != len(specs) {
			err = fmt.Errorf("a try measured %d rows, not %d", len(v), len(specs))
		}
		if err != nil {
			done()
			return nil, err
		}
		if i > 0 { // the first try warms up
			for j := range v {
				vals[j] = append(vals[j], v[j])
			}
		}
	}
	notes := done()
	rows := make([]Row, len(specs))
	for j, r := range specs {
		rows[j] = Row{Name: r.name, Layer: p.layer, Unit: r.unit, Tries: tries}
		if j < len(notes) {
			rows[j].Note = notes[j]
		}
		rows[j].Median, rows[j].Min, rows[j].Max = summarize(vals[j])
	}
	return rows, nil
}

// summarize returns the median, min and max of vals.
func summarize(vals []float64) (median, lo, hi float64) {
	if len(vals) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	mid := len(s) / 2
	median = s[mid]
	if len(s)%2 == 0 {
		median = (s[mid-1] + s[mid]) / 2
	}
	return median, s[0], s[len(s)-1]
}

// perOp times f and returns nanoseconds per operation, n operations, each
// worth div of the figure (2 for a round trip reported per switch).
func perOp(n int, div float64, f func(n int) error) (float64, error) {
	start := time.Now()
	if err := f(n); err != nil {
		return 0, err
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n) / div, nil
}

// timed makes a setup for a probe that needs no preparation.
func timed(div float64, f func(n int) error) func(n int) (func() (float64, error), func() string, error) {
	return func(n int) (func() (float64, error), func() string, error) {
		return func() (float64, error) { return perOp(n, div, f) }, func() string { return "" }, nil
	}
}
