package sched_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
)

// virtual runs main deterministically, on a virtual clock, and returns the
// virtual time the run took and Run's error.
func virtual(main func(t *sched.Task) error) (time.Duration, error) {
	s := sched.New(sched.Deterministic(newSeeded(1)))
	err := s.Run(main)
	return s.LastRun().Virtual, err
}

// since is the virtual time since the run began.
func since(t *sched.Task) time.Duration { return t.Now().Sub(sched.SimEpoch()) }

// OnTimeout ends a Select that nothing else ends, at its deadline; and a
// Select that something else ends first leaves nothing behind that keeps
// the run going.
func TestOnTimeout(t *testing.T) {
	took, err := virtual(func(task *sched.Task) error {
		ch := sched.NewChan[int](0)
		timedOut := false
		if i := sched.Select(task, sched.OnRecv(ch, nil), sched.OnTimeout(time.Hour, func() { timedOut = true })); i != 1 || !timedOut {
			return fmt.Errorf("Select = %d, timed out %v", i, timedOut)
		}
		if d := since(task); d != time.Hour {
			return fmt.Errorf("timed out at +%v, want +1h", d)
		}
		task.Go(func(task *sched.Task) error {
			task.Sleep(time.Second)
			ch.Send(task, 1)
			return nil
		})
		if i := sched.Select(task, sched.OnRecv(ch, nil), sched.OnTimeout(time.Hour, nil)); i != 0 {
			return fmt.Errorf("Select = %d, want the receive", i)
		}
		if i := sched.Select(task, sched.OnTimeout(0, nil)); i != 0 {
			return errors.New("a zero timeout did not proceed at once")
		}
		return nil
	})
	if err != nil || took != time.Hour+time.Second {
		t.Fatalf("Run = %v after %v, want nil after 1h1s: the second timeout must not keep the run", err, took)
	}
}

// On the real clock and several threads, a timeout fires and is chosen.
func TestOnTimeoutRealClock(t *testing.T) {
	forThreads(t, func(t *testing.T, n int) {
		err := sched.New(sched.Threads(n)).Run(func(task *sched.Task) error {
			ch := sched.NewChan[int](0)
			start := time.Now()
			if i := sched.Select(task, sched.OnRecv(ch, nil), sched.OnTimeout(time.Millisecond, nil)); i != 1 {
				return fmt.Errorf("Select = %d, want the timeout", i)
			}
			if el := time.Since(start); el < time.Millisecond {
				return fmt.Errorf("timed out after %v, early", el)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// A Timer fires once, at its deadline; Stop and Reset take back a value it
// sent that nobody received, so no stale time is ever received.
func TestTimer(t *testing.T) {
	_, err := virtual(func(task *sched.Task) error {
		tm := sched.NewTimer(task, time.Minute)
		if v, _ := tm.C.Recv(task); v.Sub(sched.SimEpoch()) != time.Minute || since(task) != time.Minute {
			return fmt.Errorf("the timer sent %v at +%v, want +1m both", v.Sub(sched.SimEpoch()), since(task))
		}
		if tm.Stop() {
			return errors.New("Stop of a fired timer reported it active")
		}
		if tm.Reset(time.Minute) {
			return errors.New("Reset of a fired timer reported it active")
		}
		if !tm.Stop() {
			return errors.New("Stop of an armed timer reported it inactive")
		}

		// It fires while nobody receives: the time waits in C, until
		// Reset takes it back.
		tm.Reset(time.Second)
		task.Sleep(2 * time.Second)
		if tm.C.Len() != 1 {
			return errors.New("the fired timer's value is not in C")
		}
		if tm.Reset(time.Second) {
			return errors.New("Reset of a fired timer reported it active")
		}
		if tm.C.Len() != 0 {
			return errors.New("Reset left a stale value in C")
		}
		if v, _ := tm.C.Recv(task); v.Sub(sched.SimEpoch()) != time.Minute+3*time.Second {
			return fmt.Errorf("received %v, want the new deadline", v.Sub(sched.SimEpoch()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A Ticker ticks on its beat; one that nobody receives from drops ticks and
// does not keep a deadlocked run from being reported.
func TestTicker(t *testing.T) {
	took, err := virtual(func(task *sched.Task) error {
		tk := sched.NewTicker(task, time.Second)
		var got []time.Duration
		for range 3 {
			v, _ := tk.C.Recv(task)
			got = append(got, v.Sub(sched.SimEpoch()))
		}
		task.Sleep(5500 * time.Millisecond) // ticks at 4 s ... 8 s: one is kept
		v, _ := tk.C.Recv(task)
		got = append(got, v.Sub(sched.SimEpoch()))
		v, _ = tk.C.Recv(task)
		got = append(got, v.Sub(sched.SimEpoch()))
		if want := []time.Duration{1e9, 2e9, 3e9, 4e9, 9e9}; fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("ticks at %v, want %v", got, want)
		}
		tk.Reset(time.Minute)
		tk.Stop()
		return nil
	})
	if err != nil || took != 9*time.Second {
		t.Fatalf("Run = %v after %v", err, took)
	}

	_, err = virtual(func(task *sched.Task) error {
		tk := sched.NewTicker(task, time.Second)
		defer tk.Stop()
		sched.NewChan[int](0).Recv(task) // nothing will ever send
		return nil
	})
	if !errors.Is(err, sched.ErrDeadlock) || !strings.Contains(err.Error(), "chan receive") {
		t.Fatalf("a task waiting for nothing beside a ticker: Run = %v, want a deadlock", err)
	}
}
