package main

import (
	"math"
	"math/bits"
)

// histogram records durations in nanoseconds in log-linear buckets, in the
// manner of HdrHistogram: values below 2^subBits are exact, larger ones fall
// in one of 2^subBits buckets per power of two, so a reported value is
// within 1/2^(subBits+1) (0.4%) of a recorded one. Recording is a few
// instructions and never allocates; each worker owns one and they are merged
// at the end.
type histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

const (
	subBits    = 7
	subCount   = 1 << subBits
	numBuckets = (64 - subBits) * subCount
)

func bucketOf(v int64) int {
	if v < subCount {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	return (shift+1)<<subBits + int(v>>shift) - subCount
}

// bucketMid is the middle of bucket i's range.
func bucketMid(i int) float64 {
	if i < subCount {
		return float64(i)
	}
	shift := i>>subBits - 1
	low := int64(i&(subCount-1)+subCount) << shift
	return float64(low) + float64(int64(1)<<shift-1)/2
}

func (h *histogram) record(v int64) {
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
}

// quantile returns the value at quantile q (0..1), clamped to the exact
// minimum and maximum.
func (h *histogram) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank >= h.n {
		return float64(h.max) // the largest sample is known exactly
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := bucketMid(i)
			return math.Min(math.Max(v, float64(h.min)), float64(h.max))
		}
	}
	return float64(h.max)
}

func (h *histogram) mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}
