package storage

import (
	"bytes"
	"math"
	"sort"
	"testing"
	"time"
)

func TestTimestampEncodingKeepsOrder(t *testing.T) {
	t.Parallel()
	nanos := []int64{math.MinInt64, -1e18, -1, 0, 1, 1e9, testTime.UnixNano(), math.MaxInt64}
	encoded := make([][]byte, len(nanos))
	for i, n := range nanos {
		encoded[i] = make([]byte, timestampKeySize)
		putTimestamp(encoded[i], n)
		if got := timestampAt(encoded[i]); got != n {
			t.Errorf("timestampAt(putTimestamp(%d)) = %d", n, got)
		}
	}
	if !sort.SliceIsSorted(encoded, func(i, j int) bool { return bytes.Compare(encoded[i], encoded[j]) < 0 }) {
		t.Error("encoded timestamps are not in numeric order")
	}
}

func TestPrefixEnd(t *testing.T) {
	t.Parallel()
	tests := []struct{ prefix, want string }{
		{"usage/t/", "usage/t0"},
		{"usage/u/a\x00", "usage/u/a\x01"},
		{"a\xff", "b"},
	}
	for _, tt := range tests {
		if got := prefixEnd([]byte(tt.prefix)); string(got) != tt.want {
			t.Errorf("prefixEnd(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

func TestReverseSeekKeyBoundsEnd(t *testing.T) {
	t.Parallel()
	prefix := usageUserPrefix("a")
	end := testTime
	seek := reverseSeekKey(prefix, end)

	atEnd := concat(prefix, usageSuffix(end, "zzzz"))
	afterEnd := concat(prefix, usageSuffix(end.Add(time.Nanosecond), ""))
	if bytes.Compare(atEnd, seek) >= 0 {
		t.Errorf("a record at End sorts after the seek key")
	}
	if bytes.Compare(afterEnd, seek) < 0 {
		t.Errorf("a record after End sorts before the seek key")
	}
	if got, want := reverseSeekKey(prefix, time.Time{}), prefixEnd(prefix); !bytes.Equal(got, want) {
		t.Errorf("reverseSeekKey without End = %q, want %q", got, want)
	}
}
