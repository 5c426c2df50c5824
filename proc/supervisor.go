package proc

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Strategy is what a Supervisor does when a child fails, as in Erlang/OTP.
type Strategy int

const (
	// OneForOne restarts only the child that failed.
	OneForOne Strategy = iota
	// OneForAll stops all other children and restarts them all: for
	// children that cannot work without each other.
	OneForAll
	// RestForOne stops the children started after the failed one and
	// restarts it and them: for children that depend on the ones before
	// them.
	RestForOne
)

func (s Strategy) String() string {
	switch s {
	case OneForOne:
		return "one_for_one"
	case OneForAll:
		return "one_for_all"
	case RestForOne:
		return "rest_for_one"
	}
	return "Strategy(" + fmt.Sprint(int(s)) + ")"
}

// Restart says when a child is restarted, as in Erlang/OTP.
type Restart int

const (
	// Permanent children are always restarted.
	Permanent Restart = iota
	// Transient children are restarted only if they fail: exit with a
	// status other than 0 or die of a signal. An exit with status 0 removes
	// them.
	Transient
	// Temporary children are never restarted, and their exit never makes
	// the supervisor restart others.
	Temporary
)

func (r Restart) String() string {
	switch r {
	case Permanent:
		return "permanent"
	case Transient:
		return "transient"
	case Temporary:
		return "temporary"
	}
	return "Restart(" + fmt.Sprint(int(r)) + ")"
}

// Child describes one child of a Supervisor.
type Child struct {
	Name    string // unique within the supervisor; used in logs and errors
	Spec    Spec
	Restart Restart
	// Shutdown is the grace period between SIGTERM and SIGKILL when the
	// supervisor stops this child; 0 means DefaultShutdown.
	Shutdown time.Duration
}

// DefaultShutdown is the grace period of a Child whose Shutdown is 0.
const DefaultShutdown = 5 * time.Second

// Supervisor starts child processes and restarts them when they fail,
// following Erlang/OTP's supervisor: a strategy, a restart type per child, and
// a restart intensity beyond which it gives up.
//
// Set the exported fields before calling Run and not after.
type Supervisor struct {
	// At most MaxRestarts restarts are allowed within any Period; one more
	// and the supervisor stops every child and Run returns an error
	// wrapping ErrTooManyRestarts that names the child and how it failed.
	// NewSupervisor sets 3 in 5 seconds.
	MaxRestarts int
	Period      time.Duration
	// Logger receives one record per start, exit and restart of a child;
	// NewSupervisor sets slog.Default().
	Logger *slog.Logger
	// Started, if set, is called after each start of a child, restarts
	// included, with the new Process: the way to hand each incarnation's
	// Conn to whoever talks to it. It runs on the supervisor's goroutine
	// and must not block; the child's exit is not handled until it returns.
	Started func(child string, p *Process)

	strategy Strategy
	specs    []Child

	mu      sync.Mutex
	running bool
	procs   []*Process // latest incarnation of each child, by index
}

// NewSupervisor returns a supervisor of children with the given strategy.
// The children are started in order and stopped in reverse order. It panics if
// two children have the same name or a child has no name.
func NewSupervisor(strategy Strategy, children ...Child) *Supervisor {
	seen := map[string]bool{}
	for _, c := range children {
		if c.Name == "" {
			panic("proc: supervisor child without a Name")
		}
		if seen[c.Name] {
			panic("proc: two supervisor children named " + c.Name)
		}
		seen[c.Name] = true
	}
	return &Supervisor{
		MaxRestarts: 3,
		Period:      5 * time.Second,
		Logger:      slog.Default(),
		strategy:    strategy,
		specs:       slices.Clone(children),
		procs:       make([]*Process, len(children)),
	}
}

// Process returns the latest incarnation of the named child: the running
// one, or the last one if it is not running; nil if it never started. It may
// be called from any goroutine, during and after Run; a restart may replace
// the result at any moment (Started says when). It panics if no child has
// that name.
func (s *Supervisor) Process(name string) *Process {
	i := slices.IndexFunc(s.specs, func(c Child) bool { return c.Name == name })
	if i < 0 {
		panic("proc: supervisor has no child named " + name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.procs[i]
}

type exitEvent struct {
	i int
	p *Process
}

// Run starts the children in order and supervises them until ctx is done or
// the restart intensity is exceeded; either way it stops every child before
// it returns (SIGTERM, the child's Shutdown grace, then SIGKILL; in reverse
// start order). It returns ctx.Err() after a shutdown through ctx, an error
// wrapping ErrTooManyRestarts when it gave up, or the error of a child that
// could not be started at first.
//
// Children run with a context detached from ctx: a done ctx stops them
// gracefully rather than killing them. Run may be called once; a second call
// panics.
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		panic("proc: Supervisor.Run called twice")
	}
	s.running = true
	s.mu.Unlock()

	r := &run{
		s:       s,
		ctx:     context.WithoutCancel(ctx),
		cur:     make([]*Process, len(s.specs)),
		removed: make([]bool, len(s.specs)),
		events:  make(chan exitEvent),
		quit:    make(chan struct{}),
	}
	defer func() {
		r.stopFrom(0)
		close(r.quit)
		r.watchers.Wait()
	}()
	for i := range s.specs {
		if err := r.start(i); err != nil {
			return fmt.Errorf("proc: supervisor: start child %q: %w", s.specs[i].Name, err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			s.Logger.Info("proc: supervisor shutting down", "cause", context.Cause(ctx))
			return ctx.Err()
		case ev := <-r.events:
			if r.cur[ev.i] != ev.p {
				continue // an incarnation we stopped ourselves
			}
			if err := r.exited(ev.i); err != nil {
				return err
			}
		}
	}
}

// run is the state of one Supervisor.Run; only Run's goroutine touches it.
type run struct {
	s        *Supervisor
	ctx      context.Context
	cur      []*Process // running incarnations; nil when stopped
	removed  []bool     // temporary or finished transient children
	restarts []time.Time
	events   chan exitEvent
	quit     chan struct{}
	watchers sync.WaitGroup
}

func (r *run) start(i int) error {
	c := &r.s.specs[i]
	p, err := Start(r.ctx, c.Spec)
	if err != nil {
		r.s.Logger.Error("proc: child failed to start", "child", c.Name, "err", err)
		return err
	}
	r.cur[i] = p
	r.s.mu.Lock()
	r.s.procs[i] = p
	r.s.mu.Unlock()
	r.s.Logger.Info("proc: child started", "child", c.Name, "pid", p.PID())
	if r.s.Started != nil {
		r.s.Started(c.Name, p)
	}
	r.watchers.Add(1)
	go func() {
		defer r.watchers.Done()
		select {
		case <-p.Done():
		case <-r.quit:
			return
		}
		select {
		case r.events <- exitEvent{i, p}:
		case <-r.quit:
		}
	}()
	return nil
}

// exited handles the exit of child i's current incarnation.
func (r *run) exited(i int) error {
	c := &r.s.specs[i]
	p := r.cur[i]
	r.cur[i] = nil
	_, why := p.Wait()
	reason := "exit status 0"
	if why != nil {
		reason = why.Error()
	}
	if c.Restart == Temporary || c.Restart == Transient && why == nil {
		r.removed[i] = true
		r.s.Logger.Info("proc: child exited", "child", c.Name, "pid", p.PID(), "reason", reason, "restart", c.Restart.String())
		return nil
	}
	if why == nil {
		why = fmt.Errorf("proc: %s exited with status 0", p)
	}
	for {
		if err := r.allowRestart(c.Name, why); err != nil {
			return err
		}
		r.s.Logger.Warn("proc: restarting child", "child", c.Name, "pid", p.PID(), "reason", reason,
			"strategy", r.s.strategy.String(), "restarts", len(r.restarts))
		err := r.restart(i)
		if err == nil {
			return nil
		}
		why, reason = err, err.Error()
	}
}

// allowRestart records one restart and reports ErrTooManyRestarts when it is
// one more than MaxRestarts within Period.
func (r *run) allowRestart(name string, why error) error {
	now := time.Now()
	r.restarts = slices.DeleteFunc(r.restarts, func(t time.Time) bool { return now.Sub(t) >= r.s.Period })
	r.restarts = append(r.restarts, now)
	if len(r.restarts) <= r.s.MaxRestarts {
		return nil
	}
	r.s.Logger.Error("proc: supervisor giving up", "child", name, "reason", why.Error(),
		"max_restarts", r.s.MaxRestarts, "period", r.s.Period)
	return fmt.Errorf("%w (more than %d in %v): child %q failed: %w", ErrTooManyRestarts, r.s.MaxRestarts, r.s.Period, name, why)
}

// restart applies the strategy after child i failed.
func (r *run) restart(i int) error {
	first := i
	switch r.s.strategy {
	case OneForAll:
		first = 0
		r.stopFrom(0)
	case RestForOne:
		r.stopFrom(i + 1)
	}
	for j := first; j < len(r.s.specs); j++ {
		if r.cur[j] != nil || r.removed[j] || j != i && r.s.strategy == OneForOne {
			continue
		}
		if err := r.start(j); err != nil {
			return fmt.Errorf("proc: restart child %q: %w", r.s.specs[j].Name, err)
		}
	}
	return nil
}

// stopFrom stops children from, from+1, … in reverse order. A temporary child
// stopped this way is not restarted.
func (r *run) stopFrom(from int) {
	for j := len(r.cur) - 1; j >= from; j-- {
		p := r.cur[j]
		if p == nil {
			continue
		}
		r.cur[j] = nil
		c := &r.s.specs[j]
		if c.Restart == Temporary {
			r.removed[j] = true
		}
		grace := c.Shutdown
		if grace == 0 {
			grace = DefaultShutdown
		}
		_, err := p.Stop(grace)
		r.s.Logger.Info("proc: child stopped", "child", c.Name, "pid", p.PID(), "result", errString(err))
	}
}

func errString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
