package bench

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// layers is the order of the table's groups: the seed's picture, top down,
// then the servers built on them.
var layers = []string{"coroutine", "scheduler", "goroutine", "thread", "process", "network"}

// wideSpread is the ratio of a time row's slowest try to its fastest beyond
// which the table calls the row noisy. On a quiet machine the tries of a row
// agree within about a third (most rows of a full pinned run here stay within
// 1.1×); a try twice as slow as another was held up by something else — a
// job on the same CPUs, the hypervisor, the garbage collector — and then the
// median may be too. A quick run's tries are short, so one such pause moves
// them far more: a quick coro/switch row once read 319 ns with a minimum of
// 54.8 ns and a maximum of 1.45 µs.
const wideSpread = 2.0

// spread returns the ratio of a time or rate row's slowest try to its
// fastest, and whether it is beyond wideSpread. Memory rows are deltas that
// can be negative, and are left alone.
func spread(row Row) (float64, bool) {
	if row.Unit == "B" || row.Min <= 0 {
		return 0, false
	}
	s := row.Max / row.Min
	return s, s > wideSpread
}

// WriteTable writes r for people: a header describing the machine, then one
// group of rows per layer, each with its median, min, max, unit and ratio to
// its baseline: the coroutine row of the same kind, or for the network rows
// the standard library's server's. A row whose tries spread widely is marked
// noisy, and a note under the table says how to get steadier figures.
func WriteTable(w io.Writer, r Report) error {
	m := r.Machine
	pinned := "no"
	if len(m.Pinned) > 0 {
		pinned = fmt.Sprint(m.Pinned)
	}
	fmt.Fprintf(w, "machine: %s, %d cores, %s, Linux %s, pinned: %s\n\n", m.CPU, m.Cores, m.Go, m.Kernel, pinned)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	header := ""
	anyNoisy := false
	for _, layer := range layers {
		for _, row := range r.Results {
			if row.Layer != layer {
				continue
			}
			if h := "row\tmedian\tmin\tmax\tvs " + baseFamily(row.Name) + "\t"; h != header {
				if header != "" {
					fmt.Fprintln(tw, "\t\t\t\t\t")
				}
				header = h
				fmt.Fprintln(tw, h)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t", row.Name, human(row.Median, row.Unit), human(row.Min, row.Unit), human(row.Max, row.Unit), ratio(r, row))
			note := row.Note
			if s, wide := spread(row); wide {
				anyNoisy = true
				times := fmt.Sprintf("%.1f", s)
				if s >= 10 {
					times = fmt.Sprintf("%.0f", s)
				}
				note = strings.TrimSuffix("noisy: max "+times+"× min; "+note, "; ")
			}
			if note != "" {
				fmt.Fprintf(tw, " %s", note)
			}
			fmt.Fprintln(tw)
		}
	}
	if err := tw.Flush(); err != nil || !anyNoisy {
		return err
	}
	var advice []string
	if r.Quick {
		advice = append(advice, "run without --quick, whose tries are short")
	}
	if len(r.Machine.Pinned) == 0 {
		advice = append(advice, "pin the run to one CPU with --pin 0")
	}
	if len(advice) == 0 {
		advice = append(advice, "run again when the machine is quieter")
	}
	_, err := fmt.Fprintf(w, "\nnoisy: the row's slowest try took more than %.0f× its fastest, so something else ran meanwhile\n"+
		"(another job, the hypervisor) and the median may be off too. For steadier figures:\n%s.\n",
		wideSpread, strings.Join(advice, ", or "))
	return err
}

// ratio compares row with its baseline (see baseline).
func ratio(r Report, row Row) string {
	name := baseline(row.Name)
	for _, base := range r.Results {
		if base.Name == name && base.Median > 0 {
			return fmt.Sprintf("%.1f×", row.Median/base.Median)
		}
	}
	return ""
}

// baseline names the row that a row is compared with: the coroutine row of
// the same kind (switch, create, memory; the scheduler's yield and chan are
// switches, and its spawn a creation), and for weave's server (net/...) the
// standard library's (gonet/...).
func baseline(name string) string {
	_, kind, _ := strings.Cut(name, "/")
	if f := baseFamily(name); f != "coro" {
		return f + "/" + kind
	}
	switch kind {
	case "yield", "chan":
		kind = "switch"
	case "spawn":
		kind = "create"
	}
	return "coro/" + kind
}

// baseFamily is the first part of the names of a row's baselines.
func baseFamily(name string) string {
	if family, _, _ := strings.Cut(name, "/"); family == "net" || family == "gonet" {
		return "gonet"
	}
	return "coro"
}

// human writes v, in unit "ns", "B" or "msg/s", with a unit that keeps it
// short.
func human(v float64, unit string) string {
	scales := map[string][]struct {
		div  float64
		name string
	}{
		"ns":    {{1e9, " s"}, {1e6, " ms"}, {1e3, " µs"}, {1, " ns"}},
		"B":     {{1 << 30, " GiB"}, {1 << 20, " MiB"}, {1 << 10, " KiB"}, {1, " B"}},
		"msg/s": {{1e6, "M msg/s"}, {1e3, "k msg/s"}, {1, " msg/s"}},
	}[unit]
	for _, s := range scales {
		if v >= s.div || s.div == 1 {
			return num(v/s.div) + s.name
		}
	}
	return num(v) + " " + unit
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// WriteJSON writes r as one JSON object.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteSVG draws the time rows (switches, creations, the scheduler's rows;
// not the overhead row, nor the network's) as horizontal bars on a logarithmic scale, grouped
// by layer and labelled, so that the picture reads on its own.
func WriteSVG(w io.Writer, r Report) error {
	var rows []Row
	for _, row := range r.Results {
		_, kind, _ := strings.Cut(row.Name, "/")
		if row.Unit == "ns" && row.Median > 0 && kind != "overhead" && row.Layer != "network" {
			rows = append(rows, row)
		}
	}
	const (
		left, barH, gap, width, top, right = 170, 18, 8, 760, 50, 90
	)
	lo, hi := 1.0, 10.0
	for _, row := range rows {
		for hi < row.Median {
			hi *= 10
		}
	}
	x := func(v float64) float64 {
		return left + (math.Log10(max(v, lo))-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))*(width-left-right)
	}
	height := top + len(rows)*(barH+gap) + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="15" font-weight="bold">What a switch and a creation cost (log scale)</text>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="38" fill="#555">%s</text>`+"\n", html.EscapeString(fmt.Sprintf("%s, %d cores, %s, Linux %s", r.Machine.CPU, r.Machine.Cores, r.Machine.Go, r.Machine.Kernel)))
	colors := map[string]string{"coroutine": "#2a9d8f", "scheduler": "#8ab17d", "goroutine": "#e9c46a", "thread": "#f4a261", "process": "#e76f51"}
	for i, row := range rows {
		y := top + i*(barH+gap)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+barH-5, html.EscapeString(row.Name))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", left, y, x(row.Median)-left, barH, colors[row.Layer])
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", x(row.Median)+4, y+barH-5, html.EscapeString(human(row.Median, "ns")))
	}
	axisY := top + len(rows)*(barH+gap) + 10
	for v := lo; v <= hi; v *= 10 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#bbb"/>`+"\n", x(v), top-4, x(v), axisY)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", x(v), axisY+14, html.EscapeString(human(v, "ns")))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
