package sched

import (
	"fmt"
	"strconv"
)

// WaitKind is what a task that stopped running waits for.
type WaitKind uint8

const (
	WaitYield     WaitKind = iota // it yielded: it is runnable again at once
	WaitSleep                     // Task.Sleep
	WaitRecv                      // Chan.Recv
	WaitSend                      // Chan.Send
	WaitSelect                    // Select
	WaitLock                      // Mutex.Lock
	WaitRWLock                    // RWMutex.Lock
	WaitRWRLock                   // RWMutex.RLock
	WaitCond                      // Cond.Wait
	WaitWaitGroup                 // WaitGroup.Wait, Group.Wait
	WaitAwait                     // Await
)

var waitKindNames = [...]string{
	WaitYield:     "yield",
	WaitSleep:     "sleep",
	WaitRecv:      "chan receive",
	WaitSend:      "chan send",
	WaitSelect:    "select",
	WaitLock:      "Mutex.Lock",
	WaitRWLock:    "RWMutex.Lock",
	WaitRWRLock:   "RWMutex.RLock",
	WaitCond:      "Cond.Wait",
	WaitWaitGroup: "WaitGroup.Wait",
	WaitAwait:     "Await",
}

func (k WaitKind) String() string {
	if int(k) < len(waitKindNames) {
		return waitKindNames[k]
	}
	return "WaitKind(" + strconv.Itoa(int(k)) + ")"
}

// WaitReason is why a task stopped running: what it waits for, and on what.
// Tracer.Park receives one at every park. It is a small value that nothing
// formats until someone prints it, as the runtime's own wait reasons are:
// a tracer that only counts, or compares the Kind, pays nothing for words.
type WaitReason struct {
	Kind WaitKind
	on   waitable // the object waited on; nil if none
}

// waitable is what a task can wait on: a primitive, or a Select's cases.
type waitable interface {
	// appendWait appends the object, each object in it named by name, and
	// what does not change about it (a Chan's capacity); with live, also
	// its state now (who holds a Mutex), read with its own lock or atomics.
	appendWait(b []byte, name func(obj any) string, live bool) []byte
}

// String describes r: "chan receive on *sched.Chan[int] 0xc000104000
// (cap 0)". It reads only what does not change, so it may be called at any
// time, from any goroutine.
func (r WaitReason) String() string { return r.format(typeAndAddress, false) }

// Detail is String with the object's state as it is when Detail is called:
// the tasks that hold a Mutex or RWMutex, a WaitGroup's counter. It may be
// called at any time, from any goroutine.
func (r WaitReason) Detail() string { return r.format(typeAndAddress, true) }

// Format is Detail with each object named by name rather than by its type
// and address: a tracer that wants the same text in two runs of the same
// program names objects by the order it first saw them.
func (r WaitReason) Format(name func(obj any) string) string { return r.format(name, true) }

func (r WaitReason) format(name func(obj any) string, live bool) string {
	b := []byte(r.Kind.String())
	if r.on != nil {
		b = append(b, " on "...)
		b = r.on.appendWait(b, name, live)
	}
	return string(b)
}

func typeAndAddress(obj any) string { return fmt.Sprintf("%T %p", obj, obj) }

// setWait records what t, about to park, waits for.
func (t *Task) setWait(kind WaitKind, on waitable) {
	t.waitKind, t.waitOn = kind, on
}

// waitReason is what t waits for, while it is parked.
func (t *Task) waitReason() WaitReason { return WaitReason{t.waitKind, t.waitOn} }
