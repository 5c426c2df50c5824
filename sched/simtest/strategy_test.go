package simtest

import (
	"slices"
	"testing"
)

func TestParseStrategy(t *testing.T) {
	for _, s := range []Strategy{Random(), PCT(1), PCT(3), PCT(2).WithSteps(412), Random().WithSteps(9)} {
		got, err := ParseStrategy(s.String())
		if err != nil || got != s {
			t.Errorf("ParseStrategy(%q) = %v, %v; want %v", s, got, err, s)
		}
	}
	for _, bad := range []string{"", "pct", "pct:0", "pct:x", "pct:2:-1", "pct:2:3:4", "fifo"} {
		if _, err := ParseStrategy(bad); err == nil {
			t.Errorf("ParseStrategy(%q) succeeded", bad)
		}
	}
}

// The random walk is uniform, and a function of its seed.
func TestRandomPicker(t *testing.T) {
	const n, draws = 5, 50_000
	var counts [n]int
	p := newPicker(7)
	var first []int
	for i := range draws {
		k := p.pick(n)
		counts[k]++
		if i < 100 {
			first = append(first, k)
		}
	}
	for k, c := range counts {
		if c < draws/n*9/10 || c > draws/n*11/10 {
			t.Errorf("index %d picked %d times in %d draws, want about %d", k, c, draws, draws/n)
		}
	}
	again, other := newPicker(7), newPicker(8)
	var same, diff []int
	for range 100 {
		same = append(same, again.pick(n))
		diff = append(diff, other.pick(n))
	}
	if !slices.Equal(first, same) {
		t.Error("the same seed picked differently")
	}
	if slices.Equal(first, diff) {
		t.Error("seeds 7 and 8 picked the same 100 times")
	}
	if got := p.pick(1); got != 0 {
		t.Errorf("pick(1) = %d", got)
	}
}

// With every task always runnable, PCT runs one task until a change point
// lowers it, so the runs switch task exactly at the depth-1 change points.
func TestPCTSwitchesAtChangePoints(t *testing.T) {
	ids := []uint64{1, 2, 3, 4}
	for seed := range uint64(50) {
		for depth := 1; depth <= 4; depth++ {
			p := newPCT(seed, depth, 40)
			p.spin = 1000
			if len(p.change) != depth-1 {
				t.Fatalf("depth %d: %d change points", depth, len(p.change))
			}
			var switches []uint64
			last := -1
			for step := uint64(1); step <= 40; step++ {
				i := p.pick(ids)
				if last >= 0 && i != last {
					switches = append(switches, step)
				}
				last = i
			}
			want := slices.Clone(p.change)
			slices.Sort(want)
			// A change point at step 1 lowers the first task before it
			// ever runs: no switch to see.
			want = slices.DeleteFunc(want, func(c uint64) bool { return c == 1 })
			if !slices.Equal(switches, want) {
				t.Fatalf("seed %d depth %d: switches at %v, change points %v", seed, depth, switches, p.change)
			}
		}
	}
}

// PCT always runs the runnable task of highest priority, whatever the order
// in which tasks are offered, and gives a task its priority once.
func TestPCTHighestPriority(t *testing.T) {
	p := newPCT(3, 1, 100)
	sets := [][]uint64{{1}, {1, 2, 3}, {3, 2}, {2, 5, 4}, {4, 1, 5, 3}, {5, 4, 3, 2, 1}}
	for _, set := range sets {
		i := p.pick(set)
		for _, other := range set {
			if p.prio[other] > p.prio[set[i]] {
				t.Fatalf("picked task %d of %v, but task %d has a higher priority", set[i], set, other)
			}
		}
	}
	before := slices.Clone(p.prio)
	p.pick([]uint64{1, 2, 3})
	if !slices.Equal(before, p.prio) {
		t.Fatal("priorities changed without a change point")
	}
}

// Fewer steps than change points: each step is one at most.
func TestPCTShortRun(t *testing.T) {
	p := newPCT(1, 10, 3)
	slices.Sort(p.change)
	if !slices.Equal(p.change, []uint64{1, 2, 3}) {
		t.Fatalf("change points %v, want 1, 2, 3", p.change)
	}
}

// A task that keeps running while others are runnable (a loop of yields)
// drops below them after spinLimit steps, and the next one runs.
func TestPCTSpin(t *testing.T) {
	ids := []uint64{1, 2, 3}
	p := newPCT(5, 1, 1000)
	var runs []int
	last, streak := -1, 0
	for range 10 * spinLimit {
		i := p.pick(ids)
		if i != last && last >= 0 {
			runs = append(runs, streak)
			streak = 0
		}
		last = i
		streak++
	}
	for _, r := range runs {
		if r != spinLimit {
			t.Fatalf("runs of one task: %v, want %d each", runs, spinLimit)
		}
	}
	if len(runs) != 9 {
		t.Fatalf("%d switches in %d steps", len(runs), 10*spinLimit)
	}
	// Alone, a task is never dropped.
	q := newPCT(5, 1, 1000)
	for range 3 * spinLimit {
		q.pick(ids[:1])
	}
	if q.sunk != sunkPriority {
		t.Fatal("a task alone was dropped")
	}
}
