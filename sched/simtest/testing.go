package simtest

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/weavert/weave/sched"
)

// The flags of `go test` that replay a failure, registered on the command
// line of every program that imports simtest.
var (
	flagSeed     seedFlag
	flagStrategy = flag.String("weave.strategy", "", "simtest: the `strategy` of every exploration: random, pct:DEPTH or pct:DEPTH:STEPS")
	flagSeeds    = flag.Int("weave.seeds", 0, "simtest: how many `seeds` every exploration tries, instead of its own count")
	flagTrace    = flag.String("weave.trace", "", "simtest: write the last events of a failing run to `file`")
	flagShard    shardFlag
)

func init() {
	flag.Var(&flagSeed, "weave.seed", "simtest: run every exploration with this `seed` alone, to replay a failure")
	flag.Var(&flagShard, "weave.shard", "simtest: run shard `i/n` of every exploration's seeds, 0 <= i < n: the seeds first+i, first+i+n, ...; the n shards run each seed once")
}

// seedFlag is a uint64 flag that knows whether it was set: 0 is a seed.
type seedFlag struct {
	seed uint64
	set  bool
}

func (f *seedFlag) String() string {
	if !f.set {
		return ""
	}
	return strconv.FormatUint(f.seed, 10)
}

// Set sets the seed; an empty value unsets it.
func (f *seedFlag) Set(s string) error {
	if s == "" {
		f.set = false
		return nil
	}
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return err
	}
	f.seed, f.set = v, true
	return nil
}

// Run explores body as Explore does, under the options and then the flags
// of `go test`, and fails t at the first failing run. The message gives the
// seed, the step, the strategy, the command that replays that run alone, and
// then the run's error:
//
//	go test ./pkg -run '^TestTransfer$' -weave.seed=17 -weave.strategy=pct:3:40
//
// The flags override the options: -weave.seed=N tries seed N alone (and
// ignores -weave.shard), -weave.strategy=S uses strategy S, -weave.seeds=N
// tries N seeds, -weave.shard=i/n runs shard i of n of them (Shard), and
// -weave.trace=FILE writes the failing run's events to FILE. Run must be
// called from the test's goroutine, as t.Fatal must.
func Run(t testing.TB, body func(*sched.Task) error, opts ...Option) Stats {
	t.Helper()
	opts = append(opts[:len(opts):len(opts)], optionFunc(func(c *config) {
		if *flagStrategy != "" {
			s, err := ParseStrategy(*flagStrategy)
			if err != nil {
				t.Fatalf("-weave.strategy: %v", err)
			}
			c.strategy = s
		}
		if *flagSeeds > 0 {
			c.seeds = *flagSeeds
		}
		if flagShard.n > 0 {
			c.shard, c.shards = flagShard.i, flagShard.n
		}
		if flagSeed.set {
			c.first, c.seeds = flagSeed.seed, 1
			c.shard, c.shards = 0, 1
		}
		if *flagTrace != "" {
			c.tracePath = *flagTrace
		}
	}))
	f, stats := Explore(body, opts...)
	if f == nil {
		return stats
	}
	var trace string
	if c := newConfig(opts); c.tracePath != "" {
		trace = "\ntrace: " + c.tracePath
	} else {
		trace = "\nadd -weave.trace=FILE to write the run's events to FILE"
	}
	head, rest, _ := strings.Cut(f.Error(), "\n")
	t.Fatalf("%s\nreplay: %s%s\n%s", head, Command(t, f), trace, rest)
	return stats
}

// Command returns the command, to run from the module's root, that replays
// f in the test t.
func Command(t testing.TB, f *Failure) string {
	var run []string
	for _, part := range strings.Split(t.Name(), "/") {
		run = append(run, "^"+regexp.QuoteMeta(part)+"$")
	}
	return fmt.Sprintf("go test %s -run '%s' %s", packageDir(), strings.Join(run, "/"), f.Flags())
}

// packageDir returns the directory of the test being run (its working
// directory) relative to the module's root, as `go test` takes it.
func packageDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for root := wd; ; {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			rel, err := filepath.Rel(root, wd)
			if err != nil || rel == "." {
				return "."
			}
			return "./" + filepath.ToSlash(rel)
		}
		up := filepath.Dir(root)
		if up == root {
			return "."
		}
		root = up
	}
}
