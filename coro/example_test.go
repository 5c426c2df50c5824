package coro_test

import (
	"fmt"
	"slices"
	"strings"

	"github.com/weavert/weave/coro"
)

// A coroutine with values in both directions: each Resume sends a number in
// and gets the running average out.
func Example() {
	avg := coro.New(func(x float64, yield func(float64) float64) float64 {
		sum, n := 0.0, 0
		for {
			sum, n = sum+x, n+1
			x = yield(sum / float64(n))
		}
	})
	defer avg.Close()
	for _, x := range []float64{10, 20, 60} {
		out, _ := avg.Resume(x)
		fmt.Println(out)
	}
	// Output:
	// 10
	// 15
	// 30
}

// A generator: a coroutine whose input is empty, ranged over with All.
func ExampleCoroutine_All() {
	fib := coro.New(func(_ struct{}, yield func(int) struct{}) int {
		a, b := 0, 1
		for range 6 {
			yield(a)
			a, b = b, a+b
		}
		return a
	})
	for v := range fib.All(struct{}{}) {
		fmt.Print(v, " ")
	}
	fmt.Println()
	// Output: 0 1 1 2 3 5 8
}

// Feed pairs each value sent in with the coroutine's answer.
func ExampleCoroutine_Feed() {
	tokenizer := coro.New(func(line string, yield func(int) string) int {
		for {
			line = yield(len(strings.Fields(line)))
		}
	})
	defer tokenizer.Close()
	for line, words := range tokenizer.Feed(slices.Values([]string{"a b c", "", "hello world"})) {
		fmt.Printf("%q: %d\n", line, words)
	}
	// Output:
	// "a b c": 3
	// "": 0
	// "hello world": 2
}

// Pull turns an iterator into a coroutine that produces its values one by one.
func ExamplePull() {
	next := coro.Pull(slices.Values([]string{"x", "y"}))
	for {
		v, ok := next.Resume(struct{}{})
		if !ok {
			break
		}
		fmt.Println(v)
	}
	// Output:
	// x
	// y
}

// Close unwinds a suspended coroutine through its defers.
func ExampleCoroutine_Close() {
	c := coro.New(func(in int, yield func(int) int) int {
		defer fmt.Println("cleaned up")
		for {
			in = yield(in * 2)
		}
	})
	out, _ := c.Resume(21)
	fmt.Println(out)
	fmt.Println(c.Close(), c.Status())
	// Output:
	// 42
	// cleaned up
	// <nil> dead
}

// A panic inside the coroutine reaches the resumer as a *PanicError.
func ExamplePanicError() {
	c := coro.New(func(in int, yield func(int) int) int {
		panic(fmt.Sprint("bad input ", in))
	})
	defer func() {
		pe := recover().(*coro.PanicError)
		fmt.Println(pe.Value)
	}()
	c.Resume(7)
	// Output: bad input 7
}
