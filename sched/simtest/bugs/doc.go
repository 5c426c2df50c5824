// Package bugs is a catalogue of small concurrency bugs, each written in
// the style of a kind of bug that studies of real Go programs found again
// and again (Tu, Liu, Song and Zhang, "Understanding Real-World Concurrency
// Bugs in Go", ASPLOS 2019; the GoBench suite drawn from Docker,
// Kubernetes, etcd, gRPC and CockroachDB), in a buggy and a fixed version.
//
// Every buggy version fails only under some schedules, as such bugs do in
// production: most runs pass. The package's tests check that simtest finds
// each one within its stated budget of seeds with its stated strategy, and
// that each fixed version passes 10,000 seeds. docs/simtest.md has the
// table of how many runs each strategy needs on average.
//
// The programs are written against sched's tasks rather than goroutines,
// with the same shape as the Go originals: a task where the original had a
// goroutine, a sched.Chan for a channel, a Yield where the original did
// work that let other goroutines run (an I/O call, a log write).
package bugs
