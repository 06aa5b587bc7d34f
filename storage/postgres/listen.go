package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// changeChannel is the notification channel of migration 0003.
const changeChannel = "llm_gateway_changes"

// Change is a committed write, by any instance, to a table the gateway
// caches. The zero Change (Table "") means that changes may have been
// missed (the listening connection was lost and is back): drop every
// cached entry.
type Change struct {
	// Table is "users", "api_keys", "budgets" or "model_pricing".
	Table string
	// ID is the row's user id, key id, budget id or model key.
	ID string
	// KeyHashes are, for api_keys, the key's hash before and after the
	// write (one of them when the key was created or deleted, or when the
	// hash did not change).
	KeyHashes []string
	// Heartbeat, when set, makes this no change at all: it is the token of
	// a Store.Heartbeat, delivered after every change committed before it.
	Heartbeat string
}

// Heartbeat sends token on the change channel, in a transaction of its
// own. Notifications are delivered in commit order, so once Listen
// delivers it, every change committed before this call began has been
// delivered too; a heartbeat that does not arrive means changes may be
// lost although the listening connection looks alive.
func (s *Store) Heartbeat(ctx context.Context, token string) error {
	payload, err := json.Marshal(map[string]string{"s": s.schema, "hb": token})
	if err != nil {
		return err
	}
	err = s.run(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, `SELECT pg_notify($1, $2)`, changeChannel, string(payload))
		return err
	})
	if err != nil {
		return s.fail("sending a change heartbeat", err)
	}
	return nil
}

// listenBackoff bounds the wait between reconnection attempts.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// Listen calls fn for every change committed to the store's schema, by
// this instance or another, until ctx ends or the store is closed. It
// holds one connection of its own (outside the pool). Each time it
// (re)connects it calls fn(Change{}) first, since notifications sent
// while it was not listening are lost; it retries a lost connection with
// backoff and logs the failure once per outage. fn runs on Listen's
// goroutine and should be quick.
func (s *Store) Listen(ctx context.Context, fn func(Change)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := listenBackoffMin
	failing := false
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, func() {
			backoff, failing = listenBackoffMin, false
			fn(Change{})
		}, fn)
		if ctx.Err() != nil {
			return
		}
		if !failing {
			s.logger.Warn("database change notifications interrupted; reconnecting",
				zap.Error(s.redactor.redact(err)))
			failing = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

// listenOnce connects, listens, calls listening once the LISTEN is in
// force, then delivers notifications until the connection fails.
func (s *Store) listenOnce(ctx context.Context, listening func(), fn func(Change)) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "caddy-llm-gateway-listen"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{changeChannel}.Sanitize()); err != nil {
		return err
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var p struct {
			Schema string `json:"s"`
			Table  string `json:"t"`
			ID     string `json:"id"`
			Hashes struct {
				Old string `json:"old"`
				New string `json:"new"`
			} `json:"h"`
			Heartbeat string `json:"hb"`
		}
		if err := json.Unmarshal([]byte(n.Payload), &p); err != nil {
			s.logger.Warn("malformed change notification", zap.Error(err))
			fn(Change{}) // unknown change: flush all to stay correct
			continue
		}
		if p.Schema != s.schema {
			continue // another gateway's schema in the same database
		}
		if p.Heartbeat != "" {
			fn(Change{Heartbeat: p.Heartbeat})
			continue
		}
		c := Change{Table: p.Table, ID: p.ID}
		for _, h := range []string{p.Hashes.Old, p.Hashes.New} {
			if h != "" && (len(c.KeyHashes) == 0 || c.KeyHashes[0] != h) {
				c.KeyHashes = append(c.KeyHashes, h)
			}
		}
		fn(c)
	}
}
