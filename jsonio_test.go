package llmgateway

import (
	"bytes"
	"errors"
	"testing"
	"testing/iotest"
)

func TestReadAllSized(t *testing.T) {
	t.Parallel()
	const limit = 5<<20 + 3
	for _, size := range []int{0, 1, 64 << 10, 64<<10 + 1, 3 << 20, limit - 1, limit, limit + 1, 2 * limit} {
		data := bytes.Repeat([]byte("abcdefg"), size/7+1)[:size]
		for _, declared := range []int64{-1, int64(size), int64(size) / 2, limit + 10} {
			got, err := readAllSized(iotest.HalfReader(bytes.NewReader(data)), declared, limit)
			switch {
			case size > limit:
				if !errors.Is(err, errOverLimit) || got != nil {
					t.Errorf("size %d declared %d: %d bytes, error %v; want errOverLimit", size, declared, len(got), err)
				}
			case err != nil || !bytes.Equal(got, data):
				t.Errorf("size %d declared %d: %d bytes, error %v", size, declared, len(got), err)
			}
		}
	}
	if _, err := readAllSized(iotest.ErrReader(errors.New("boom")), -1, limit); err == nil || errors.Is(err, errOverLimit) {
		t.Errorf("read error lost: %v", err)
	}
}
