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
func (r *statsTracer) Resume(*sched.Task, int)            {}
func (r *statsTracer) Park(*sched.Task, sched.WaitReason) {}
func (r *statsTracer) Wake(t, by *sched.Task)             {}
func (r *statsTracer) Done(t *sched.Task, err error) {
	r.mu.Lock()
	r.final[t.Name()] = t.Stats()
	r.mu.Unlock()
}

func spinFor(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

func TestTaskStats(t *testing.T) {
	for _, timed := range []bool{false, true} {
		r := &statsTracer{final: map[string]sched.TaskStats{}, where: map[string]string{}}
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
				spinFor(3 * time.Millisecond)
				t.Yield()
				spinFor(3 * time.Millisecond)
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
		if spin < 6*time.Millisecond {
			t.Errorf("spinner ran %v, want at least 6ms", spin)
		}
		if idle >= spin/10 {
			t.Errorf("idle task ran %v, spinner %v", idle, spin)
		}
		if w := r.where["spinner"]; !strings.Contains(w, "stats_test.go") {
			t.Errorf("CreatedAt = %q, want this file", w)
		}
	}
}
