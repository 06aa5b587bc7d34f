package storage

import (
	"encoding/binary"
	"math"
	"strings"
	"time"
)

// Key layout. Every record lives under a short ASCII prefix; values are the
// JSON encoding of the types in types.go unless noted otherwise.
//
//	user/<userID>                          -> User
//	apikey/<keyID>                         -> APIKey
//	apikey-hash/<sha256 hex>               -> keyID (raw bytes)
//	apikey-user/<userID> 0x00 <keyID>      -> empty (keys of a user)
//	budget/<budgetID>                      -> Budget
//	price/<provider:model>                 -> Price
//	usage/t/<ts> <usageID>                 -> UsageRecord
//	usage/u/<userID> 0x00 <ts> <usageID>   -> empty (usage of a user)
//	usage/k/<keyID> 0x00 <ts> <usageID>    -> empty (usage of a key)
//	usage/m/<model> 0x00 <ts> <usageID>    -> empty (usage of a model)
//	user-active/<userID>                   -> empty (users not deleted)
//	spend/<owner>/<id> 0x00 <ts>           -> Money, 8 bytes big-endian
//	format-version                         -> FormatVersion, decimal
//
// <ts> is the record's timestamp in Unix nanoseconds as 8 big-endian bytes
// with the sign bit flipped, so byte order equals time order for every
// int64 value. Key, budget and usage ids are UUIDv7 strings chosen by the
// caller, which makes id order creation order. User ids are arbitrary
// strings without NUL bytes; the NUL separator keeps a user's index range
// from overlapping with that of a user whose id extends it ("ab" vs "abc").
//
// The prefixes "apikey/", "apikey-hash/" and "apikey-user/" (and "user/"
// and "usage/") do not prefix one another, so a scan of one never sees
// another's keys.
const (
	prefixUser       = "user/"
	prefixKey        = "apikey/"
	prefixKeyHash    = "apikey-hash/"
	prefixKeyUser    = "apikey-user/"
	prefixBudget     = "budget/"
	prefixPrice      = "price/"
	prefixUsageTime  = "usage/t/"
	prefixUsageUser  = "usage/u/"
	prefixUsageKey   = "usage/k/"
	prefixUsageModel = "usage/m/"
	prefixUserActive = "user-active/"
	prefixSpend      = "spend/"
	indexSeparator   = "\x00"
	timestampKeySize = 8
)

// pingKey is read by Ping. Nothing is ever stored under it.
var pingKey = []byte("ping")

func userKey(id string) []byte      { return []byte(prefixUser + id) }
func apiKeyKey(id string) []byte    { return []byte(prefixKey + id) }
func keyHashKey(hash string) []byte { return []byte(prefixKeyHash + hash) }
func budgetKey(id string) []byte    { return []byte(prefixBudget + id) }
func priceKey(model string) []byte  { return []byte(prefixPrice + model) }

// keyUserPrefix is the prefix of the per-user key index of userID.
func keyUserPrefix(userID string) []byte {
	return []byte(prefixKeyUser + userID + indexSeparator)
}

// keyUserKey is the per-user key index entry of key keyID owned by userID.
func keyUserKey(userID, keyID string) []byte {
	return append(keyUserPrefix(userID), keyID...)
}

// usageUserPrefix is the prefix of the usage index of userID.
func usageUserPrefix(userID string) []byte {
	return []byte(prefixUsageUser + userID + indexSeparator)
}

// activeUserKey is the entry of userID in the index of active users.
func activeUserKey(userID string) []byte { return []byte(prefixUserActive + userID) }

// usageModelPrefix is the prefix of the usage index of model.
func usageModelPrefix(model string) []byte {
	return []byte(prefixUsageModel + model + indexSeparator)
}

// usageKeyPrefix is the prefix of the usage index of API key keyID.
func usageKeyPrefix(keyID string) []byte {
	return []byte(prefixUsageKey + keyID + indexSeparator)
}

// spendPrefix is the prefix of the spend counters of one owner.
func spendPrefix(owner SpendOwner, id string) []byte {
	return []byte(prefixSpend + string(rune(owner)) + "/" + id + indexSeparator)
}

// spendKey is the spend counter of one owner in the period starting at start.
func spendKey(owner SpendOwner, id string, start time.Time) []byte {
	return timestampBound(spendPrefix(owner, id), start.UnixNano())
}

// usageSuffix is the part shared by all three usage keys of one record:
// the encoded timestamp followed by the record id.
func usageSuffix(ts time.Time, id string) []byte {
	b := make([]byte, timestampKeySize, timestampKeySize+len(id))
	putTimestamp(b, ts.UnixNano())
	return append(b, id...)
}

// usageTimeKey is the primary key of the usage record with the given suffix.
func usageTimeKey(suffix []byte) []byte {
	return concat([]byte(prefixUsageTime), suffix)
}

// putTimestamp writes nanos into b[:8] so that byte order is numeric order.
func putTimestamp(b []byte, nanos int64) {
	binary.BigEndian.PutUint64(b, uint64(nanos)^(1<<63))
}

// timestampAt decodes the timestamp written by putTimestamp.
func timestampAt(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
}

// timestampBound returns prefix followed by the encoded nanos.
func timestampBound(prefix []byte, nanos int64) []byte {
	b := make([]byte, len(prefix)+timestampKeySize)
	copy(b, prefix)
	putTimestamp(b[len(prefix):], nanos)
	return b
}

// reverseSeekKey returns the key a reverse iterator over prefix seeks to so
// that the first key it yields is the newest one at or before end; a zero
// end means no upper bound.
func reverseSeekKey(prefix []byte, end time.Time) []byte {
	if end.IsZero() || end.UnixNano() == math.MaxInt64 {
		return prefixEnd(prefix)
	}
	// Every stored key carries an id after the timestamp, so all keys for
	// end's nanosecond sort below this bound and all later ones above.
	return timestampBound(prefix, end.UnixNano()+1)
}

// prefixEnd returns the smallest key greater than every key with prefix.
// The prefixes used here always end in a byte below 0xff.
func prefixEnd(prefix []byte) []byte {
	end := concat(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return append(end, 0xff) // unreachable for the prefixes used here
}

// concat returns a new slice holding the parts one after another.
func concat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// ValidID reports whether id can be used as a user, key, budget or record
// id: every store (Badger, PostgreSQL) applies this one rule.
func ValidID(id string) bool { return validID(id) }

// validID reports whether id can be used as a user, key or budget id.
func validID(id string) bool {
	return id != "" && !strings.Contains(id, indexSeparator)
}
