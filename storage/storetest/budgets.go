package storetest

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

func testBudgetLifecycle(t *testing.T, s Store) {
	b := &storage.Budget{
		BudgetID: newID("budget"), MaxBudget: ptr(storage.Dollars(10.000000001)), BudgetDurationSec: ptr(int64(3600)),
		CreatedAt: T0, UpdatedAt: T0,
	}
	if err := s.CreateBudget(b); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBudget(&storage.Budget{BudgetID: b.BudgetID, CreatedAt: T0, UpdatedAt: T0}); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second CreateBudget: %v, want ErrExists", err)
	}
	if got, err := s.GetBudget(b.BudgetID); err != nil || !reflect.DeepEqual(got, b) {
		t.Fatalf("GetBudget = %+v (%v), want %+v", got, err, b)
	}
	// A duration change keeps its history.
	got, err := s.UpdateBudget(b.BudgetID, func(b *storage.Budget) error {
		b.BudgetID = "ignored"
		b.DurationChanges = append(b.DurationChanges, storage.DurationChange{At: at(time.Hour), PreviousSec: b.BudgetDurationSec})
		b.BudgetDurationSec = ptr(int64(86400))
		b.MaxBudget = nil
		b.UpdatedAt = at(time.Hour)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &storage.Budget{
		BudgetID: b.BudgetID, BudgetDurationSec: ptr(int64(86400)), CreatedAt: T0, UpdatedAt: at(time.Hour),
		DurationChanges: []storage.DurationChange{{At: at(time.Hour), PreviousSec: ptr(int64(3600))}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("UpdateBudget = %+v, want %+v", got, want)
	}
	if stored, err := s.GetBudget(b.BudgetID); err != nil || !reflect.DeepEqual(stored, want) {
		t.Fatalf("stored budget = %+v (%v), want %+v", stored, err, want)
	}
	errVeto := errors.New("veto")
	if _, err := s.UpdateBudget(b.BudgetID, func(*storage.Budget) error { return errVeto }); err != errVeto {
		t.Fatalf("UpdateBudget with failing fn: %v", err)
	}
	if _, err := s.UpdateBudget("unknown", func(*storage.Budget) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UpdateBudget(unknown): %v", err)
	}

	more := []string{b.BudgetID}
	for range 3 {
		more = append(more, mustCreateBudget(t, s, nil).BudgetID)
	}
	for _, tc := range []struct{ skip, limit int }{{0, 10}, {1, 2}, {3, 5}} {
		list, err := s.ListBudgets(tc.skip, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(list, budgetID), more[min(tc.skip, 4):min(tc.skip+tc.limit, 4)]; !slices.Equal(got, want) {
			t.Errorf("ListBudgets(%d, %d) = %v, want %v", tc.skip, tc.limit, got, want)
		}
	}

	if err := s.DeleteBudget(b.BudgetID, T0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBudget(b.BudgetID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted budget: %v", err)
	}
	if err := s.DeleteBudget(b.BudgetID, T0); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleting twice: %v, want ErrNotFound", err)
	}
}

func testUsersNeedBudget(t *testing.T, s Store) {
	missing := "no-such-budget"
	if err := s.CreateUser(&storage.User{UserID: "olga", BudgetID: &missing, CreatedAt: T0, UpdatedAt: T0}); !errors.Is(err, storage.ErrBudgetMissing) {
		t.Fatalf("user on a missing budget: %v, want ErrBudgetMissing", err)
	}
	if _, err := s.GetUser("olga"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("user created anyway: %v", err)
	}
	mustCreateUser(t, s, "olga")
	if _, err := s.UpdateUser("olga", func(u *storage.User) error { u.BudgetID = &missing; return nil }); !errors.Is(err, storage.ErrBudgetMissing) {
		t.Fatalf("moving a user to a missing budget: %v, want ErrBudgetMissing", err)
	}
	b := mustCreateBudget(t, s, ptr(storage.Dollars(1)))
	if _, err := s.UpdateUser("olga", func(u *storage.User) error { u.BudgetID = &b.BudgetID; return nil }); err != nil {
		t.Fatal(err)
	}
}

func testDeleteBudgetClearsUsers(t *testing.T, s Store) {
	b := mustCreateBudget(t, s, ptr(storage.Dollars(1)))
	other := mustCreateBudget(t, s, ptr(storage.Dollars(2)))
	on := []string{"p1", "p2", "p3-deleted"}
	for _, id := range on {
		u := &storage.User{UserID: id, BudgetID: &b.BudgetID, BudgetStartedAt: ptr(T0), NextBudgetResetAt: ptr(at(time.Hour)), CreatedAt: T0, UpdatedAt: T0}
		if err := s.CreateUser(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteUser("p3-deleted", T0); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(&storage.User{UserID: "q", BudgetID: &other.BudgetID, CreatedAt: T0, UpdatedAt: T0}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBudget(b.BudgetID, at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, id := range on {
		u, err := s.GetUser(id)
		if err != nil {
			t.Fatal(err)
		}
		if u.BudgetID != nil || u.BudgetStartedAt != nil || u.NextBudgetResetAt != nil || !u.UpdatedAt.Equal(at(time.Minute)) {
			t.Fatalf("user %s after its budget was deleted: %+v", id, u)
		}
	}
	if u, _ := s.GetUser("q"); u.BudgetID == nil || *u.BudgetID != other.BudgetID || !u.UpdatedAt.Equal(T0) {
		t.Fatalf("user of another budget changed: %+v", u)
	}
}
