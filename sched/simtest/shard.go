package simtest

import (
	"fmt"
	"strconv"
	"strings"
)

// Shard makes an exploration run only shard i of n of its seeds, so that n
// machines, or n processes, can share it: the seeds FirstSeed+i,
// FirstSeed+i+n, FirstSeed+i+2n and so on, below FirstSeed+Seeds. Seeds
// counts the seeds of the whole exploration; shard i runs ⌈(Seeds−i)/n⌉ of
// them, and the n shards between them run each seed once. Interleaved
// rather than in contiguous ranges, so that every shard starts with low
// seeds and the first failure of the whole exploration is about as early
// in one of them as it would have been unsharded.
//
// Each shard stops at its own first failure, and Failure.Run counts the
// runs of its shard. The Failure's seed replays alone, without the shard
// (the -weave.seed flag ignores -weave.shard). A PCT strategy learns its run
// length from the runs of its shard: a failure records the length its run
// used. Shard panics unless 0 <= i < n.
func Shard(i, n int) Option {
	if i < 0 || i >= n {
		panic(fmt.Sprintf("simtest: Shard(%d, %d): need 0 <= i < n", i, n))
	}
	return optionFunc(func(c *config) { c.shard, c.shards = i, n })
}

// shardFlag is the value of -weave.shard: "i/n", or empty.
type shardFlag struct{ i, n int }

func (f *shardFlag) String() string {
	if f.n == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", f.i, f.n)
}

// Set reads "i/n"; an empty value unsets the flag.
func (f *shardFlag) Set(s string) error {
	if s == "" {
		*f = shardFlag{}
		return nil
	}
	is, ns, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(is)
	n, err2 := strconv.Atoi(ns)
	if !ok || err1 != nil || err2 != nil || i < 0 || i >= n {
		return fmt.Errorf("simtest: shard %q: want i/n, with 0 <= i < n", s)
	}
	*f = shardFlag{i, n}
	return nil
}
