// Package atomicfile replaces files so that a reader, or the file after a
// crash or kill -9, sees either the old or the new content in full.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data: a temporary file in the same directory,
// fsync, rename over path, fsync of the directory. A missing directory is
// created.
func Write(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // makes the rename durable; not every file system supports it
		d.Close()
	}
	return nil
}

// RemoveLeftovers deletes the temporary files of writes to path that a
// crash interrupted.
func RemoveLeftovers(path string) {
	leftovers, _ := filepath.Glob(path + ".tmp-*")
	for _, l := range leftovers {
		os.Remove(l)
	}
}
