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
	// Only, if set, selects the rows whose names it matches.
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
}

// probes is the list of rows, in the order they are reported.
var probes []probe

func register(p probe) { probes = append(probes, p) }

// Names returns the names of every row, in order.
func Names() []string {
	names := make([]string, len(probes))
	for i, p := range probes {
		names[i] = p.name
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
		if opt.Only != nil && !opt.Only.MatchString(p.name) {
			continue
		}
		if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, "measuring %s …\n", p.name)
		}
		n := p.count
		if opt.Quick {
			n = p.quick
		}
		row, err := measure(p, n, tries)
		if err != nil {
			return rep, fmt.Errorf("bench: %s: %w", p.name, err)
		}
		rep.Results = append(rep.Results, row)
	}
	// Group the rows by layer, top down as in the picture of the layers,
	// keeping their order within a layer.
	slices.SortStableFunc(rep.Results, func(a, b Row) int {
		return slices.Index(layers, a.Layer) - slices.Index(layers, b.Layer)
	})
	return rep, nil
}

// measure runs one warm-up try and then the timed tries of p.
func measure(p probe, n, tries int) (Row, error) {
	row := Row{Name: p.name, Layer: p.layer, Unit: p.unit, Tries: tries}
	try, done, err := p.setup(n)
	if err != nil {
		return row, err
	}
	var vals []float64
	for i := range tries + 1 {
		v, err := try()
		if err != nil {
			done()
			return row, err
		}
		if i > 0 { // the first try warms up
			vals = append(vals, v)
		}
	}
	row.Note = done()
	row.Median, row.Min, row.Max = summarize(vals)
	return row, nil
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
