package llmgateway

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/storage"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres"
)

func TestChangeWatch(t *testing.T) {
	t.Parallel()
	w := newChangeWatch("host/1/ab")
	if w.missed() {
		t.Fatal("missed before any heartbeat was sent")
	}
	first := w.next()
	if !w.missed() {
		t.Fatal("a heartbeat that has not come back yet is not reported missing")
	}
	w.heard("host/2/cd#1") // another instance's
	w.heard("host/1/ab#x") // malformed
	if !w.missed() {
		t.Fatal("another instance's heartbeat or a malformed one counted as ours")
	}
	w.heard(first)
	if w.missed() {
		t.Fatalf("heartbeat %s came back and is still missed", first)
	}
	second, third := w.next(), w.next()
	w.heard(third)
	w.heard(second) // late, out of order: the newer one already covers it
	if w.missed() {
		t.Fatal("the newest heartbeat came back and is still missed")
	}
	w.next() // sent, never comes back
	if !w.missed() {
		t.Fatal("a heartbeat that did not come back is not missed")
	}
}

// A change notification drops the one entry it names; one that names
// nothing, or a key hash that is not one, drops everything.
func TestForgetChangedDropsWhatTheChangeNames(t *testing.T) {
	t.Parallel()
	hashA, hashB := sha256.Sum256([]byte("gw-a")), sha256.Sum256([]byte("gw-b"))
	fill := func() caches {
		cs := newCaches()
		for _, h := range [][sha256.Size]byte{hashA, hashB} {
			cs.keys.put(h, &storage.APIKey{ID: hex.EncodeToString(h[:4])}, 0)
		}
		for _, id := range []string{"alice", "bob"} {
			cs.users.put(id, &storage.User{UserID: id}, 0)
			cs.budgets.put(id, &storage.Budget{BudgetID: id}, 0)
			cs.prices.put(id, nil, 0)
		}
		return cs
	}
	has := func(cs caches) []string {
		var out []string
		for name, h := range map[string][sha256.Size]byte{"key a": hashA, "key b": hashB} {
			if _, ok, _ := cs.keys.get(h); ok {
				out = append(out, name)
			}
		}
		for _, id := range []string{"alice", "bob"} {
			if _, ok, _ := cs.users.get(id); ok {
				out = append(out, "user "+id)
			}
			if _, ok, _ := cs.budgets.get(id); ok {
				out = append(out, "budget "+id)
			}
			if _, ok, _ := cs.prices.get(id); ok {
				out = append(out, "price "+id)
			}
		}
		slices.Sort(out)
		return out
	}
	all := []string{"budget alice", "budget bob", "key a", "key b", "price alice", "price bob", "user alice", "user bob"}
	without := func(drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(all), func(s string) bool { return slices.Contains(drop, s) })
	}
	for _, tc := range []struct {
		name   string
		change postgres.Change
		want   []string
	}{
		{"a key", postgres.Change{Table: "api_keys", ID: "k1", KeyHashes: []string{hex.EncodeToString(hashA[:])}}, without("key a")},
		{"a rotated key", postgres.Change{Table: "api_keys", ID: "k1",
			KeyHashes: []string{hex.EncodeToString(hashA[:]), hex.EncodeToString(hashB[:])}}, without("key a", "key b")},
		{"a user", postgres.Change{Table: "users", ID: "alice"}, without("user alice")},
		{"a budget", postgres.Change{Table: "budgets", ID: "bob"}, without("budget bob")},
		{"a price", postgres.Change{Table: "model_pricing", ID: "alice"}, without("price alice")},
		{"changes may be lost", postgres.Change{}, nil},
		{"a malformed key hash", postgres.Change{Table: "api_keys", ID: "k1", KeyHashes: []string{"zz"}}, nil},
		{"an unknown table", postgres.Change{Table: "other", ID: "alice"}, nil},
	} {
		cs := fill()
		forgetChanged(cs, tc.change)
		if got := has(cs); !slices.Equal(got, tc.want) {
			t.Errorf("%s: left %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A lookup that read the store before a change does not put the old value
// back after the change dropped it.
func TestForgetStopsARacingPut(t *testing.T) {
	t.Parallel()
	c := newCache[string, int](10)
	_, _, gen := c.get("alice") // a miss: the lookup goes to the store
	c.forget("alice")           // the change arrives meanwhile
	c.put("alice", 1, gen)      // the lookup's value is from before the change
	if _, ok, _ := c.get("alice"); ok {
		t.Fatal("a value read before the change was cached after it")
	}
}
