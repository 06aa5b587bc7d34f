package storage

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestCreateKey(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)

	newKey := func(userID string) *APIKey {
		id := newID(t)
		return &APIKey{ID: id, KeyHash: "hash-" + id, UserID: userID, CreatedAt: testTime, IsActive: true}
	}

	t.Run("creates missing user", func(t *testing.T) {
		k := newKey("auto")
		if err := s.CreateKey(k, &User{UserID: "auto", Alias: ptr("new"), CreatedAt: testTime}); err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		u, err := s.GetUser("auto")
		if err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		if u.Alias == nil || *u.Alias != "new" {
			t.Errorf("created user = %+v", u)
		}
		got, err := s.GetKey(k.ID)
		if err != nil {
			t.Fatalf("GetKey: %v", err)
		}
		if !reflect.DeepEqual(got, k) {
			t.Errorf("GetKey = %+v, want %+v", got, k)
		}
	})

	t.Run("keeps existing user", func(t *testing.T) {
		mustCreateUser(t, s, "existing")
		if err := s.CreateKey(newKey("existing"), &User{UserID: "existing", Alias: ptr("replaced")}); err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		if u, err := s.GetUser("existing"); err != nil || u.Alias != nil {
			t.Errorf("existing user changed: %+v, %v", u, err)
		}
	})

	t.Run("missing user without newUser", func(t *testing.T) {
		k := newKey("ghost")
		if err := s.CreateKey(k, nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
		if _, err := s.GetKey(k.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("key stored despite the error: %v", err)
		}
	})

	t.Run("deleted user", func(t *testing.T) {
		mustCreateUser(t, s, "gone")
		if err := s.DeleteUser("gone", testTime); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		k := newKey("gone")
		if err := s.CreateKey(k, &User{UserID: "gone"}); !errors.Is(err, ErrUserDeleted) {
			t.Fatalf("got %v, want ErrUserDeleted", err)
		}
		if _, err := s.GetKeyByHash(k.KeyHash); !errors.Is(err, ErrNotFound) {
			t.Errorf("hash index written despite the error: %v", err)
		}
	})

	t.Run("duplicates", func(t *testing.T) {
		k := mustCreateKey(t, s, "dup")
		sameID := newKey("dup")
		sameID.ID = k.ID
		if err := s.CreateKey(sameID, nil); !errors.Is(err, ErrExists) {
			t.Errorf("same id: got %v, want ErrExists", err)
		}
		sameHash := newKey("dup")
		sameHash.KeyHash = k.KeyHash
		if err := s.CreateKey(sameHash, nil); !errors.Is(err, ErrExists) {
			t.Errorf("same hash: got %v, want ErrExists", err)
		}
	})

	t.Run("newUser for another user", func(t *testing.T) {
		if err := s.CreateKey(newKey("x"), &User{UserID: "y"}); err == nil {
			t.Error("CreateKey succeeded")
		}
	})
}

func TestGetKeyByHash(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	k := mustCreateKey(t, s, "frank")

	got, err := s.GetKeyByHash(k.KeyHash)
	if err != nil {
		t.Fatalf("GetKeyByHash: %v", err)
	}
	if got.ID != k.ID {
		t.Errorf("GetKeyByHash returned key %s, want %s", got.ID, k.ID)
	}
	for _, hash := range []string{"", "unknown"} {
		if _, err := s.GetKeyByHash(hash); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetKeyByHash(%q): got %v, want ErrNotFound", hash, err)
		}
	}
}

func TestUpdateKeyRotatesHash(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	k := mustCreateKey(t, s, "gina")
	other := mustCreateKey(t, s, "gina")

	if _, err := s.UpdateKey(k.ID, func(k *APIKey) error {
		k.KeyHash = other.KeyHash
		return nil
	}); !errors.Is(err, ErrExists) {
		t.Errorf("rotating onto another key's hash: got %v, want ErrExists", err)
	}

	got, err := s.UpdateKey(k.ID, func(k *APIKey) error {
		k.KeyHash = "rotated"
		k.KeyPrefix = "sk-new00"
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateKey: %v", err)
	}
	if got.KeyHash != "rotated" || got.KeyPrefix != "sk-new00" {
		t.Errorf("UpdateKey returned %+v", got)
	}
	if _, err := s.GetKeyByHash(k.KeyHash); !errors.Is(err, ErrNotFound) {
		t.Errorf("old hash: got %v, want ErrNotFound", err)
	}
	byHash, err := s.GetKeyByHash("rotated")
	if err != nil {
		t.Fatalf("new hash: %v", err)
	}
	if byHash.ID != k.ID {
		t.Errorf("new hash resolves to %s, want %s", byHash.ID, k.ID)
	}
	if byHash, err := s.GetKeyByHash(other.KeyHash); err != nil || byHash.ID != other.ID {
		t.Errorf("other key's hash: %+v, %v", byHash, err)
	}
}

func TestUpdateKey(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	k := mustCreateKey(t, s, "hank")
	mustCreateUser(t, s, "ivy")

	got, err := s.UpdateKey(k.ID, func(k *APIKey) error {
		k.KeyName = ptr("ci")
		k.AllowedModels = []string{"gpt-4o"}
		k.UserID = "ivy"
		k.ID = "ignored"
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateKey: %v", err)
	}
	if got.ID != k.ID || *got.KeyName != "ci" || got.UserID != "ivy" {
		t.Errorf("UpdateKey returned %+v", got)
	}
	assertKeyIDs(t, s, "hank", nil)
	assertKeyIDs(t, s, "ivy", []string{k.ID})

	errVeto := errors.New("veto")
	if _, err := s.UpdateKey(k.ID, func(*APIKey) error { return errVeto }); err != errVeto {
		t.Errorf("failing fn: got %v, want the fn's error", err)
	}
	if _, err := s.UpdateKey(k.ID, func(k *APIKey) error {
		k.UserID = "nobody"
		return nil
	}); !errors.Is(err, ErrNotFound) {
		t.Errorf("moving to a missing user: got %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateKey("missing", func(*APIKey) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing key: got %v, want ErrNotFound", err)
	}
}

func TestDeleteKey(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	k := mustCreateKey(t, s, "jan")
	keep := mustCreateKey(t, s, "jan")

	if err := s.DeleteKey(k.ID); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	if _, err := s.GetKey(k.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetKey after delete: got %v, want ErrNotFound", err)
	}
	if _, err := s.GetKeyByHash(k.KeyHash); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetKeyByHash after delete: got %v, want ErrNotFound", err)
	}
	assertKeyIDs(t, s, "jan", []string{keep.ID})
	if err := s.DeleteKey(k.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting again: got %v, want ErrNotFound", err)
	}
}

func TestListKeys(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)

	var ids []string
	for i := range 5 {
		k := mustCreateKey(t, s, []string{"kim", "lee"}[i%2])
		ids = append(ids, k.ID)
	}
	if _, err := s.UpdateKey(ids[1], func(k *APIKey) error {
		k.IsActive = false
		return nil
	}); err != nil {
		t.Fatalf("UpdateKey: %v", err)
	}

	tests := []struct {
		skip, limit int
		want        []string
	}{
		{0, 10, ids},
		{0, 2, ids[:2]},
		{2, 2, ids[2:4]},
		{4, 2, ids[4:]},
		{5, 1, []string{}},
	}
	for _, tt := range tests {
		keys, err := s.ListKeys(tt.skip, tt.limit)
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		if got := keyIDs(keys); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ListKeys(%d, %d) = %v, want %v", tt.skip, tt.limit, got, tt.want)
		}
	}
	assertKeyIDs(t, s, "kim", []string{ids[0], ids[2], ids[4]})
	assertKeyIDs(t, s, "lee", []string{ids[1], ids[3]})
	assertKeyIDs(t, s, "nobody", nil)
}

func TestTouchKey(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	k := mustCreateKey(t, s, "max")

	used := testTime.Add(time.Minute)
	if err := s.TouchKey(k.ID, used); err != nil {
		t.Fatalf("TouchKey: %v", err)
	}
	if err := s.TouchKey(k.ID, testTime); err != nil { // older: ignored
		t.Fatalf("TouchKey: %v", err)
	}
	got, err := s.GetKey(k.ID)
	if err != nil {
		t.Fatalf("GetKey: %v", err)
	}
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(used) {
		t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, used)
	}
	if err := s.TouchKey("missing", used); err != nil {
		t.Errorf("TouchKey(missing) = %v, want nil", err)
	}
}

func keyIDs(keys []APIKey) []string {
	ids := []string{}
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return ids
}

func assertKeyIDs(t *testing.T, s *Store, userID string, want []string) {
	t.Helper()
	keys, err := s.ListKeysByUser(userID)
	if err != nil {
		t.Fatalf("ListKeysByUser(%q): %v", userID, err)
	}
	if want == nil {
		want = []string{}
	}
	if got := keyIDs(keys); !reflect.DeepEqual(got, want) {
		t.Errorf("ListKeysByUser(%q) = %v, want %v", userID, got, want)
	}
}
