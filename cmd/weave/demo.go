package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/weavert/weave/coro"
)

// runDemo shows coroutines at work: Eratosthenes' sieve as a chain of
// coroutines, each one a filter that resumes the one before it. Every number
// passes through the chain by coroutine switches alone: no goroutine is
// scheduled, no channel is used, no lock is taken.
func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := flags("demo", "[-n N]", stderr)
	n := fs.Int("n", 100, "how many primes to find")
	if err := parse(fs, args); err != nil {
		return err
	}
	// The sieve does quadratic work: 5,000 primes take about a second.
	if *n < 1 || *n > 5_000 {
		return fmt.Errorf("%w: -n must be between 1 and 5000, not %d", errUsage, *n)
	}

	start := time.Now()
	primes, switches := sieve(*n)
	elapsed := time.Since(start)

	fmt.Fprintf(stdout, "weave demo: a prime sieve made of %d chained coroutines\n\n", len(primes))
	shown := primes
	if len(shown) > 20 {
		shown = shown[:20]
	}
	words := make([]string, len(shown))
	for i, p := range shown {
		words[i] = fmt.Sprint(p)
	}
	more := ""
	if len(primes) > len(shown) {
		more = fmt.Sprintf(" … %d", primes[len(primes)-1])
	}
	fmt.Fprintf(stdout, "primes:     %s%s\n", strings.Join(words, " "), more)
	fmt.Fprintf(stdout, "switches:   %d coroutine resumes, each a switch in and a switch out\n", switches)
	fmt.Fprintf(stdout, "time:       %v, %.0f ns per resume with the filtering work\n",
		elapsed.Round(time.Microsecond), float64(elapsed.Nanoseconds())/float64(max(switches, 1)))
	return nil
}

// sieve finds the first n primes. The chain starts with a generator of
// 2, 3, 4, …; each prime found adds a filter coroutine that resumes its
// predecessor until it gets a number the prime does not divide.
func sieve(n int) (primes []int, resumes int) {
	type source = *coro.Coroutine[struct{}, int]
	var chain source = coro.New(func(_ struct{}, yield func(int) struct{}) int {
		for i := 2; ; i++ {
			yield(i)
		}
	})
	var all []source
	all = append(all, chain)
	next := func(s source) int {
		resumes++
		v, _ := s.Resume(struct{}{})
		return v
	}
	for len(primes) < n {
		p := next(chain)
		primes = append(primes, p)
		prev := chain
		chain = coro.New(func(_ struct{}, yield func(int) struct{}) int {
			for {
				if v := next(prev); v%p != 0 {
					yield(v)
				}
			}
		})
		all = append(all, chain)
	}
	for _, c := range all {
		c.Close()
	}
	runtime.KeepAlive(all)
	return primes, resumes
}
