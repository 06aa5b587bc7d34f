package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// ErrUnavailable means the database could not be reached or refused to
// serve (connection refused or lost, pool exhausted past its acquire
// timeout, server shutting down or out of connections). The gateway
// answers such errors with 503; a usage record that failed with it can be
// spooled and delivered again.
var ErrUnavailable = errors.New("database unavailable")

// ErrSchemaBehind means the database schema is older than this build and
// Options.SkipMigrations forbade migrating it.
var ErrSchemaBehind = errors.New("database schema is behind this gateway version")

// IsUnavailable reports whether err means the database cannot be reached
// (see ErrUnavailable), as opposed to a refusal of the operation itself.
func IsUnavailable(err error) bool {
	return errors.Is(err, ErrUnavailable)
}

// PostgreSQL error codes the store maps to storage errors.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeSerialization       = "40001"
	codeDeadlock            = "40P01"
)

// unavailable classifies err: true for failures to reach or keep a
// connection, and for server states that refuse every query for a while.
func unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"): // connection exception
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // shutdown, crash, starting
			return true
		case pgErr.Code == "53300": // too many connections
			return true
		case pgErr.Code == "25006": // read-only transaction: a standby, or a failover in progress
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	case pgconn.Timeout(err), errors.Is(err, context.DeadlineExceeded):
		// A query or an acquisition that ran out of time: the database is
		// too slow or the pool is exhausted; either way not the request's
		// fault.
		return true
	case pgconn.SafeToRetry(err):
		return true
	}
	return false
}

// retryable reports whether a transaction failed only because it raced
// another one and may simply run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == codeSerialization || pgErr.Code == codeDeadlock)
}

// isCode reports whether err is a PostgreSQL error with the given code.
func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// classify maps err from pgx to the store's errors: pgx.ErrNoRows becomes
// storage.ErrNotFound, a closed pool storage.ErrClosed, a connection
// failure ErrUnavailable. Other errors are returned as they are.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return storage.ErrNotFound
	case errors.Is(err, storage.ErrClosed):
		return storage.ErrClosed
	case errors.Is(err, ErrUnavailable):
		return err
	case unavailable(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// redactor removes the database password from error messages. pgx already
// tries to, but only best effort (its own docs say so), and an error can
// quote the URL from elsewhere: every error the store returns passes here.
type redactor struct {
	secrets []string // the password as given, and as it appears escaped in a URL
}

// newRedactor returns a redactor for the password of the connection
// string raw (a URL or key=value pairs) and of the parsed config.
func newRedactor(raw, password string) redactor {
	var r redactor
	add := func(s string) {
		if s != "" && !containsString(r.secrets, s) {
			r.secrets = append(r.secrets, s)
		}
	}
	add(password)
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
			add(url.PathEscape(p))
			add(url.QueryEscape(p))
		}
	} else if i := strings.Index(raw, "://"); i >= 0 {
		// An unparsable URL: take what sits between ':' and '@' after the scheme.
		rest := raw[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				add(rest[colon+1 : at])
			}
		}
	}
	return r
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// redact returns err with every secret replaced in its message, keeping
// its chain for errors.Is and errors.As.
func (r redactor) redact(err error) error {
	if err == nil || len(r.secrets) == 0 {
		return err
	}
	msg := err.Error()
	clean := msg
	for _, s := range r.secrets {
		clean = strings.ReplaceAll(clean, s, "xxxxx")
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

// redactedError is an error whose message had a secret removed.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// RedactURL returns the connection URL with its password replaced by
// "xxxxx", for logs and served configuration.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable database URL)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
