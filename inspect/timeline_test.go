package inspect

import (
	"bytes"
	"testing"
)

// FuzzTimeline writes records of random weights into the timeline of one
// thread, and checks it against the trivial reference, every record written
// in a slice: at each read, what the thread gives a reader is the end of
// the reference, the events it holds are at most MaxEvents and, once it
// dropped any, at least seven eighths of that, and what it says it dropped
// is the rest.
func FuzzTimeline(f *testing.F) {
	f.Add(uint16(48), []byte{0, 1, 2, 2, 2, 0x80, 0, 0, 1, 0x82, 1})
	f.Add(uint16(50), bytes.Repeat([]byte{0x80}, 300))    // light records: chunks grow
	f.Add(uint16(1000), bytes.Repeat([]byte{0x82}, 2000)) // heavy ones
	f.Add(uint16(3), bytes.Repeat([]byte{0x81, 2, 0}, 100))
	f.Add(uint16(0), bytes.Repeat([]byte{0x82, 0x81}, 500)) // the default: nothing dropped
	f.Fuzz(func(t *testing.T, max uint16, ops []byte) {
		r := &Recorder{cfg: Config{MaxEvents: maxEvents(int(max))}}
		limit := r.cfg.MaxEvents
		th := &thread{}
		var ref []int // the weight of each record written; record i has task i
		for i, op := range ops {
			w := 1 + int(op&0x7f)%maxWeight // the high bit: read after it
			th.put(r, w, event{task: uint64(i)})
			th.pub.Store(int32(th.n)) // as the end of a segment does
			ref = append(ref, w)
			if op&0x80 == 0 && i < len(ops)-1 {
				continue
			}
			got, dropped := th.events()
			first := len(ref) - len(got)
			for j, e := range got {
				if e.task != uint64(first+j) {
					t.Fatalf("after %d records: record %d of %d read is %d, want %d", len(ref), j, len(got), e.task, first+j)
				}
			}
			var lost, held int
			for _, w := range ref[:first] {
				lost += w
			}
			for _, w := range ref[first:] {
				held += w
			}
			if dropped != uint64(lost) {
				t.Fatalf("after %d records: %d events dropped, want %d", len(ref), dropped, lost)
			}
			if held > limit || lost > 0 && held*8 < limit*7 {
				t.Fatalf("after %d records: %d events held with MaxEvents %d (%d dropped)", len(ref), held, limit, lost)
			}
		}
	})
}
