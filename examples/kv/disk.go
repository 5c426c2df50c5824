package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/weavert/weave/sched"
)

// Disk keeps a replica's state across crashes. A replica stores its whole
// state at once, and sends nothing that depends on it before Store
// returned: a vote, an acknowledgement of entries, an answer to a client.
type Disk interface {
	// Load returns what the last Store that returned stored, or nil if
	// nothing was ever stored.
	Load(t *sched.Task) ([]byte, error)
	// Store replaces the stored state with data, durably once it returns
	// nil: a crash after that loses none of it. It keeps no reference to
	// data.
	Store(t *sched.Task, data []byte) error
}

// fileDisk is a Disk in a file: the real one. Files cannot be polled, so
// their system calls run through sched.Await, off the scheduler's threads.
type fileDisk struct{ path string }

func (d fileDisk) Load(t *sched.Task) ([]byte, error) {
	return sched.Await(t, func(context.Context) ([]byte, error) {
		b, err := os.ReadFile(d.path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return b, err
	})
}

// Store writes a new file, syncs it, and renames it over the old one, then
// syncs the directory, so that a crash at any point leaves the old state or
// the new one, whole.
func (d fileDisk) Store(t *sched.Task, data []byte) error {
	_, err := sched.Await(t, func(context.Context) (struct{}, error) {
		tmp := d.path + ".new"
		f, err := os.Create(tmp)
		if err != nil {
			return struct{}{}, err
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, d.path)
		}
		if err != nil {
			return struct{}{}, err
		}
		dir, err := os.Open(filepath.Dir(d.path))
		if err != nil {
			return struct{}{}, err
		}
		defer dir.Close()
		return struct{}{}, dir.Sync()
	})
	return err
}
