package coro

import "iter"

// Pull returns a coroutine that produces the values of seq, one per Resume,
// like the next function of iter.Pull: once seq is exhausted, Resume returns
// the zero value and false, and the coroutine is dead.
//
// Close stops seq as iter.Pull's stop does: the yield seq is waiting in
// returns false, and seq returns. Unlike iter.Pull, the result cannot leak a
// goroutine: a coroutine that is dropped before seq ends is closed when it
// becomes unreachable. And Close reports a panic raised while seq stops,
// where iter.Pull's stop would propagate it.
func Pull[V any](seq iter.Seq[V]) *Coroutine[struct{}, V] {
	c := New[struct{}, V](nil)
	c.s.seq = seq
	return c
}

// All returns an iterator over the values c yields, and finally the value it
// returns, resuming c with in for each one. Breaking out of the loop leaves c
// suspended: resume it again, or Close it.
//
// All is for generators: Coroutine[struct{}, V] built with New, or with Pull
// (whose sequence then ends with seq's last value).
func (c *Coroutine[In, Out]) All(in In) iter.Seq[Out] {
	return func(yield func(Out) bool) {
		for {
			out, ok := c.Resume(in)
			if !ok || !yield(out) {
				return
			}
		}
	}
}

// Feed returns an iterator that resumes c with each value of ins in turn and
// yields that value beside what c answered, until ins or c ends. It is the
// bidirectional generator: values go in from one sequence and come out paired
// with their answers.
func (c *Coroutine[In, Out]) Feed(ins iter.Seq[In]) iter.Seq2[In, Out] {
	return func(yield func(In, Out) bool) {
		for in := range ins {
			out, ok := c.Resume(in)
			if !ok || !yield(in, out) || c.Status() == Dead {
				return
			}
		}
	}
}
