package storage

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func TestCreateAndGetUser(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)

	want := &User{
		UserID:    "team/ops:bob-ü",
		Alias:     ptr("Bob"),
		BudgetID:  ptr("b1"),
		CreatedAt: testTime,
		UpdatedAt: testTime,
		Metadata:  json.RawMessage(`{"team":"ops"}`),
	}
	if err := s.CreateBudget(&Budget{BudgetID: "b1", CreatedAt: testTime, UpdatedAt: testTime}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(want); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	got, err := s.GetUser(want.UserID)
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GetUser = %+v, want %+v", got, want)
	}

	if err := s.CreateUser(&User{UserID: want.UserID}); !errors.Is(err, ErrExists) {
		t.Errorf("second CreateUser: got %v, want ErrExists", err)
	}
	if _, err := s.GetUser("nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetUser(missing): got %v, want ErrNotFound", err)
	}
	for _, id := range []string{"", "a\x00b"} {
		if err := s.CreateUser(&User{UserID: id}); err == nil {
			t.Errorf("CreateUser(%q) succeeded, want an error", id)
		}
	}
}

func TestCreateUserRevivesDeletedUser(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)

	old := &User{UserID: "carol", Alias: ptr("old"), Blocked: true, CreatedAt: testTime, UpdatedAt: testTime}
	if err := s.CreateUser(old); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if err := s.DeleteUser("carol", testTime.Add(time.Hour)); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}

	later := testTime.Add(2 * time.Hour)
	fresh := &User{UserID: "carol", CreatedAt: later, UpdatedAt: later}
	if err := s.CreateUser(fresh); err != nil {
		t.Fatalf("CreateUser over deleted user: %v", err)
	}
	got, err := s.GetUser("carol")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if !reflect.DeepEqual(got, fresh) {
		t.Errorf("revived user = %+v, want %+v", got, fresh)
	}
}

func TestDeleteUser(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)

	k1 := mustCreateKey(t, s, "a")
	k2 := mustCreateKey(t, s, "a")
	other := mustCreateKey(t, s, "ab") // shares a prefix with "a"

	now := testTime.Add(time.Hour)
	if err := s.DeleteUser("a", now); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}

	u, err := s.GetUser("a")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if !u.Deleted() || !u.DeletedAt.Equal(now) || !u.UpdatedAt.Equal(now) {
		t.Errorf("deleted user = %+v, want DeletedAt and UpdatedAt %v", u, now)
	}
	for _, id := range []string{k1.ID, k2.ID} {
		k, err := s.GetKey(id)
		if err != nil {
			t.Fatalf("GetKey: %v", err)
		}
		if k.IsActive {
			t.Errorf("key %s of the deleted user is still active", id)
		}
	}
	if k, err := s.GetKey(other.ID); err != nil || !k.IsActive {
		t.Errorf("key of user %q: %+v, %v; want it active", "ab", k, err)
	}

	if err := s.DeleteUser("a", now); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting again: got %v, want ErrNotFound", err)
	}
	if err := s.DeleteUser("nobody", now); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a missing user: got %v, want ErrNotFound", err)
	}
}

// TestDeleteUserManyKeys gives a user more key data than one Badger
// transaction can hold (about 1.3 MB in memory, where values stay in the
// tree), so DeleteUser must deactivate its keys over several transactions.
// A key left active by a crash between them is deactivated by the next
// DeleteUser, which still answers ErrNotFound.
func TestDeleteUserManyKeys(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	if err := s.CreateUser(&User{UserID: "big", CreatedAt: testTime, UpdatedAt: testTime}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	metadata := json.RawMessage(`{"notes":"` + strings.Repeat("x", 2048) + `"}`)
	const keys = 1500 // about 3.4 MB of key records
	ids := make([]string, keys)
	for i := range ids {
		k := &APIKey{ID: newID(t), KeyHash: newID(t), UserID: "big", CreatedAt: testTime, IsActive: true, Metadata: metadata}
		if err := s.CreateKey(k, nil); err != nil {
			t.Fatalf("CreateKey #%d: %v", i, err)
		}
		ids[i] = k.ID
	}
	other := mustCreateKey(t, s, "small")

	now := testTime.Add(time.Hour)
	if err := s.DeleteUser("big", now); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if u, err := s.GetUser("big"); err != nil || !u.Deleted() {
		t.Fatalf("GetUser: %+v, %v; want it deleted", u, err)
	}
	active := func() int {
		n := 0
		for _, id := range ids {
			k, err := s.GetKey(id)
			if err != nil {
				t.Fatalf("GetKey %s: %v", id, err)
			}
			if k.IsActive {
				n++
			}
		}
		return n
	}
	if n := active(); n != 0 {
		t.Fatalf("%d of %d keys of the deleted user are still active", n, keys)
	}
	if k, err := s.GetKey(other.ID); err != nil || !k.IsActive {
		t.Errorf("key of another user: %+v, %v; want it active", k, err)
	}

	// A crash between the transactions leaves keys active.
	for _, id := range ids[:3] {
		err := s.update(func(txn *badger.Txn) error {
			var k APIKey
			if err := getJSON(txn, apiKeyKey(id), &k); err != nil {
				return err
			}
			k.IsActive = true
			return putJSON(txn, apiKeyKey(id), &k)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteUser("big", now); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting again: got %v, want ErrNotFound", err)
	}
	if n := active(); n != 0 {
		t.Errorf("after deleting again, %d keys of the deleted user are still active", n)
	}
}

func TestListUsers(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)

	// Created out of order; "é" sorts after ASCII in byte order.
	for _, id := range []string{"zoe", "é", "a/b", "deleted", "a", "m:1"} {
		mustCreateUser(t, s, id)
	}
	if err := s.DeleteUser("deleted", testTime); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}

	tests := []struct {
		skip, limit int
		want        []string
	}{
		{0, 100, []string{"a", "a/b", "m:1", "zoe", "é"}},
		{0, 2, []string{"a", "a/b"}},
		{2, 2, []string{"m:1", "zoe"}},
		{4, 2, []string{"é"}},
		{5, 2, []string{}},
	}
	for _, tt := range tests {
		users, err := s.ListUsers(tt.skip, tt.limit)
		if err != nil {
			t.Fatalf("ListUsers(%d, %d): %v", tt.skip, tt.limit, err)
		}
		got := []string{}
		for _, u := range users {
			got = append(got, u.UserID)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ListUsers(%d, %d) = %q, want %q", tt.skip, tt.limit, got, tt.want)
		}
	}
}

func TestUpdateUser(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	mustCreateUser(t, s, "dave")

	got, err := s.UpdateUser("dave", func(u *User) error {
		u.Alias = ptr("Dave")
		u.Blocked = true
		u.UserID = "someone-else" // ignored
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if got.UserID != "dave" || *got.Alias != "Dave" || !got.Blocked {
		t.Errorf("UpdateUser returned %+v", got)
	}
	stored, err := s.GetUser("dave")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if !reflect.DeepEqual(stored, got) {
		t.Errorf("stored %+v, returned %+v", stored, got)
	}
	if _, err := s.GetUser("someone-else"); !errors.Is(err, ErrNotFound) {
		t.Errorf("changing UserID created another user: %v", err)
	}

	errVeto := errors.New("veto")
	_, err = s.UpdateUser("dave", func(u *User) error {
		u.Blocked = false
		return errVeto
	})
	if err != errVeto {
		t.Errorf("UpdateUser with failing fn: got %v, want the fn's error", err)
	}
	if u, _ := s.GetUser("dave"); !u.Blocked {
		t.Error("failed update was written")
	}

	if _, err := s.UpdateUser("nobody", func(*User) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateUser(missing): got %v, want ErrNotFound", err)
	}

	if err := s.DeleteUser("dave", testTime); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	sawDeleted := false
	if _, err := s.UpdateUser("dave", func(u *User) error {
		sawDeleted = u.Deleted()
		return nil
	}); err != nil {
		t.Fatalf("UpdateUser(deleted): %v", err)
	}
	if !sawDeleted {
		t.Error("fn did not see the deleted user as deleted")
	}
}

// TestUpdateUserConcurrent increments a counter from many goroutines; the
// conflict retries must not lose any increment.
func TestUpdateUserConcurrent(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	if err := s.CreateUser(&User{UserID: "erin", Alias: ptr(""), CreatedAt: testTime, UpdatedAt: testTime}); err != nil {
		t.Fatal(err)
	}

	const n = 40
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := s.UpdateUser("erin", func(u *User) error {
				*u.Alias += "x"
				return nil
			}); err != nil {
				t.Errorf("UpdateUser: %v", err)
			}
		})
	}
	wg.Wait()

	u, err := s.GetUser("erin")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if got := len(*u.Alias); got != n {
		t.Errorf("alias grew to %d characters, want %d", got, n)
	}
}
