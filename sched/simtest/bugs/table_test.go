package bugs_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/weavert/weave/sched/simtest"
	"github.com/weavert/weave/sched/simtest/bugs"
)

var update = flag.Bool("update", false, "rewrite the table of docs/simtest.md")

const (
	docPath    = "../../../docs/simtest.md"
	tableBegin = "<!-- begin bugs table: go test ./sched/simtest/bugs -run TestTable -update -->\n"
	tableEnd   = "<!-- end bugs table -->\n"
	bases      = 50   // explorations per bug and strategy, from different first seeds
	giveUp     = 1000 // seeds an exploration tries before it gives up
)

// search is how one strategy did on one bug over the explorations.
type search struct {
	mean   float64 // runs to the failure, on average
	worst  int     // the most runs any exploration needed
	missed int     // explorations that found nothing in giveUp seeds
}

func (s search) String() string {
	if s.missed > 0 {
		return fmt.Sprintf("%.1f (%d/%d missed)", s.mean, s.missed, bases)
	}
	return fmt.Sprintf("%.1f", s.mean)
}

// measure explores b's buggy version with s from bases first seeds, far
// apart, and counts the runs each needed.
func measure(b bugs.Bug, s simtest.Strategy) search {
	var r search
	total := 0
	for base := range uint64(bases) {
		opts := append(b.Options(giveUp), s, simtest.FirstSeed(1+base*1_000_003))
		f, stats := simtest.Explore(b.Buggy, opts...)
		if f == nil {
			r.missed++
		}
		total += stats.Runs
		r.worst = max(r.worst, stats.Runs)
	}
	r.mean = float64(total) / bases
	return r
}

// table computes the table of docs/simtest.md.
func table(t *testing.T) string {
	var b strings.Builder
	b.WriteString("| bug | failure | budget (strategy) | worst | ")
	for _, s := range strategies {
		fmt.Fprintf(&b, "%s | ", s)
	}
	b.WriteString("real-world pattern |\n|---|---|---|---|")
	for range strategies {
		b.WriteString("---|")
	}
	b.WriteString("---|\n")
	for _, bug := range bugs.All {
		var own search
		var cells []string
		for _, s := range strategies {
			r := measure(bug, s)
			if s == bug.Strategy {
				own = r
			}
			cells = append(cells, r.String())
		}
		if own.missed > 0 || own.worst > bug.Budget {
			t.Errorf("%s: %v needed up to %d runs (%d missed), over its budget of %d", bug.Name, bug.Strategy, own.worst, own.missed, bug.Budget)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %d (%s) | %d | %s | %s |\n",
			bug.Name, bug.Failure, bug.Budget, bug.Strategy, own.worst, strings.Join(cells, " | "), bug.Pattern)
	}
	return b.String()
}

// The table in docs/simtest.md is the one these programs give: mean runs
// to find each bug over 50 explorations per strategy. With -update, the
// test writes it.
func TestTable(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("the table is computed without the race detector, in full")
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(doc, []byte(tableBegin)), bytes.Index(doc, []byte(tableEnd))
	if i < 0 || j < i {
		t.Fatalf("%s has no table markers", docPath)
	}
	i += len(tableBegin)
	got := table(t)
	if string(doc[i:j]) == got {
		return
	}
	if !*update {
		t.Fatalf("the table of %s is out of date (go test ./sched/simtest/bugs -run TestTable -update):\n%s", docPath, got)
	}
	out := append(append(append([]byte{}, doc[:i]...), got...), doc[j:]...)
	if err := os.WriteFile(docPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
}
