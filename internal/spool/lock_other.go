//go:build !unix

package spool

import (
	"errors"
	"os"
)

var errLocked = errors.New("held by another process")

// lockDir opens the lock file; without flock, the directory is not locked
// against another process on this platform.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
