package llmgateway

import (
	"bytes"
	"errors"
	"testing"
	"testing/iotest"

	"github.com/llmgateway/caddy-llm-gateway/storage"
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

// A money field that is not a number says what it takes.
func TestMoneyFieldErrorSaysDollars(t *testing.T) {
	t.Parallel()
	var dst struct {
		MaxBudget *storage.Money `json:"max_budget"`
	}
	err := decodeStrict([]byte(`{"max_budget":"5"}`), &dst)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Message != "Field 'max_budget' must be a number of US dollars, at most 9223372036.854775807" {
		t.Fatalf("error = %v", err)
	}
}
