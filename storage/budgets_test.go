package storage

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBudgetCRUD(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)

	var ids []string
	for i := range 3 {
		b := &Budget{
			BudgetID:          newID(t),
			MaxBudget:         ptr(Dollars(float64(10 * (i + 1)))),
			BudgetDurationSec: ptr(int64(86400)),
			CreatedAt:         testTime,
			UpdatedAt:         testTime,
		}
		if err := s.CreateBudget(b); err != nil {
			t.Fatalf("CreateBudget: %v", err)
		}
		ids = append(ids, b.BudgetID)
	}
	if err := s.CreateBudget(&Budget{BudgetID: ids[0]}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate CreateBudget: got %v, want ErrExists", err)
	}

	b, err := s.GetBudget(ids[1])
	if err != nil {
		t.Fatalf("GetBudget: %v", err)
	}
	if *b.MaxBudget != Dollars(20) || *b.BudgetDurationSec != 86400 {
		t.Errorf("GetBudget = %+v", b)
	}

	later := testTime.Add(time.Hour)
	updated, err := s.UpdateBudget(ids[1], func(b *Budget) error {
		b.MaxBudget = nil
		b.UpdatedAt = later
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateBudget: %v", err)
	}
	if stored, _ := s.GetBudget(ids[1]); !reflect.DeepEqual(stored, updated) || stored.MaxBudget != nil {
		t.Errorf("stored %+v, returned %+v", stored, updated)
	}
	errVeto := errors.New("veto")
	if _, err := s.UpdateBudget(ids[1], func(*Budget) error { return errVeto }); err != errVeto {
		t.Errorf("failing fn: got %v, want the fn's error", err)
	}

	list := func(skip, limit int) []string {
		t.Helper()
		budgets, err := s.ListBudgets(skip, limit)
		if err != nil {
			t.Fatalf("ListBudgets: %v", err)
		}
		got := []string{}
		for _, b := range budgets {
			got = append(got, b.BudgetID)
		}
		return got
	}
	if got := list(0, 10); !reflect.DeepEqual(got, ids) {
		t.Errorf("ListBudgets = %v, want %v", got, ids)
	}
	if got := list(1, 1); !reflect.DeepEqual(got, ids[1:2]) {
		t.Errorf("ListBudgets(1, 1) = %v, want %v", got, ids[1:2])
	}

	if err := s.DeleteBudget(ids[0], later); err != nil {
		t.Fatalf("DeleteBudget: %v", err)
	}
	if _, err := s.GetBudget(ids[0]); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetBudget after delete: got %v, want ErrNotFound", err)
	}
	if err := s.DeleteBudget(ids[0], later); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting again: got %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateBudget(ids[0], func(*Budget) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateBudget(deleted): got %v, want ErrNotFound", err)
	}
}

func TestDeleteBudgetClearsUsers(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)

	doomed, kept := "budget-doomed", "budget-kept"
	for _, id := range []string{doomed, kept} {
		if err := s.CreateBudget(&Budget{BudgetID: id}); err != nil {
			t.Fatalf("CreateBudget: %v", err)
		}
	}
	onBudget := func(id, budgetID string) {
		u := &User{
			UserID:            id,
			BudgetID:          ptr(budgetID),
			BudgetStartedAt:   ptr(testTime),
			NextBudgetResetAt: ptr(testTime.Add(24 * time.Hour)),
			CreatedAt:         testTime,
			UpdatedAt:         testTime,
		}
		if err := s.CreateUser(u); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
	}
	onBudget("u1", doomed)
	onBudget("u2", doomed)
	onBudget("u3", kept)
	mustCreateUser(t, s, "u4")

	now := testTime.Add(time.Hour)
	if err := s.DeleteBudget(doomed, now); err != nil {
		t.Fatalf("DeleteBudget: %v", err)
	}
	for _, id := range []string{"u1", "u2"} {
		u, err := s.GetUser(id)
		if err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		if u.BudgetID != nil || u.BudgetStartedAt != nil || u.NextBudgetResetAt != nil || !u.UpdatedAt.Equal(now) {
			t.Errorf("user %s still on the deleted budget: %+v", id, u)
		}
	}
	if u, _ := s.GetUser("u3"); u.BudgetID == nil || *u.BudgetID != kept || !u.UpdatedAt.Equal(testTime) {
		t.Errorf("user on another budget changed: %+v", u)
	}
	if u, _ := s.GetUser("u4"); !u.UpdatedAt.Equal(testTime) {
		t.Errorf("user without budget changed: %+v", u)
	}
}

// TestDeleteBudgetManyUsers puts more user data on one budget than a single
// Badger transaction can hold (about 2.4 MB with a 16 MiB memtable), so
// DeleteBudget must split its work over several transactions.
func TestDeleteBudgetManyUsers(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	const budgetID = "big"
	if err := s.CreateBudget(&Budget{BudgetID: budgetID}); err != nil {
		t.Fatalf("CreateBudget: %v", err)
	}

	metadata := json.RawMessage(`{"notes":"` + strings.Repeat("x", 2048) + `"}`)
	const users = 1500 // about 3.4 MB of user records
	for i := range users {
		u := &User{UserID: newID(t), BudgetID: ptr(budgetID), Metadata: metadata}
		if err := s.CreateUser(u); err != nil {
			t.Fatalf("CreateUser #%d: %v", i, err)
		}
	}

	if err := s.DeleteBudget(budgetID, testTime); err != nil {
		t.Fatalf("DeleteBudget: %v", err)
	}
	all, err := s.ListUsers(0, users+1)
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if len(all) != users {
		t.Fatalf("ListUsers returned %d users, want %d", len(all), users)
	}
	for _, u := range all {
		if u.BudgetID != nil {
			t.Fatalf("user %s still on the deleted budget", u.UserID)
		}
	}
}
