package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// raceRounds is how many times each race is run.
const raceRounds = 10

// runTogether runs fns in goroutines released at once and waits for all.
func runTogether(fns ...func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, fn := range fns {
		wg.Go(func() {
			<-start
			fn()
		})
	}
	close(start)
	wg.Wait()
}

// Keys created while their user is being deleted never survive it active:
// either the key is created first and the deletion deactivates it, or the
// deletion commits first and the creation fails with ErrUserDeleted.
func testKeysCreatedDuringUserDeletion(t *testing.T, s Store) {
	const creators = 6
	for round := range raceRounds {
		user := fmt.Sprintf("kc%d", round)
		mustCreateUser(t, s, user)
		var created sync.Map
		var racers []func()
		for range creators {
			racers = append(racers, func() {
				k := newKey(user)
				err := s.CreateKey(k, nil)
				switch {
				case err == nil:
					created.Store(k.ID, true)
				case !errors.Is(err, storage.ErrUserDeleted):
					t.Errorf("CreateKey: %v", err)
				}
			})
		}
		racers = append(racers, func() {
			if err := s.DeleteUser(user, T0); err != nil {
				t.Errorf("DeleteUser: %v", err)
			}
		})
		runTogether(racers...)
		created.Range(func(id, _ any) bool {
			k, err := s.GetKey(id.(string))
			if err != nil || k.IsActive {
				t.Fatalf("round %d: key %s of deleted user %s is active (%v)", round, id, user, err)
			}
			return true
		})
	}
}

// A key reactivated while its user is being deleted ends inactive.
func testKeyReactivationRacingDeletion(t *testing.T, s Store) {
	for round := range raceRounds {
		user := fmt.Sprintf("kr%d", round)
		mustCreateUser(t, s, user)
		var keys []string
		for range 4 {
			k := mustCreateKey(t, s, user)
			if _, err := s.UpdateKey(k.ID, func(k *storage.APIKey) error { k.IsActive = false; return nil }); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k.ID)
		}
		var racers []func()
		for _, id := range keys {
			racers = append(racers, func() {
				_, err := s.UpdateKey(id, func(k *storage.APIKey) error { k.IsActive = true; return nil })
				if err != nil && !errors.Is(err, storage.ErrUserDeleted) {
					t.Errorf("UpdateKey: %v", err)
				}
			})
		}
		racers = append(racers, func() {
			if err := s.DeleteUser(user, T0); err != nil {
				t.Errorf("DeleteUser: %v", err)
			}
		})
		runTogether(racers...)
		for _, id := range keys {
			if k, err := s.GetKey(id); err != nil || k.IsActive {
				t.Fatalf("round %d: key %s of deleted user is active (%v)", round, id, err)
			}
		}
	}
}

// Users put on a budget while it is being deleted never stay on it.
func testBudgetAssignmentRacingDeletion(t *testing.T, s Store) {
	const users = 6
	for round := range raceRounds {
		b := mustCreateBudget(t, s, ptr(storage.Dollars(1)))
		var ids []string
		for i := range users {
			id := fmt.Sprintf("ba%d-%d", round, i)
			mustCreateUser(t, s, id)
			ids = append(ids, id)
		}
		var racers []func()
		for i, id := range ids {
			racers = append(racers, func() {
				var err error
				if i%2 == 0 {
					_, err = s.UpdateUser(id, func(u *storage.User) error { u.BudgetID = &b.BudgetID; return nil })
				} else {
					err = s.CreateUser(&storage.User{UserID: id + "-new", BudgetID: &b.BudgetID, CreatedAt: T0, UpdatedAt: T0})
				}
				if err != nil && !errors.Is(err, storage.ErrBudgetMissing) {
					t.Errorf("assigning %s: %v", id, err)
				}
			})
		}
		racers = append(racers, func() {
			if err := s.DeleteBudget(b.BudgetID, T0); err != nil {
				t.Errorf("DeleteBudget: %v", err)
			}
		})
		runTogether(racers...)
		for i, id := range ids {
			if i%2 == 1 {
				id += "-new"
			}
			u, err := s.GetUser(id)
			if errors.Is(err, storage.ErrNotFound) {
				continue
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

func testPingProbeClose(t *testing.T, s Store) {
	if err := s.Ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Probe(); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.GetUser("anyone"); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("GetUser after Close: %v, want ErrClosed", err)
	}
	if err := s.CreateUser(&storage.User{UserID: "late", CreatedAt: T0, UpdatedAt: T0}); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("CreateUser after Close: %v, want ErrClosed", err)
	}
}
