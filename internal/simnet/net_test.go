package simnet

import (
	"cmp"
	"slices"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The hand-written heap of deliveries pops in the order of a sort by time,
// then by the order of scheduling, whatever the pushes and pops between.
func FuzzEventQueue(f *testing.F) {
	f.Add([]byte{5, 3, 3, 0, 9, 1, 0, 0, 2})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var q eventQueue
		var model []event
		seq := uint64(0)
		for _, op := range ops {
			if op == 0 {
				if len(model) == 0 {
					continue
				}
				slices.SortFunc(model, func(a, b event) int {
					return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.seq, b.seq))
				})
				want := model[0]
				model = model[1:]
				if got := q.pop(); got.at != want.at || got.seq != want.seq {
					t.Fatalf("popped (%d, %d), want (%d, %d)", got.at, got.seq, want.at, want.seq)
				}
				continue
			}
			seq++
			e := event{at: int64(op % 8), seq: seq}
			q.push(e)
			model = append(model, e)
		}
		if len(q) != len(model) {
			t.Fatalf("%d events left, want %d", len(q), len(model))
		}
	})
}

func TestSplitHostPort(t *testing.T) {
	for _, c := range []struct{ in, host, port string }{
		{"db1:7000", "db1", "7000"},
		{":7000", "", "7000"},
		{"[::1]:80", "::1", "80"},
	} {
		h, p, err := splitHostPort(c.in)
		if err != nil || h != c.host || p != c.port {
			t.Errorf("splitHostPort(%q) = %q, %q, %v", c.in, h, p, err)
		}
	}
	if _, _, err := splitHostPort("nohost"); err == nil {
		t.Error("an address with no port was accepted")
	}
	for _, bad := range []string{"", "x", "65536", "123456"} {
		if _, err := parsePort(bad); err == nil {
			t.Errorf("parsePort(%q) accepted", bad)
		}
	}
}
