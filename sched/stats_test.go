package sched_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weavert/weave/sched"
)

// statsTracer keeps each task's counters as Done reports them.
type statsTracer struct {
	mu    sync.Mutex
	final map[string]sched.TaskStats
	where map[string]string
}

func (r *statsTracer) Spawn(t, parent *sched.Task) {
	r.mu.Lock()
	r.where[t.Name()] = t.CreatedAt() // known from the spawn on
	r.mu.Unlock()
}
func (r *statsTracer) Resume(*sched.Task, int)              {}
func (r *statsTracer) Park(*sched.Task, sched.WaitReason)   {}
func (r *statsTracer) Rewait(*sched.Task, sched.WaitReason) {}
func (r *statsTracer) Wake(t, by *sched.Task)               {}
func (r *statsTracer) Done(t *sched.Task, err error) {
	r.mu.Lock()
	r.final[t.Name()] = t.Stats()
	r.mu.Unlock()
}

// spinFor keeps its thread busy for at least d and returns how long it did.
func spinFor(d time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < d {
	}
	return time.Since(start)
}

func TestTaskStats(t *testing.T) {
	for _, timed := range []bool{false, true} {
		r := &statsTracer{final: map[string]sched.TaskStats{}, where: map[string]string{}}
		var spun time.Duration
		opts := []sched.Option{sched.Threads(1), sched.WithTracer(r)}
		if timed {
			opts = append(opts, sched.MeasureRunTime())
		}
		err := sched.New(opts...).Run(func(task *sched.Task) error {
			// Two yielders, so that each Yield finds the other runnable
			// and really switches.
			for _, name := range []string{"yielder", "other"} {
				task.GoNamed(name, func(t *sched.Task) error {
					for range 5 {
						t.Yield()
					}
					return nil
				})
			}
			task.GoNamed("spinner", func(t *sched.Task) error {
				spun = spinFor(time.Millisecond)
				t.Yield()
				spun += spinFor(time.Millisecond)
				return nil
			})
			task.GoNamed("idle", func(t *sched.Task) error { return nil })
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.final["yielder"].Resumes; got != 6 {
			t.Errorf("yielder resumed %d times, want 6 (start + 5 yields)", got)
		}
		if got := r.final["spinner"].Resumes; got != 2 {
			t.Errorf("spinner resumed %d times, want 2", got)
		}
		if got := r.final["idle"].Resumes; got != 1 {
			t.Errorf("idle resumed %d times, want 1", got)
		}
		spin, idle := r.final["spinner"].Running, r.final["idle"].Running
		if !timed {
			if spin != 0 || idle != 0 {
				t.Errorf("run time without MeasureRunTime: %v, %v; want 0", spin, idle)
			}
			continue
		}
		// Its run segments hold its spinning, whatever else the machine
		// did meanwhile.
		if spin < spun {
			t.Errorf("spinner ran %v, but spun for %v", spin, spun)
		}
		if w := r.where["spinner"]; !strings.Contains(w, "stats_test.go") {
			t.Errorf("CreatedAt = %q, want this file", w)
		}
	}
}
