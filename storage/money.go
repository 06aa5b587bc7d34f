package storage

import "github.com/llmgateway/caddy-llm-gateway/internal/money"

// Money is an amount of US dollars counted exactly in nano-dollars; see
// package money, where it is defined, for its decimal and JSON forms. The
// alias keeps storage's types and callers as they were.
type Money = money.Money

// MaxMoney is the largest amount Money holds.
const MaxMoney = money.Max

// Dollars converts a float amount of dollars to the nearest Money (see
// money.Dollars).
func Dollars(usd float64) Money { return money.Dollars(usd) }

// ParseMoney reads a decimal number of dollars (see money.Parse).
func ParseMoney(s string) (Money, error) { return money.Parse(s) }

// TokenCost is the contract's cost formula in exact arithmetic (see
// money.TokenCost).
func TokenCost(prompt, completion int64, inputPerMillion, outputPerMillion float64) Money {
	return money.TokenCost(prompt, completion, inputPerMillion, outputPerMillion)
}
