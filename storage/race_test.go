package storage

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// Keys created while their user is being deleted never survive it active:
// either the key is created first and the deletion deactivates it, or the
// deletion commits first and the creation fails with ErrUserDeleted.
func TestKeysCreatedDuringUserDeletionDoNotSurviveActive(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	const rounds, creators = 30, 8
	for round := range rounds {
		userID := fmt.Sprintf("u%d", round)
		mustCreateUser(t, s, userID)
		race(creators, func(int) {
			id := newID(t)
			k := &APIKey{ID: id, KeyHash: "hash-" + id, KeyPrefix: "sk-x", UserID: userID, CreatedAt: testTime, IsActive: true}
			if err := s.CreateKey(k, nil); err != nil && !errors.Is(err, ErrUserDeleted) {
				t.Errorf("CreateKey: %v", err)
			}
		}, func() {
			if err := s.DeleteUser(userID, testTime); err != nil {
				t.Errorf("DeleteUser: %v", err)
			}
		})
		keys, err := s.ListKeysByUser(userID)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if k.IsActive {
				t.Fatalf("round %d: key %s of deleted user %s is active", round, k.ID, userID)
			}
		}
	}
}

// A key reactivated while its user is being deleted ends inactive.
func TestKeyReactivationRacingUserDeletion(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	for round := range 30 {
		userID := fmt.Sprintf("r%d", round)
		mustCreateUser(t, s, userID)
		var ids []string
		for range 4 {
			k := mustCreateKey(t, s, userID)
			if _, err := s.UpdateKey(k.ID, func(k *APIKey) error { k.IsActive = false; return nil }); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, k.ID)
		}
		race(len(ids), func(i int) {
			_, err := s.UpdateKey(ids[i], func(k *APIKey) error { k.IsActive = true; return nil })
			if err != nil && !errors.Is(err, ErrUserDeleted) {
				t.Errorf("UpdateKey: %v", err)
			}
		}, func() {
			if err := s.DeleteUser(userID, testTime); err != nil {
				t.Errorf("DeleteUser: %v", err)
			}
		})
		for _, id := range ids {
			if k, err := s.GetKey(id); err != nil || k.IsActive {
				t.Fatalf("round %d: key %s of deleted user is active (%v)", round, id, err)
			}
		}
	}
}

// Users put on a budget while it is being deleted never stay on it: either
// the assignment commits first and the deletion clears it, or the deletion
// commits first and the assignment fails with ErrBudgetMissing.
func TestBudgetAssignmentRacingBudgetDeletion(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	const rounds, users = 30, 10
	for round := range rounds {
		b := &Budget{BudgetID: newID(t), MaxBudget: ptr(Dollars(1)), CreatedAt: testTime, UpdatedAt: testTime}
		if err := s.CreateBudget(b); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for i := range users {
			id := fmt.Sprintf("b%d-%d", round, i)
			mustCreateUser(t, s, id)
			ids = append(ids, id)
		}
		race(len(ids), func(i int) {
			id := ids[i]
			var err error
			if i%2 == 0 {
				_, err = s.UpdateUser(id, func(u *User) error { u.BudgetID = &b.BudgetID; return nil })
			} else { // a user created on the budget
				err = s.CreateUser(&User{UserID: id + "-new", BudgetID: &b.BudgetID, CreatedAt: testTime, UpdatedAt: testTime})
			}
			if err != nil && !errors.Is(err, ErrBudgetMissing) {
				t.Errorf("assigning %s: %v", id, err)
			}
		}, func() {
			if err := s.DeleteBudget(b.BudgetID, testTime); err != nil {
				t.Errorf("DeleteBudget: %v", err)
			}
		})
		for i, id := range ids {
			if i%2 == 1 {
				id += "-new"
			}
			u, err := s.GetUser(id)
			if errors.Is(err, ErrNotFound) {
				continue // its creation lost the race
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.BudgetID != nil && *u.BudgetID == b.BudgetID {
				t.Fatalf("round %d: user %s is on deleted budget %s", round, id, b.BudgetID)
			}
		}
	}
}

// race runs each(0) … each(n-1) and against, each in its own goroutine,
// all let go at the same moment, and waits for them all.
func race(n int, each func(i int), against func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			each(i)
		})
	}
	wg.Go(func() {
		<-start
		against()
	})
	close(start)
	wg.Wait()
}
