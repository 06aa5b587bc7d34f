package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"
)

// moneyField finds the amounts of money in a response.
var moneyField = regexp.MustCompile(`"(cost|spend|max_budget)":([^,}]*)`)

// plainDecimal is money written from an integer of nano-dollars: no
// exponent, no trailing zeros, at most 9 decimals.
var plainDecimal = regexp.MustCompile(`^(null|-?(0|[1-9]\d*)(\.\d{0,8}[1-9])?)$`)

// checkMoneyIsPlain fails the test for every amount in body that is not a
// plain decimal (6.000000000000001e-08 instead of 0.00000006).
func checkMoneyIsPlain(t *testing.T, what string, body []byte) {
	t.Helper()
	for _, m := range moneyField.FindAllSubmatch(body, -1) {
		if !plainDecimal.Match(m[2]) {
			t.Errorf("%s writes %s as %s", what, m[1], m[2])
		}
	}
}

// Money is kept exact: many small costs at prices that are not binary
// fractions (0.1 and 0.2 per million tokens) sum to the exact decimal in
// the records, in the user's and the key's spend and in the budget
// history, and every amount is written without float noise.
func TestManySmallCostsAddUpExactly(t *testing.T) {
	t.Parallel()
	mock := newMockUpstream(t)
	g := startGateway(t, gatewayConfig{Block: fmt.Sprintf(`provider mock {
			base_url %s
		}
		price mock:ok 0.1 0.2`, mock.BaseURL())})
	budget := g.newBudget(map[string]any{"max_budget": 0.3})
	g.newUser(map[string]any{"user_id": "penny", "budget_id": budget})
	key := g.newKey(map[string]any{"user_id": "penny", "max_budget": 0.0003})

	// One call: 11 prompt tokens at 0.1 and 7 completion tokens at 0.2 per
	// million are 0.0000025 dollars; in float64 that sum is 2.5000000000000003e-06.
	const requests = 60
	var wg sync.WaitGroup
	sem := make(chan struct{}, 6)
	for range requests {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r := g.do("POST", "/v1/chat/completions", `{"model":"mock:ok","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, bearer(key.Key)...)
			if r.Status != http.StatusOK {
				t.Errorf("status %d: %s", r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	var body []byte
	waitFor(t, "all usage records", func() bool {
		body = expect(t, g.adminDo("GET", "/v1/usage?user_id=penny&limit=1000", nil), http.StatusOK).Body
		return bytes.Count(body, []byte(`"cost":0.0000025,`)) == requests
	})

	want := map[string]string{
		"/v1/users/penny":                        `"spend":0.00015,`,
		"/v1/keys/" + key.ID:                     `"spend":0.00015,`,
		"/v1/users/penny/budget-history":         `"spend":0.00015}`,
		"/v1/keys/" + key.ID + "/budget-history": `"spend":0.00015}`,
		"/v1/budgets/" + budget:                  `"max_budget":0.3,`,
	}
	for path, fragment := range want {
		b := expect(t, g.adminDo("GET", path, nil), http.StatusOK).Body
		if !bytes.Contains(b, []byte(fragment)) {
			t.Errorf("GET %s = %s; want it to contain %s", path, b, fragment)
		}
		checkMoneyIsPlain(t, "GET "+path, b)
	}
	if !bytes.Contains(expect(t, g.adminDo("GET", "/v1/keys/"+key.ID, nil), 200).Body, []byte(`"max_budget":0.0003,`)) {
		t.Error("the key's max_budget is not written as given")
	}
	checkMoneyIsPlain(t, "GET /v1/usage", body)
}
