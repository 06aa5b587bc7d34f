package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

func testUserLifecycle(t *testing.T, s Store) {
	b := mustCreateBudget(t, s, ptr(storage.Dollars(5)))
	u := &storage.User{
		UserID: "alice", Alias: ptr("Alice"), BudgetID: &b.BudgetID,
		BudgetStartedAt: ptr(at(time.Hour)), NextBudgetResetAt: ptr(at(25 * time.Hour)),
		Blocked: true, CreatedAt: T0, UpdatedAt: at(time.Second),
		Metadata: json.RawMessage(`{"team":"ml","n":[1,2]}`),
	}
	if err := s.CreateUser(u); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetUser("alice")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, u) {
		t.Fatalf("GetUser = %+v, want %+v", got, u)
	}
	if err := s.CreateUser(&storage.User{UserID: "alice", CreatedAt: T0, UpdatedAt: T0}); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second CreateUser: %v, want ErrExists", err)
	}
	for _, id := range []string{"", "a\x00b"} {
		if err := s.CreateUser(&storage.User{UserID: id, CreatedAt: T0, UpdatedAt: T0}); err == nil {
			t.Fatalf("CreateUser(%q) succeeded", id)
		}
	}
	if _, err := s.GetUser("nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetUser(nobody): %v, want ErrNotFound", err)
	}
	if err := s.DeleteUser("alice", at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetUser("alice")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Deleted() || !got.DeletedAt.Equal(at(time.Minute)) || !got.UpdatedAt.Equal(at(time.Minute)) {
		t.Fatalf("deleted user: DeletedAt %v UpdatedAt %v", got.DeletedAt, got.UpdatedAt)
	}
	for _, id := range []string{"alice", "nobody"} {
		if err := s.DeleteUser(id, at(time.Minute)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("DeleteUser(%s): %v, want ErrNotFound", id, err)
		}
	}
}

func testCreateUserRevivesDeletedUser(t *testing.T, s Store) {
	mustCreateUser(t, s, "bob")
	k := mustCreateKey(t, s, "bob")
	if err := s.DeleteUser("bob", at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	fresh := &storage.User{UserID: "bob", Alias: ptr("again"), CreatedAt: at(time.Hour), UpdatedAt: at(time.Hour)}
	if err := s.CreateUser(fresh); err != nil {
		t.Fatalf("reviving: %v", err)
	}
	got, err := s.GetUser("bob")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, fresh) {
		t.Fatalf("revived user = %+v, want %+v", got, fresh)
	}
	if users, err := s.ListUsers(0, 10); err != nil || !slices.Equal(ids(users, userID), []string{"bob"}) {
		t.Fatalf("ListUsers = %v, %v", users, err)
	}
	// Its old keys stay inactive: reviving a user restores no credential.
	if got, err := s.GetKey(k.ID); err != nil || got.IsActive {
		t.Fatalf("old key after revival: %+v, %v", got, err)
	}
}

func testListUsers(t *testing.T, s Store) {
	// Byte order, not collation order: "B" < "a" < "aa" < "b".
	for _, id := range []string{"b", "aa", "B", "a", "c-deleted"} {
		mustCreateUser(t, s, id)
	}
	if err := s.DeleteUser("c-deleted", T0); err != nil {
		t.Fatal(err)
	}
	all := []string{"B", "a", "aa", "b"}
	tests := []struct{ skip, limit int }{{0, 10}, {0, 2}, {1, 2}, {3, 5}, {4, 1}, {10, 1}, {0, 0}}
	for _, tc := range tests {
		users, err := s.ListUsers(tc.skip, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		want := all[min(tc.skip, len(all)):min(tc.skip+tc.limit, len(all))]
		if got := ids(users, userID); !slices.Equal(got, want) {
			t.Errorf("ListUsers(%d, %d) = %v, want %v", tc.skip, tc.limit, got, want)
		}
		if users == nil {
			t.Errorf("ListUsers(%d, %d) = nil, want an empty list", tc.skip, tc.limit)
		}
	}
}

func testUpdateUser(t *testing.T, s Store) {
	mustCreateUser(t, s, "carol")
	got, err := s.UpdateUser("carol", func(u *storage.User) error {
		u.UserID = "renamed" // ignored
		u.Alias = ptr("Carol")
		u.Blocked = true
		u.UpdatedAt = at(time.Hour)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID != "carol" || *got.Alias != "Carol" || !got.Blocked {
		t.Fatalf("UpdateUser returned %+v", got)
	}
	stored, err := s.GetUser("carol")
	if err != nil || !reflect.DeepEqual(stored, got) {
		t.Fatalf("stored %+v (%v), returned %+v", stored, err, got)
	}
	if _, err := s.GetUser("renamed"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("renamed user exists: %v", err)
	}

	errVeto := errors.New("veto")
	if _, err := s.UpdateUser("carol", func(u *storage.User) error { u.Blocked = false; return errVeto }); err != errVeto {
		t.Fatalf("UpdateUser with failing fn: %v, want the fn's error as is", err)
	}
	if u, _ := s.GetUser("carol"); !u.Blocked {
		t.Fatal("a failed update changed the user")
	}
	if _, err := s.UpdateUser("nobody", func(*storage.User) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UpdateUser(nobody): %v, want ErrNotFound", err)
	}
}

func testUpdateUserConcurrent(t *testing.T, s Store) {
	mustCreateUser(t, s, "counter")
	const writers, each = 8, 10
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				_, err := s.UpdateUser("counter", func(u *storage.User) error {
					n := 0
					if u.Alias != nil {
						fmt.Sscan(*u.Alias, &n)
					}
					u.Alias = ptr(fmt.Sprint(n + 1))
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	u, err := s.GetUser("counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint(writers * each); u.Alias == nil || *u.Alias != want {
		got := "unset"
		if u.Alias != nil {
			got = *u.Alias
		}
		t.Fatalf("counter = %s, want %s: an update was lost", got, want)
	}
}

func testDeleteUserDeactivatesKeys(t *testing.T, s Store) {
	mustCreateUser(t, s, "dave")
	mustCreateUser(t, s, "erin")
	var daves []string
	for range 3 {
		daves = append(daves, mustCreateKey(t, s, "dave").ID)
	}
	erins := mustCreateKey(t, s, "erin")
	if err := s.DeleteUser("dave", at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, id := range daves {
		if k, err := s.GetKey(id); err != nil || k.IsActive {
			t.Fatalf("key %s of deleted user: %+v, %v", id, k, err)
		}
	}
	if k, err := s.GetKey(erins.ID); err != nil || !k.IsActive {
		t.Fatalf("another user's key: %+v, %v", k, err)
	}
}
