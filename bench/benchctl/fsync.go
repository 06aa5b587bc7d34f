package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// cmdFsync measures this machine's fsync where the store lives, as the
// store syncs its write-ahead log: n times, write 512 bytes at the next
// offset of a preallocated file and fdatasync it. It prints the p50, p90
// and p99 in ms as JSON.
func cmdFsync(args []string) error {
	fs := flag.NewFlagSet("fsync", flag.ExitOnError)
	dir := fs.String("dir", os.TempDir(), "directory on the file system to measure")
	n := fs.Int("n", 1000, "fsyncs to time")
	_ = fs.Parse(args)
	if *n < 1 {
		return fmt.Errorf("-n must be at least 1")
	}

	f, err := os.CreateTemp(*dir, "fsync-probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(filepath.Join(*dir, filepath.Base(f.Name())))
	defer f.Close()
	buf := make([]byte, 512)
	if err := f.Truncate(int64(*n * len(buf))); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	times := make([]float64, 0, *n)
	for i := range *n {
		if _, err := f.WriteAt(buf, int64(i*len(buf))); err != nil {
			return err
		}
		t := time.Now()
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return err
		}
		times = append(times, float64(time.Since(t).Microseconds())/1000)
	}
	slices.Sort(times)
	at := func(p float64) float64 { return times[int(p*float64(len(times)-1))] }
	out, err := json.MarshalIndent(map[string]any{
		"count": len(times), "p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99),
	}, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}
