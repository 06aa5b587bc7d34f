package storage

import (
	"context"
	"testing"
	"time"
)

func TestExportHandsOutEveryRecordInReferenceOrder(t *testing.T) {
	s := newTestStore(t)
	mustDo := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	mustDo(t, s.CreateBudget(&Budget{BudgetID: "b", CreatedAt: now, UpdatedAt: now}))
	mustDo(t, s.CreateUser(&User{UserID: "gone", CreatedAt: now, UpdatedAt: now}))
	mustDo(t, s.DeleteUser("gone", now))
	mustDo(t, s.CreateKey(&APIKey{ID: "k", KeyHash: "h", KeyPrefix: "gw-", UserID: "u", CreatedAt: now, IsActive: true},
		&User{UserID: "u", CreatedAt: now, UpdatedAt: now}))
	_, err := s.PutPrice(&Price{ModelKey: "p:m", CreatedAt: now, UpdatedAt: now})
	mustDo(t, err)
	mustDo(t, s.RecordUsage(context.Background(), &UsageRecord{ID: "r", UserID: "u", APIKeyID: "k", Timestamp: now,
		Cost: Dollars(1), UserPeriod: now})) // the key's period is the zero time

	var got []string
	var spend []OwnedSpend
	note := func(what string) error { got = append(got, what); return nil }
	mustDo(t, s.Export(Exporter{
		Budget: func(b *Budget) error { return note("budget " + b.BudgetID) },
		User:   func(u *User) error { return note("user " + u.UserID) },
		Key:    func(k *APIKey) error { return note("key " + k.ID) },
		Price:  func(p *Price) error { return note("price " + p.ModelKey) },
		Spend: func(sp OwnedSpend) error {
			spend = append(spend, sp)
			return note("spend " + string(rune(sp.Owner)) + "/" + sp.ID)
		},
		Usage: func(r *UsageRecord) error { return note("usage " + r.ID) },
	}))
	want := []string{"budget b", "user gone", "user u", "key k", "price p:m", "spend k/k", "spend u/u", "usage r"}
	if len(got) != len(want) {
		t.Fatalf("exported %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("exported %q, want %q", got, want)
		}
	}
	if !spend[0].Start.IsZero() || spend[0].Spend != Dollars(1) || !spend[1].Start.Equal(now) || spend[1].Spend != Dollars(1) {
		t.Errorf("spend counters %+v", spend)
	}
}
