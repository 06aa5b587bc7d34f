package integration

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// Issue #10.6: keys created while DELETE /v1/users/{id} runs survived it
// active and worked after the user was re-created. Each key either exists
// inactive or its creation was refused.
func TestKeysCreatedDuringUserDeletionStayInactive(t *testing.T) {
	t.Parallel()
	mock := newMockUpstream(t)
	g := startGateway(t, gatewayConfig{Block: mockProvider(mock)})
	for round := range 5 {
		userID := fmt.Sprintf("racer-%d", round)
		g.newUser(map[string]any{"user_id": userID})
		var mu sync.Mutex
		var created []createdKey
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 12 {
			wg.Go(func() {
				<-start
				r := g.adminDo("POST", "/v1/keys", map[string]any{"user_id": userID})
				switch r.Status {
				case http.StatusOK:
					var k createdKey
					r.JSON(t, &k)
					mu.Lock()
					created = append(created, k)
					mu.Unlock()
				case http.StatusNotFound: // the user was deleted first
				default:
					t.Errorf("POST /v1/keys: %d %s", r.Status, r.Body)
				}
			})
		}
		wg.Go(func() {
			<-start
			expect(t, g.adminDo("DELETE", "/v1/users/"+userID, nil), http.StatusNoContent)
		})
		close(start)
		wg.Wait()

		// Re-creating the user does not bring the keys back.
		g.newUser(map[string]any{"user_id": userID})
		for _, k := range created {
			got := expect(t, g.adminDo("GET", "/v1/keys/"+k.ID, nil), http.StatusOK).Map(t)
			if got["is_active"] != false {
				t.Fatalf("round %d: key %s created during the deletion of %s is active", round, k.ID, userID)
			}
			r := g.do("POST", "/v1/chat/completions", `{"model":"mock:ok","messages":[{"role":"user","content":"hi"}]}`, bearer(k.Key)...)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("round %d: key %s of the deleted user answered %d", round, k.ID, r.Status)
			}
		}
	}
}

// Issue #10.6: PATCH budget_id racing DELETE /v1/budgets/{id} left users on
// the deleted budget, served with no limit. Each user ends without it, or
// its PATCH was refused with 404.
func TestBudgetAssignmentsRacingBudgetDeletion(t *testing.T) {
	t.Parallel()
	mock := newMockUpstream(t)
	g := startGateway(t, gatewayConfig{Block: mockProvider(mock)})
	for round := range 5 {
		budget := g.newBudget(map[string]any{"max_budget": 1})
		var users []string
		for i := range 10 {
			id := fmt.Sprintf("b%d-u%d", round, i)
			g.newUser(map[string]any{"user_id": id})
			users = append(users, id)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, id := range users {
			wg.Go(func() {
				<-start
				r := g.adminDo("PATCH", "/v1/users/"+id, map[string]any{"budget_id": budget})
				if r.Status != http.StatusOK && r.Status != http.StatusNotFound {
					t.Errorf("PATCH %s: %d %s", id, r.Status, r.Body)
				}
			})
		}
		wg.Go(func() {
			<-start
			expect(t, g.adminDo("DELETE", "/v1/budgets/"+budget, nil), http.StatusNoContent)
		})
		close(start)
		wg.Wait()
		for _, id := range users {
			u := expect(t, g.adminDo("GET", "/v1/users/"+id, nil), http.StatusOK).Map(t)
			if u["budget_id"] != nil {
				t.Fatalf("round %d: user %s is on deleted budget %v", round, id, u["budget_id"])
			}
		}
	}
}
