package storage

import (
	"os"
	"syscall"
)

// datasync flushes f's data to the disk with fdatasync: Badger's logs are
// preallocated, so their data is all there is to flush, and a changed
// mtime alone would cost a journal commit more.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
