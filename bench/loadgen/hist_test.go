package main

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestBuckets(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 257, 1000, 1 << 20, 123456789, math.MaxInt64} {
		b := bucketOf(v)
		if b < prev || b >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d (previous %d)", v, b, prev)
		}
		prev = b
		if mid := bucketMid(b); math.Abs(mid-float64(v)) > float64(v)/256+1 {
			t.Errorf("bucketMid(bucketOf(%d)) = %v", v, mid)
		}
	}
}

func TestQuantiles(t *testing.T) {
	var h histogram
	rng := rand.New(rand.NewPCG(1, 2)) // fixed: the test must not depend on luck
	vals := make([]int64, 100000)
	for i := range vals {
		vals[i] = int64(rng.ExpFloat64() * 1e6)
		h.record(vals[i])
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := float64(vals[int(math.Ceil(q*float64(len(vals))))-1])
		if got := h.quantile(q); math.Abs(got-exact) > exact/200 {
			t.Errorf("q%v = %v, exact %v", q, got, exact)
		}
	}
	if h.quantile(1) != float64(vals[len(vals)-1]) {
		t.Errorf("max %v, want %v", h.quantile(1), vals[len(vals)-1])
	}
}
