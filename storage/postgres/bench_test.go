package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// BenchmarkAdmitAndSettle measures one request's metering in PostgreSQL
// mode: an admission against a user and a key budget and an RPM rule
// (one statement), then the settlement of its usage record and hold,
// from parallel goroutines whose settlements are group-committed. All
// requests bill the same user and key, the worst case for contention.
// Requests are a second apart, so the rate window holds a minute's worth.
func BenchmarkAdmitAndSettle(b *testing.B) {
	s := openTestStore(b)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			req := admitReq(t0.Add(time.Duration(i)*time.Second), 1000, dollars(1e6), dollars(1e6))
			req.LeaseUntil = req.Now.Add(time.Hour)
			req.Rates = []AdmitRate{{Account: alice, RPM: 1000}}
			if _, err := s.Admit(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
			rec := usage(fmt.Sprint("bench-", i), 900)
			if err := s.Settle(context.Background(), Settlement{HoldID: req.HoldID, Tokens: 10, Records: []*storage.UsageRecord{rec}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
