package simtest_test

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/weavert/weave/sched/simtest"
)

// The shards of an exploration run, between them, exactly its seeds: shard
// i of n runs the seeds FirstSeed+i, FirstSeed+i+n, and so on, and stops at
// its first failure.
func TestShard(t *testing.T) {
	const first, seeds = 100, 60
	// The seeds at which the lost update shows, one by one.
	var failing []uint64
	for seed := uint64(first); seed < first+seeds; seed++ {
		if f, _ := simtest.Explore(racy, simtest.FirstSeed(seed), simtest.Seeds(1)); f != nil {
			failing = append(failing, seed)
		}
	}
	if len(failing) < 5 || len(failing) > seeds-5 {
		t.Fatalf("%d of %d seeds fail: want a mix", len(failing), seeds)
	}
	for _, n := range []int{1, 3, 7} {
		for i := range n {
			opts := []simtest.Option{simtest.FirstSeed(first), simtest.Seeds(seeds), simtest.Shard(i, n)}
			// Its first failure is the first failing seed of its own.
			want := slices.IndexFunc(failing, func(s uint64) bool { return int(s-first)%n == i })
			f, stats := simtest.Explore(racy, opts...)
			if f == nil || f.Seed != failing[want] || f.Run != int(f.Seed-first)/n+1 || stats.Runs != f.Run {
				t.Fatalf("shard %d/%d: failure %v after %d runs, want seed %d", i, n, f, stats.Runs, failing[want])
			}
			// Its runs, when they all pass, are its share of the seeds.
			_, stats = simtest.Explore(counter(2, true), opts...)
			if want := (seeds - i + n - 1) / n; stats.Runs != want {
				t.Fatalf("shard %d/%d: %d runs, want %d", i, n, stats.Runs, want)
			}
		}
	}
}

// -weave.shard=i/n shards every exploration of Run; -weave.seed=N, which
// replays a failure, runs that seed alone, whatever the shard.
func TestShardFlag(t *testing.T) {
	f, _ := simtest.Explore(racy, simtest.Seeds(100))
	if f == nil {
		t.Fatal("the lost update is not found")
	}
	setFlag(t, "weave.shard", fmt.Sprintf("%d/%d", (f.Seed-1)%3, 3))
	ft := &fakeT{name: "TestShard"}
	stats := simtest.Run(ft, racy, simtest.Seeds(100))
	if stats.Runs != int(f.Seed-1)/3+1 || ft.fatal == "" {
		t.Fatalf("%d runs: %s", stats.Runs, ft.fatal)
	}
	if want := fmt.Sprintf("-weave.seed=%d -weave.strategy=random\n", f.Seed); !strings.Contains(ft.fatal, want) {
		t.Fatalf("the message lacks %q:\n%s", want, ft.fatal)
	}
	setFlag(t, "weave.shard", fmt.Sprintf("%d/%d", f.Seed%3, 3)) // another shard
	setFlag(t, "weave.seed", fmt.Sprint(f.Seed))
	ft = &fakeT{name: "TestShard"}
	if stats := simtest.Run(ft, racy, simtest.Seeds(100)); stats.Runs != 1 || ft.fatal == "" {
		t.Fatalf("the replay made %d runs: %s", stats.Runs, ft.fatal)
	}
	for _, bad := range []string{"3/3", "-1/3", "1", "1/0", "a/b", "1/2/3"} {
		if err := flag.Set("weave.shard", bad); err == nil {
			t.Errorf("-weave.shard=%s was taken", bad)
		}
	}
}
