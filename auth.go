package llmgateway

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unsafe"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// Virtual key format: "gw-" and 64 URL-safe characters (48 random bytes).
const (
	keyPrefix       = "gw-"
	keyRandomBytes  = 48
	keyMinLength    = 50
	keyMaxLength    = 256
	keyPrefixLength = 8 // characters shown as key_prefix
)

// Exact messages of the contract.
const (
	msgMissingCredentials = "Missing X-AnyLLM-Key or Authorization header"
	msgInvalidHeader      = "Invalid header format. Expected 'Bearer <token>'"
	msgInvalidMasterKey   = "Invalid master key"
	msgNoMasterKey        = "Master key not configured. Set GATEWAY_MASTER_KEY environment variable."
	msgInvalidKey         = "Invalid API key"
	msgInactiveKey        = "API key is inactive"
	msgExpiredKey         = "API key has expired"
)

// principal is who a request acts as: the master key, or a virtual key.
type principal struct {
	master bool
	key    *storage.APIKey // nil for the master key
}

// extractCredential reads the caller's token from, in order, X-AnyLLM-Key
// (or AnyLLM-Key), Authorization (both "Bearer <token>") and x-api-key (raw).
// The first present, non-empty header wins even when it is malformed.
func extractCredential(h http.Header) (string, *apiError) {
	for _, name := range [...]string{"X-Anyllm-Key", "Anyllm-Key", "Authorization"} {
		vals := h[name]
		if len(vals) == 0 || (len(vals) == 1 && vals[0] == "") {
			continue
		}
		if len(vals) > 1 {
			return "", errUnauthorized("invalid_header_format", msgInvalidHeader)
		}
		token, ok := strings.CutPrefix(vals[0], "Bearer ")
		if !ok {
			return "", errUnauthorized("invalid_header_format", msgInvalidHeader)
		}
		return token, nil
	}
	if vals := h["X-Api-Key"]; len(vals) > 0 && !(len(vals) == 1 && vals[0] == "") {
		if len(vals) > 1 {
			return "", errUnauthorized("invalid_header_format", msgInvalidHeader)
		}
		return vals[0], nil
	}
	return "", errUnauthorized("missing_credentials", msgMissingCredentials)
}

// checkKeyFormat validates a virtual key's shape before any lookup.
func checkKeyFormat(token string) *apiError {
	var reason string
	switch {
	case !strings.HasPrefix(token, keyPrefix):
		reason = "API key must start with 'gw-' prefix"
	case len(token) < keyMinLength:
		reason = fmt.Sprintf("API key is too short. Expected at least %d characters, got %d", keyMinLength, len(token))
	case len(token) > keyMaxLength:
		reason = fmt.Sprintf("API key is too long. Expected at most %d characters", keyMaxLength)
	case !validKeyChars(token[len(keyPrefix):]):
		reason = "API key contains invalid characters. Must match pattern: gw-[A-Za-z0-9_-]+"
	default:
		return nil
	}
	return errUnauthorized("invalid_api_key_format", "Invalid API key format: "+reason)
}

func validKeyChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return len(s) > 0
}

// generateKey returns a new virtual key secret and its stored hash.
func generateKey() (secret, hash string, err error) {
	var b [keyRandomBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("generating key: %w", err)
	}
	secret = keyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, hashKey(secret), nil
}

// hashKey is the stored form of a secret: hex SHA-256.
func hashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// isMaster compares the token with the master key in constant time (on the
// hashes, so the length does not leak either).
func (g *Gateway) isMaster(token string) bool {
	return g.isMasterHash(sha256Sum(token))
}

// isMasterHash compares the SHA-256 of a token with the master key's.
func (g *Gateway) isMasterHash(sum [sha256.Size]byte) bool {
	return g.hasMaster && subtle.ConstantTimeCompare(sum[:], g.masterHash[:]) == 1
}

// requireMaster admits only the master key (admin routes).
func (g *Gateway) requireMaster(r *http.Request) error {
	if !g.hasMaster {
		return newError(http.StatusServiceUnavailable, "master_key_not_configured", msgNoMasterKey)
	}
	token, aerr := extractCredential(r.Header)
	if aerr != nil {
		return aerr
	}
	if !g.isMaster(token) {
		return errUnauthorized("invalid_master_key", msgInvalidMasterKey)
	}
	return nil
}

// authenticate admits the master key or an active, unexpired virtual key.
func (g *Gateway) authenticate(r *http.Request) (principal, error) {
	token, aerr := extractCredential(r.Header)
	if aerr != nil {
		return principal{}, aerr
	}
	sum := sha256Sum(token)
	if g.isMasterHash(sum) {
		return principal{master: true}, nil
	}
	if aerr := checkKeyFormat(token); aerr != nil {
		return principal{}, aerr
	}
	key, err := g.lookupKey(sum)
	if err != nil {
		return principal{}, err
	}
	now := g.now()
	switch {
	case !key.IsActive:
		return principal{}, errUnauthorized("inactive_api_key", msgInactiveKey)
	case key.ExpiresAt != nil && key.ExpiresAt.Before(now):
		return principal{}, errUnauthorized("expired_api_key", msgExpiredKey)
	}
	g.state.touch.note(key.ID, now)
	return principal{key: key}, nil
}

// lookupKey finds a virtual key by the SHA-256 of its secret: the cache
// first, then the store.
func (g *Gateway) lookupKey(sum [sha256.Size]byte) (*storage.APIKey, error) {
	cache := g.state.cache.keys
	key, ok, gen := cache.get(sum)
	if ok {
		return key, nil
	}
	key, err := g.store().GetKeyByHash(hex.EncodeToString(sum[:]))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errUnauthorized("invalid_api_key", msgInvalidKey)
	}
	if err != nil {
		return nil, err
	}
	cache.put(sum, key, gen)
	return key, nil
}

// sha256Sum hashes s without copying it: converting a key-sized string to
// []byte would allocate on every authentication.
func sha256Sum(s string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(s), len(s)))
}
