// Package money counts US dollars exactly, in nano-dollars: the amounts the
// gateway bills, budgets and reserves, their decimal and JSON forms, and the
// contract's cost formula. It is pure (no I/O), so the store and the meter
// share it without depending on each other.
package money

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"math/bits"
	"reflect"
	"strconv"
	"strings"
)

// Money is an amount of US dollars counted exactly in nano-dollars
// (10^-9 USD). Costs, spend, budgets and reservations are Money, so sums of
// many small costs are exact. In JSON, Money is a number of dollars written
// from the integer (0.00000006, never 6.000000000000001e-08); decoding
// accepts any JSON number and rounds digits below the nano-dollar to the
// nearest, halves away from zero. The range is ±9,223,372,036.854775807 USD.
type Money int64

// Nanos per dollar.
const nanosPerDollar = 1_000_000_000

// Max is the largest amount Money holds.
const Max = Money(math.MaxInt64)

// Dollars converts a float amount of dollars to the nearest Money,
// saturating at the range. NaN is 0. Meant for configuration and tests;
// computed costs come from TokenCost.
func Dollars(usd float64) Money {
	switch {
	case math.IsNaN(usd):
		return 0
	case usd >= float64(math.MaxInt64)/nanosPerDollar:
		return Max
	case usd <= float64(math.MinInt64)/nanosPerDollar:
		return Money(math.MinInt64)
	}
	return Money(math.Round(usd * nanosPerDollar))
}

// Dollars returns m as a float number of dollars, for metrics.
func (m Money) Dollars() float64 { return float64(m) / nanosPerDollar }

// String writes m in dollars without float noise: "0.00000006", "1.5", "0".
func (m Money) String() string { return string(m.appendDecimal(nil)) }

func (m Money) appendDecimal(b []byte) []byte {
	u := uint64(m)
	if m < 0 {
		b = append(b, '-')
		u = -u // two's complement: also right for math.MinInt64
	}
	b = strconv.AppendUint(b, u/nanosPerDollar, 10)
	frac := u % nanosPerDollar
	if frac == 0 {
		return b
	}
	digits := strconv.AppendUint(nil, frac+nanosPerDollar, 10)[1:] // 9 digits, zero padded
	digits = []byte(strings.TrimRight(string(digits), "0"))
	b = append(b, '.')
	return append(b, digits...)
}

// MarshalJSON writes m as a JSON number of dollars.
func (m Money) MarshalJSON() ([]byte, error) { return m.appendDecimal(nil), nil }

// AppendJSON appends m's JSON form (a decimal number of dollars, as
// MarshalJSON writes it) to b: for encoders that build JSON by hand.
func (m Money) AppendJSON(b []byte) []byte { return m.appendDecimal(b) }

// errMoneyRange reports an amount outside Money's range.
var errMoneyRange = errors.New("amount out of range")

// moneyType is the Go type named in decoding errors.
var moneyType = reflect.TypeFor[Money]()

// UnmarshalJSON reads a JSON number of dollars. Anything else, and an
// amount outside the range, is a *json.UnmarshalTypeError, which
// encoding/json completes with the field's name.
func (m *Money) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil // like encoding/json for other numbers: null leaves m alone
	}
	v, err := Parse(s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: "number " + truncateValue(s), Type: moneyType}
	}
	*m = v
	return nil
}

func truncateValue(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// Parse reads a decimal number of dollars, as JSON writes numbers
// ("0.1", "-2", "6e-8"), rounding below the nano-dollar to the nearest,
// halves away from zero.
func Parse(s string) (Money, error) {
	if m, ok := parseMoneyFast(s); ok {
		return m, nil
	}
	if !isJSONNumber(s) {
		return 0, errors.New("not a number")
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, errors.New("not a number")
	}
	r.Mul(r, big.NewRat(nanosPerDollar, 1))
	// Round half away from zero: |num|*2 + den, divided by 2*den.
	num, den := new(big.Int).Abs(r.Num()), r.Denom()
	num.Mul(num, big.NewInt(2)).Add(num, den)
	num.Quo(num, new(big.Int).Mul(den, big.NewInt(2)))
	if r.Sign() < 0 {
		num.Neg(num)
	}
	if !num.IsInt64() {
		return 0, errMoneyRange
	}
	return Money(num.Int64()), nil
}

// parseMoneyFast handles the common form: an optional minus, up to 10
// integer digits and up to 9 fraction digits, no exponent.
func parseMoneyFast(s string) (Money, bool) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	intPart, frac, hasFrac := strings.Cut(s, ".")
	if intPart == "" || len(intPart) > 10 || len(frac) > 9 || (hasFrac && frac == "") ||
		(len(intPart) > 1 && intPart[0] == '0') {
		return 0, false
	}
	var n uint64
	for _, part := range [...]string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			c := part[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + uint64(c-'0')
		}
	}
	for range 9 - len(frac) {
		n *= 10
	}
	if n > math.MaxInt64 {
		return 0, false // the slow path reports the range error
	}
	if neg {
		return -Money(n), true
	}
	return Money(n), true
}

// isJSONNumber reports whether s is a number as JSON spells it (big.Rat
// also takes fractions like "1/3" and hexadecimal, which JSON does not).
func isJSONNumber(s string) bool {
	s = strings.TrimPrefix(s, "-")
	i := 0
	digits := func() int {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	n := digits()
	if n == 0 || (n > 1 && s[0] == '0') {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// pricePerMillionNanos converts a price in dollars per million tokens to
// nano-dollars per million tokens, the precision prices are billed at.
// Negative and NaN prices are 0; huge ones saturate.
func pricePerMillionNanos(usdPerMillion float64) uint64 {
	if !(usdPerMillion > 0) {
		return 0
	}
	if usdPerMillion >= float64(math.MaxInt64)/nanosPerDollar {
		return math.MaxInt64
	}
	return uint64(math.Round(usdPerMillion * nanosPerDollar))
}

// TokenCost is the contract's cost formula in exact arithmetic:
//
//	cost = (prompt × input_price + completion × output_price) / 10^6
//
// with prices in dollars per million tokens taken to the nano-dollar, the
// products and the sum computed exactly (128-bit), and the result rounded
// once, to the nearest nano-dollar, halves up. The same tokens and prices
// always give the same cost, and the cost never decreases when a count
// grows. Negative counts count as 0; a cost beyond Money's range saturates.
func TokenCost(prompt, completion int64, inputPerMillion, outputPerMillion float64) Money {
	var hi, lo uint64
	add := func(tokens int64, usdPerMillion float64) {
		if tokens <= 0 {
			return
		}
		h, l := bits.Mul64(uint64(tokens), pricePerMillionNanos(usdPerMillion))
		var carry uint64
		lo, carry = bits.Add64(lo, l, 0)
		hi, _ = bits.Add64(hi, h, carry)
	}
	add(prompt, inputPerMillion)
	add(completion, outputPerMillion)

	const million = 1_000_000
	var carry uint64
	lo, carry = bits.Add64(lo, million/2, 0) // round half up
	hi += carry
	if hi >= million {
		return Max // the quotient would not fit in 64 bits
	}
	q, _ := bits.Div64(hi, lo, million)
	if q > math.MaxInt64 {
		return Max
	}
	return Money(q)
}
