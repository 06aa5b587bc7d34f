package storage

import (
	"os"
	"strconv"
	"syscall"
	"testing"
)

// BenchmarkFdatasync is the floor of BenchmarkRecordUsageSerial/fsync:
// size bytes written at the next offset of a preallocated 64 MiB file,
// then fdatasync. pwrite writes with a system call, as benchctl fsync
// does; mmap writes through a shared memory mapping, as Badger writes its
// logs. The gap between the two is what syncing a memory-mapped log costs
// on top of the data itself (write-protecting each dirty page again, with
// the TLB shootdowns that takes, and faulting it writable on the next
// write).
func BenchmarkFdatasync(b *testing.B) {
	for _, mode := range []string{"pwrite", "mmap"} {
		for _, size := range []int{512, 1536} {
			b.Run(mode+"-"+strconv.Itoa(size), func(b *testing.B) {
				benchFdatasync(b, mode == "mmap", size)
			})
		}
	}
}

func benchFdatasync(b *testing.B, mmap bool, size int) {
	const fileSize = 64 << 20
	f, err := os.CreateTemp(b.TempDir(), "fsync-*")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(fileSize); err != nil {
		b.Fatal(err)
	}
	var m []byte
	if mmap {
		if m, err = syscall.Mmap(int(f.Fd()), 0, fileSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED); err != nil {
			b.Fatal(err)
		}
		defer syscall.Munmap(m)
	}
	buf := make([]byte, size)
	off := 0
	for b.Loop() {
		if mmap {
			copy(m[off:], buf)
		} else if _, err := f.WriteAt(buf, int64(off)); err != nil {
			b.Fatal(err)
		}
		off = (off + size) % (fileSize - size)
		if err := datasync(f); err != nil {
			b.Fatal(err)
		}
	}
}
