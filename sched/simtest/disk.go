package simtest

import (
	"slices"
	"time"

	"github.com/weavert/weave/internal/simhost"
	"github.com/weavert/weave/sched"
)

// Disk is a host's durable store: named files, each written whole. What
// was written survives a crash of the host only if a Sync finished after
// it, as with fsync: a crash loses every write made since the last Sync,
// and a Sync under way when the host crashes did not happen. Many real
// bugs are a write acknowledged before it was synced; a Disk finds them.
//
// Writes and deletes are decision points, and Sync takes a while of
// virtual time (drawn from the seed, 1 to 10 ms), so that a crash can fall
// between a write and its Sync, or during the Sync.
type Disk struct {
	h       *Host
	files   map[string][]byte // what reads see
	durable map[string][]byte // what a crash leaves
}

func newDisk(h *Host) *Disk {
	return &Disk{h: h, files: make(map[string][]byte), durable: make(map[string][]byte)}
}

// DiskOf returns the disk of t's host. It panics if t belongs to no host of
// a World.
func DiskOf(t *sched.Task) *Disk {
	sh := simhost.Of(t)
	ri := infoOf(t.Context())
	if sh != nil && ri != nil {
		for _, w := range ri.worlds {
			for _, h := range w.hosts {
				if h.sim == sh {
					return h.disk
				}
			}
		}
	}
	panic("simtest: DiskOf a task of no simulated host")
}

// Disk returns h's disk.
func (h *Host) Disk() *Disk { return h.disk }

// Read returns a copy of the file's content, and whether it exists.
func (d *Disk) Read(name string) ([]byte, bool) {
	b, ok := d.files[name]
	return slices.Clone(b), ok
}

// Write replaces the file's content with a copy of data, by t. It is not
// durable until Sync.
func (d *Disk) Write(t *sched.Task, name string, data []byte) {
	t.Yield()
	d.files[name] = slices.Clone(data)
}

// Delete removes the file, by t; not durably until Sync.
func (d *Disk) Delete(t *sched.Task, name string) {
	t.Yield()
	delete(d.files, name)
}

// Names returns the names of the files, sorted.
func (d *Disk) Names() []string {
	names := make([]string, 0, len(d.files))
	for n := range d.files {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Sync makes every write and delete so far durable, once it returns; it
// parks t for the disk's latency, and returns t's context's error if that
// ends first (then nothing was synced).
func (d *Disk) Sync(t *sched.Task) error {
	snapshot := make(map[string][]byte, len(d.files))
	for n, b := range d.files {
		snapshot[n] = b // files are replaced whole, never changed in place
	}
	lat := time.Millisecond + time.Duration(d.h.w.net.Rand().Int64N(int64(9*time.Millisecond)))
	if err := t.Sleep(lat); err != nil {
		return err
	}
	d.durable = snapshot
	return nil
}

// crash forgets what was not synced.
func (d *Disk) crash() {
	d.files = make(map[string][]byte, len(d.durable))
	for n, b := range d.durable {
		d.files[n] = b
	}
}
