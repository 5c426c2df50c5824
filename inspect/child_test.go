package inspect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/weavert/weave/inspect"
	"github.com/weavert/weave/proc"
)

// startChild starts entry and watches it as name; the cleanup closes the
// Peer and reaps the child.
func startChild(t *testing.T, entry, name string) (*proc.Process, *inspect.Peer) {
	t.Helper()
	p, err := proc.Start(context.Background(), proc.Spec{Entry: entry})
	if err != nil {
		t.Fatal(err)
	}
	peer := inspect.Child(name, p)
	t.Cleanup(func() {
		peer.Close()
		p.Wait()
	})
	return p, peer
}

// One tree spans the parent and its child: the child's scheduler, threads
// and tasks come over its Conn.
func TestSnapshotChild(t *testing.T) {
	p, peer := startChild(t, "inspected", "kid")
	if m, err := peer.Recv(); err != nil || string(m) != "ready" {
		t.Fatalf("Recv = %q, %v", m, err)
	}
	var kid inspect.ChildProcess
	// The ten waiters and the main task park moments after "ready": ask
	// until they have.
	for try := 0; ; try++ {
		tree := inspect.Snapshot(context.Background(), inspect.Options{})
		if len(tree.Process.Children) != 1 {
			t.Fatalf("%d children in the tree, want 1", len(tree.Process.Children))
		}
		kid = tree.Process.Children[0]
		if kid.Error != "" || kid.Process == nil {
			t.Fatalf("child entry %+v", kid)
		}
		if parked(kid.Process) == 11 || try == 1000 {
			break
		}
	}
	if kid.Name != "kid" || kid.PID != p.PID() || kid.Process.PID != p.PID() {
		t.Errorf("child %q pid %d (process %d), want kid %d", kid.Name, kid.PID, kid.Process.PID, p.PID())
	}
	if len(kid.Process.Schedulers) != 1 {
		t.Fatalf("%d schedulers in the child", len(kid.Process.Schedulers))
	}
	sc := kid.Process.Schedulers[0]
	if sc.Name != "child" || len(sc.Threads) != 2 {
		t.Fatalf("scheduler %q with %d threads, want child with 2", sc.Name, len(sc.Threads))
	}
	main, _ := taskNamed(sc, "main")
	if main.Thread < 0 || sc.Threads[main.Thread].TID == 0 {
		t.Errorf("thread %d ran the main task and has no TID under LockThreads", main.Thread)
	}
	if n := parked(kid.Process); n != 11 {
		t.Errorf("%d tasks parked, want 10 waiters and main", n)
	}
	if main.State != "parked" || main.Wait != "Await" {
		t.Errorf("the child's main task = %+v, want parked in Await", main)
	}

	// The trace spans both processes, with the "ready" message as an arrow
	// from the child's main task to the parent's lane for the child.
	var buf bytes.Buffer
	if err := inspect.WriteTrace(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	tr := checkTrace(t, buf.Bytes())
	if !tr.pids[p.PID()] {
		t.Errorf("no events of the child (pid %d) in the trace", p.PID())
	}
	if tr.flows["msg"] != 1 {
		t.Errorf("%d message arrows, want 1", tr.flows["msg"])
	}
	if tr.names[p.PID()] != "kid (pid "+itoa(p.PID())+")" {
		t.Errorf("the child's process is named %q", tr.names[p.PID()])
	}
}

func parked(p *inspect.Process) int {
	n := 0
	for _, s := range p.Schedulers {
		for _, t := range s.Tasks {
			if strings.HasPrefix(t.Name, "waiter-") && t.State == "parked" && strings.Contains(t.Wait, "sched.Chan") ||
				t.Name == "main" && t.State == "parked" && t.Wait == "Await" {
				n++
			}
		}
	}
	return n
}

// A child that answers garbage, one that never answers and one that has
// gone are error entries in the tree; Snapshot returns in every case.
func TestSnapshotBadChildren(t *testing.T) {
	_, garbage := startChild(t, "garbage", "garbage")
	_, mute := startChild(t, "mute", "mute")
	gone, _ := startChild(t, "inspected", "gone")
	gone.Kill()
	gone.Wait()

	opts := inspect.Options{Timeout: 200 * time.Millisecond}
	tree := inspect.Snapshot(context.Background(), opts)
	errs := map[string]string{}
	for _, c := range tree.Process.Children {
		if c.Process != nil {
			t.Errorf("child %s has a snapshot", c.Name)
		}
		errs[c.Name] = c.Error
	}
	for name, want := range map[string]string{
		"garbage": "malformed answer",
		"mute":    "no answer",
		"gone":    "connection ended",
	} {
		if !strings.Contains(errs[name], want) || !strings.Contains(errs[name], name) {
			t.Errorf("child %s: error %q, want one saying %q", name, errs[name], want)
		}
	}
	if _, err := garbage.Snapshot(context.Background(), opts); !errors.Is(err, inspect.ErrBadAnswer) {
		t.Errorf("garbage: %v, want ErrBadAnswer", err)
	}
	if _, err := mute.Snapshot(context.Background(), opts); !errors.Is(err, inspect.ErrNoAnswer) {
		t.Errorf("mute: %v, want ErrNoAnswer", err)
	}
	// The trace comes without them, and says why.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var buf bytes.Buffer
	if err := inspect.WriteTrace(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	var tr inspect.Trace
	if err := json.Unmarshal(buf.Bytes(), &tr); err != nil {
		t.Fatal(err)
	}
	if errs, _ := tr.OtherData["errors"].([]any); len(errs) != 3 {
		t.Errorf("trace errors %v, want one per bad child", tr.OtherData["errors"])
	}
}

// A Peer passes the program's messages both ways, and Recv ends with the
// Conn.
func TestPeerMessages(t *testing.T) {
	a, b := connPair(t)
	pa, pb := inspect.Parent(a), inspect.Parent(b)
	for _, m := range []string{"one", "", "three"} {
		if err := pa.Send([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"one", "", "three"} {
		if got, err := pb.Recv(); err != nil || string(got) != want {
			t.Fatalf("Recv = %q, %v; want %q", got, err, want)
		}
	}
	// Each side answers the other's requests by itself.
	if p, err := pa.Snapshot(context.Background(), inspect.Options{}); err != nil || p.PID == 0 {
		t.Fatalf("Snapshot over the pair: %+v, %v", p, err)
	}
	pa.Close()
	if _, err := pb.Recv(); err != io.EOF {
		t.Errorf("Recv after the other side closed: %v, want io.EOF", err)
	}
	pb.Close()
	if _, err := pb.Snapshot(context.Background(), inspect.Options{}); err == nil {
		t.Errorf("Snapshot over a closed Peer succeeded")
	}
}
