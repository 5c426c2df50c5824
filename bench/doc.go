// Package bench measures what weave's claims rest on: the cost of a switch,
// of a creation and of the memory of a coroutine, a goroutine, an OS thread
// and an OS process, and what a server on weave's sockets costs beside one
// on Go's, on the machine it runs on. It is what `weave bench` prints.
//
// # Method
//
// Each row is measured by one warm-up try and then Options.Tries timed tries
// (11 by default; net/idle takes 3 at most, each of seconds, and they agree
// within a percent); a row reports their median, min and max. A try times a
// count of operations and divides: a switch row times round trips and
// reports half of one, since a round trip is two switches. Rows that compare
// a system with its baseline may be measured together: each try then
// measures every one of them in turn, so that their figures come from the
// same minutes of the machine.
//
// The thread rows use two goroutines locked to their own OS threads that wait
// and wake each other with the futex system call directly, so that the kernel
// does the switching, not Go's scheduler. Each endpoint reads its own
// voluntary context switch counter in /proc before and after, and the row's
// note says how many real switches a round trip took; a ping-pong whose ends
// really sleep takes two. futex/overhead is the cost of one endpoint's futex
// calls without any switch, measured inside one thread, for readers to
// subtract, as lmbench does with its pipe overhead.
//
// Memory rows count what a live parked unit adds: Go's stack and heap in use
// for coroutines and goroutines, the process's resident memory for threads.
// A thread's kernel stack is not resident memory of the process, so it is not
// in the thread row.
//
// The network rows put an echo server on weave (a task per connection on
// package socket, a scheduler of two threads) beside the standard library's
// (a goroutine per connection, GOMAXPROCS=2): net/... rows beside gonet/...
// rows, compared with them. Each server is a process of its own, and one
// load generator, a third process written with goroutines and package net,
// drives both; each try measures both servers in turn. net/echo is a closed
// loop of 64-byte messages over 1,000 connections: messages per second, the
// 50th and 99th percentiles of their latency, and the server's CPU time per
// message (net/echo/cpu), which does not depend on how the client and the
// server share the CPUs. net/idle is the growth of a fresh server's resident
// memory per connection, 10,000 of them, each idle after one echo, with the
// same 4 KiB read buffer, on the heap, in both servers.
//
// Pinning (Options.Pin) restricts every thread of the process to the given
// CPUs; with one CPU, both ends of a switch share it, which is how switch
// costs are usually quoted. The children of the process rows and of the
// network rows inherit it.
package bench
