package storetest

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

func testKeyRoundTrip(t *testing.T, s Store) {
	mustCreateUser(t, s, "frank")
	k := &storage.APIKey{
		ID: newID("key"), KeyHash: "0123abcd", KeyPrefix: "gw-01234", KeyName: ptr("ci"),
		UserID: "frank", CreatedAt: T0, LastUsedAt: ptr(at(time.Minute)), ExpiresAt: ptr(at(48 * time.Hour)),
		IsActive: true, Metadata: json.RawMessage(`{"env":"ci"}`),
		AllowedModels: []string{"openai:gpt-4o-mini", "smart"},
		MaxBudget:     ptr(storage.Dollars(2.5)), BudgetDurationSec: ptr(int64(86400)),
		BudgetStartedAt: ptr(at(time.Hour)), RPMLimit: ptr(int64(60)), TPMLimit: ptr(int64(1000)),
		DurationChanges: []storage.DurationChange{{At: at(2 * time.Hour), PreviousSec: ptr(int64(3600))}, {At: at(3 * time.Hour)}},
	}
	if err := s.CreateKey(k, nil); err != nil {
		t.Fatal(err)
	}
	for name, get := range map[string]func() (*storage.APIKey, error){
		"GetKey":       func() (*storage.APIKey, error) { return s.GetKey(k.ID) },
		"GetKeyByHash": func() (*storage.APIKey, error) { return s.GetKeyByHash("0123abcd") },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, k) {
			t.Fatalf("%s = %+v\nwant %+v", name, got, k)
		}
	}
	// A minimal key reads back with nil optional fields, not empty ones.
	bare := &storage.APIKey{ID: newID("key"), KeyHash: "bare", KeyPrefix: "gw-bare0", UserID: "frank", CreatedAt: T0}
	if err := s.CreateKey(bare, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetKey(bare.ID); err != nil || !reflect.DeepEqual(got, bare) {
		t.Fatalf("bare key = %+v (%v), want %+v", got, err, bare)
	}
	if _, err := s.GetKeyByHash("unknown"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetKeyByHash(unknown): %v, want ErrNotFound", err)
	}
	if _, err := s.GetKey("unknown"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetKey(unknown): %v, want ErrNotFound", err)
	}
}

func testCreateKeyOwner(t *testing.T, s Store) {
	// A missing user without newUser.
	if err := s.CreateKey(newKey("ghost"), nil); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("key of a missing user: %v, want ErrNotFound", err)
	}
	// A missing user with newUser: both are created.
	k := newKey("grace")
	nu := &storage.User{UserID: "grace", Alias: ptr("Virtual user"), CreatedAt: T0, UpdatedAt: T0}
	if err := s.CreateKey(k, nu); err != nil {
		t.Fatal(err)
	}
	if u, err := s.GetUser("grace"); err != nil || !reflect.DeepEqual(u, nu) {
		t.Fatalf("new user = %+v (%v)", u, err)
	}
	// An existing user with newUser: the user is kept as it is.
	k2 := newKey("grace")
	if err := s.CreateKey(k2, &storage.User{UserID: "grace", Alias: ptr("other"), CreatedAt: T0, UpdatedAt: T0}); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.GetUser("grace"); *u.Alias != "Virtual user" {
		t.Fatalf("existing user overwritten: %+v", u)
	}
	// newUser for another user.
	if err := s.CreateKey(newKey("grace"), &storage.User{UserID: "heidi", CreatedAt: T0, UpdatedAt: T0}); err == nil {
		t.Fatal("CreateKey with a newUser of another id succeeded")
	}
	// Taken id, taken hash.
	dupID := newKey("grace")
	dupID.ID = k.ID
	dupHash := newKey("grace")
	dupHash.KeyHash = k.KeyHash
	for name, dup := range map[string]*storage.APIKey{"id": dupID, "hash": dupHash} {
		if err := s.CreateKey(dup, nil); !errors.Is(err, storage.ErrExists) {
			t.Fatalf("key with a taken %s: %v, want ErrExists", name, err)
		}
	}
	// A deleted user, with or without newUser.
	if err := s.DeleteUser("grace", T0); err != nil {
		t.Fatal(err)
	}
	for _, nu := range []*storage.User{nil, {UserID: "grace", CreatedAt: T0, UpdatedAt: T0}} {
		if err := s.CreateKey(newKey("grace"), nu); !errors.Is(err, storage.ErrUserDeleted) {
			t.Fatalf("key of a deleted user (newUser %v): %v, want ErrUserDeleted", nu != nil, err)
		}
	}
	// Invalid keys.
	for _, bad := range []*storage.APIKey{
		{ID: "", KeyHash: "h1", UserID: "grace"},
		{ID: "k1", KeyHash: "", UserID: "grace"},
		{ID: "k2", KeyHash: "h2", UserID: ""},
	} {
		if err := s.CreateKey(bad, nil); err == nil {
			t.Fatalf("CreateKey(%+v) succeeded", bad)
		}
	}
}

func testKeyRotation(t *testing.T, s Store) {
	mustCreateUser(t, s, "ivan")
	k := mustCreateKey(t, s, "ivan")
	other := mustCreateKey(t, s, "ivan")
	if _, err := s.UpdateKey(k.ID, func(k *storage.APIKey) error { k.KeyHash = other.KeyHash; return nil }); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("rotating onto a taken hash: %v, want ErrExists", err)
	}
	got, err := s.UpdateKey(k.ID, func(k *storage.APIKey) error {
		k.ID = "ignored"
		k.KeyHash, k.KeyPrefix, k.LastUsedAt = "rotated", "gw-rot00", nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || got.KeyHash != "rotated" {
		t.Fatalf("rotated key = %+v", got)
	}
	if _, err := s.GetKeyByHash(k.KeyHash); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("old hash after rotation: %v, want ErrNotFound", err)
	}
	if byHash, err := s.GetKeyByHash("rotated"); err != nil || byHash.ID != k.ID {
		t.Fatalf("new hash: %+v, %v", byHash, err)
	}
	if _, err := s.GetKey("ignored"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UpdateKey changed the id: %v", err)
	}
	errVeto := errors.New("veto")
	if _, err := s.UpdateKey(k.ID, func(*storage.APIKey) error { return errVeto }); err != errVeto {
		t.Fatalf("UpdateKey with failing fn: %v, want the fn's error as is", err)
	}
	if _, err := s.UpdateKey("unknown", func(*storage.APIKey) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UpdateKey(unknown): %v, want ErrNotFound", err)
	}
}

func testUpdateKeyOwner(t *testing.T, s Store) {
	mustCreateUser(t, s, "judy")
	mustCreateUser(t, s, "ken")
	mustCreateUser(t, s, "gone")
	k := mustCreateKey(t, s, "judy")
	if err := s.DeleteUser("gone", T0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		owner string
		want  error
	}{
		{"nobody", storage.ErrNotFound},
		{"gone", storage.ErrUserDeleted},
		{"ken", nil},
	}
	for _, tc := range tests {
		_, err := s.UpdateKey(k.ID, func(k *storage.APIKey) error { k.UserID = tc.owner; return nil })
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Fatalf("moving the key to %s: %v, want %v", tc.owner, err, tc.want)
		}
	}
	if got, _ := s.GetKey(k.ID); got.UserID != "ken" {
		t.Fatalf("key owner = %s, want ken", got.UserID)
	}
	// Deleting the new owner deactivates the moved key, and it cannot be
	// made active again.
	if err := s.DeleteUser("ken", T0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetKey(k.ID); got.IsActive {
		t.Fatal("moved key still active after its new owner was deleted")
	}
	if _, err := s.UpdateKey(k.ID, func(k *storage.APIKey) error { k.IsActive = true; return nil }); !errors.Is(err, storage.ErrUserDeleted) {
		t.Fatalf("reactivating a key of a deleted user: %v, want ErrUserDeleted", err)
	}
	// Other changes of an inactive key of a deleted user are fine.
	if _, err := s.UpdateKey(k.ID, func(k *storage.APIKey) error { k.KeyName = ptr("archived"); return nil }); err != nil {
		t.Fatal(err)
	}
}

func testDeleteKey(t *testing.T, s Store) {
	mustCreateUser(t, s, "leo")
	k := mustCreateKey(t, s, "leo")
	rec := record("leo", k.ID, at(time.Minute), storage.Dollars(1))
	rec.KeyPeriod = T0
	mustRecord(t, s, rec)
	if err := s.DeleteKey(k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetKey(k.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}
	if _, err := s.GetKeyByHash(k.KeyHash); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted key by hash: %v", err)
	}
	if err := s.DeleteKey(k.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleting twice: %v, want ErrNotFound", err)
	}
	recs, err := s.ListUsage(storage.UsageFilter{APIKeyID: k.ID}, 0, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("usage of a deleted key: %d records, %v", len(recs), err)
	}
	if spend, err := s.GetSpend(storage.SpendOfKey, k.ID, T0); err != nil || spend != 0 {
		t.Fatalf("spend of a deleted key = %s, %v; want 0", spend, err)
	}
	if periods, err := s.ListSpendPeriods(storage.SpendOfKey, k.ID, 10); err != nil || len(periods) != 0 {
		t.Fatalf("spend periods of a deleted key = %v, %v", periods, err)
	}
	// The user's spend stays.
	if spend, _ := s.GetSpend(storage.SpendOfUser, "leo", time.Time{}); spend != storage.Dollars(1) {
		t.Fatalf("user spend after key deletion = %s", spend)
	}
}

func testTouchKey(t *testing.T, s Store) {
	mustCreateUser(t, s, "mia")
	k := mustCreateKey(t, s, "mia")
	steps := []struct {
		touch, want time.Time
	}{
		{at(time.Hour), at(time.Hour)},
		{at(time.Minute), at(time.Hour)}, // never backwards
		{at(2 * time.Hour), at(2 * time.Hour)},
	}
	for _, st := range steps {
		if err := s.TouchKey(k.ID, st.touch); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetKey(k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(st.want) {
			t.Fatalf("after touching at %v: LastUsedAt %v, want %v", st.touch, got.LastUsedAt, st.want)
		}
	}
	if err := s.TouchKey("deleted-meanwhile", T0); err != nil {
		t.Fatalf("touching a missing key: %v", err)
	}
}

func testListKeys(t *testing.T, s Store) {
	mustCreateUser(t, s, "nia")
	var all []string
	for i := range 5 {
		k := mustCreateKey(t, s, "nia")
		if i == 2 {
			if _, err := s.UpdateKey(k.ID, func(k *storage.APIKey) error { k.IsActive = false; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, k.ID)
	}
	for _, tc := range []struct{ skip, limit int }{{0, 10}, {0, 2}, {2, 2}, {4, 3}, {5, 1}} {
		keys, err := s.ListKeys(tc.skip, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		want := all[min(tc.skip, len(all)):min(tc.skip+tc.limit, len(all))]
		if got := ids(keys, keyID); !slices.Equal(got, want) {
			t.Errorf("ListKeys(%d, %d) = %v, want %v", tc.skip, tc.limit, got, want)
		}
	}
}
