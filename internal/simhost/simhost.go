// Package simhost is what the scheduler knows of a simulated host: the tag
// that its tasks carry, and the hooks through which package simtest starts
// its tasks, crashes it and skews its clock. Package sched fills the hooks
// in; nothing else should call them.
package simhost

import (
	"context"
	"time"
)

// Host is a simulated host of a deterministic run. A deterministic run has
// one thread, so its fields need no lock: they are read and written by the
// run's tasks and its worker only.
type Host struct {
	Name string
	// Offset is added to what Task.Now returns to its tasks: the skew of
	// its clock. Timers and Sleep are not skewed: they measure durations.
	Offset time.Duration
	// Epoch is its incarnation, which each crash ends: a task started in
	// an earlier one is frozen.
	Epoch uint64
}

// The hooks that package sched fills in. The tasks are *sched.Task, the
// functions func(*sched.Task) error: this package cannot name them.
var (
	// Go starts f, named name, as the first task of h's current
	// incarnation, with ctx as its context, from the running task parent.
	// Its tasks, and theirs, belong to h. It belongs to no Group: a host
	// is a process of its own.
	Go func(parent any, ctx context.Context, h *Host, name string, f any)
	// Crash stops every task of h at once, by the running task by: none of
	// them runs again, and what wakes one is lost. Their deferred calls
	// run when the run ends, after everything else. If by is one of them,
	// Crash does not return.
	Crash func(by any, h *Host)
	// Of returns the host of task t, or nil.
	Of func(t any) *Host
)
