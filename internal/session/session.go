// Package session keeps the dashboard's sign-in sessions: an unguessable
// id for the cookie, a CSRF token for the forms, the credential the
// operator signed in with, and an expiry. Sessions live in the memory of
// one process; nothing is written to disk, so a restart signs everyone out.
package session

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// Defaults for a Store.
const (
	// DefaultLifetime is how long a session lasts after sign-in, however
	// much it is used.
	DefaultLifetime = 12 * time.Hour
	// DefaultIdle is how long a session lasts without a request.
	DefaultIdle = time.Hour
	// DefaultMaxSessions bounds the sessions kept at once.
	DefaultMaxSessions = 1000
)

// ErrFull means the store holds as many live sessions as it may.
var ErrFull = errors.New("too many open sessions: sign out elsewhere or wait for sessions to expire")

// Session is one signed-in browser.
type Session struct {
	// ID is the cookie's value: 256 random bits, URL-safe base64.
	ID string
	// CSRF is the token every write must carry: 256 random bits.
	CSRF string
	// Credential is what the operator signed in with (the master key). It
	// never leaves the server: the dashboard presents it to the admin API
	// on the operator's behalf.
	Credential string
	Created    time.Time
	// Expires is when the session ends unless it is used again (no later
	// than Created + lifetime). The store updates it under its lock.
	Expires time.Time

	mu sync.Mutex
	// flash holds messages for the next page, read once.
	flash []Flash
}

// Flash is a message shown once on the next page: a notice, an error, or a
// secret that the dashboard shows once (a new key).
type Flash struct {
	Kind  string // "notice", "error" or "secret"
	Text  string
	Value string // for "secret": the secret itself
}

// AddFlash queues a message for the next page.
func (s *Session) AddFlash(f Flash) {
	s.mu.Lock()
	s.flash = append(s.flash, f)
	s.mu.Unlock()
}

// TakeFlashes returns the queued messages and forgets them, so a reload
// does not show them again.
func (s *Session) TakeFlashes() []Flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flash
	s.flash = nil
	return f
}

// CheckCSRF reports whether token is the session's CSRF token, in
// constant time.
func (s *Session) CheckCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRF)) == 1
}

// Store holds sessions by the SHA-256 of their id. It is safe for
// concurrent use.
type Store struct {
	// Now is the clock; tests replace it before use.
	Now func() time.Time

	mu       sync.Mutex
	lifetime time.Duration
	idle     time.Duration
	max      int
	sessions map[[sha256.Size]byte]*Session
}

// NewStore returns an empty store with the default limits.
func NewStore() *Store {
	return &Store{
		Now:      time.Now,
		lifetime: DefaultLifetime,
		idle:     DefaultIdle,
		max:      DefaultMaxSessions,
		sessions: make(map[[sha256.Size]byte]*Session),
	}
}

// SetLimits changes how long sessions last (zero keeps a limit as it is)
// and how many may be open at once. Open sessions keep the expiry they
// have until their next use.
func (st *Store) SetLimits(lifetime, idle time.Duration, maxSessions int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if lifetime > 0 {
		st.lifetime = lifetime
	}
	if idle > 0 {
		st.idle = idle
	}
	if maxSessions > 0 {
		st.max = maxSessions
	}
}

// Create opens a session for credential. Expired sessions are dropped
// first; if the store is still full, ErrFull.
func (st *Store) Create(credential string) (*Session, error) {
	id, err := randomToken()
	if err != nil {
		return nil, err
	}
	csrf, err := randomToken()
	if err != nil {
		return nil, err
	}
	now := st.Now()
	s := &Session{ID: id, CSRF: csrf, Credential: credential, Created: now}

	st.mu.Lock()
	defer st.mu.Unlock()
	s.Expires = st.expiry(s, now)
	if len(st.sessions) >= st.max {
		st.dropExpired(now)
	}
	if len(st.sessions) >= st.max {
		return nil, ErrFull
	}
	st.sessions[sha256.Sum256([]byte(id))] = s
	return s, nil
}

// Get returns the live session with this id and extends its idle expiry,
// or false. An expired session is removed.
func (st *Store) Get(id string) (*Session, bool) {
	if id == "" {
		return nil, false
	}
	key := sha256.Sum256([]byte(id))
	now := st.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.sessions[key]
	if !ok {
		return nil, false
	}
	if !now.Before(s.Expires) {
		delete(st.sessions, key)
		return nil, false
	}
	s.Expires = st.expiry(s, now)
	return s, true
}

// Delete ends the session with this id, if any.
func (st *Store) Delete(id string) {
	key := sha256.Sum256([]byte(id))
	st.mu.Lock()
	delete(st.sessions, key)
	st.mu.Unlock()
}

// Len is the number of sessions held, expired ones included until they are
// dropped.
func (st *Store) Len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.sessions)
}

// expiry is when s ends if its last use is now: after the idle time, and
// never after its lifetime.
func (st *Store) expiry(s *Session, now time.Time) time.Time {
	end := s.Created.Add(st.lifetime)
	if idle := now.Add(st.idle); idle.Before(end) {
		return idle
	}
	return end
}

func (st *Store) dropExpired(now time.Time) {
	for k, s := range st.sessions {
		if !now.Before(s.Expires) {
			delete(st.sessions, k)
		}
	}
}

// randomToken returns 32 random bytes as unpadded URL-safe base64.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
