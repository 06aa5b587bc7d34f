package llmgateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/internal/spool"
	"github.com/llmgateway/caddy-llm-gateway/storage"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres"
)

var _ gatewayStore = (*postgres.Store)(nil)

var (
	// renewInterval is how often an instance renews the leases of its
	// holds: well inside leaseLength, so that a slow round does not lose
	// a live stream's reservation.
	renewInterval = leaseLength / 3
	// expireInterval is how often an instance reclaims the holds of dead
	// instances (any instance may; admission ignores them already).
	expireInterval = leaseLength
)

const (
	// cacheCheckInterval is how often an instance checks that its change
	// notifications still arrive (see changeWatch): a cached key, user,
	// budget or price is at most two intervals stale when they stop.
	cacheCheckInterval = 500 * time.Millisecond
	// openTimeout bounds connecting to the database and migrating it.
	openTimeout = 30 * time.Second
)

// postgresConfig is what opens a PostgreSQL state.
type postgresConfig struct {
	url      string // resolved; holds the password: never logged
	maxConns int32
	// skipMigrations: auto_migrate off; the schema is checked, not migrated.
	skipMigrations bool
	spoolDir       string // where usage records wait out an outage
	// durability is the config's; a reload sets it again (Gateway.start).
	durability storage.Durability
}

// newPostgresState opens the PostgreSQL store at cfg.url (migrating its
// schema) and starts what an instance sharing it runs: the lease loop of its
// holds and the invalidation of its caches on every change by any instance.
func newPostgresState(cfg postgresConfig) (*gatewayState, error) {
	logger := caddy.Log().Named("llm_gateway.postgres")
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	sp, err := spool.Open(cfg.spoolDir)
	if err != nil {
		return nil, fmt.Errorf("opening the usage spool: %w", err)
	}
	store, err := postgres.Open(ctx, postgres.Options{URL: cfg.url, MaxConns: cfg.maxConns,
		SkipMigrations: cfg.skipMigrations, Durability: cfg.durability, Logger: logger})
	if errors.Is(err, postgres.ErrSchemaBehind) {
		err = fmt.Errorf("%w; with auto_migrate off, an operator migrates it: caddy llm-gateway migrate --schema-only --to <database_url>", err)
	}
	if err != nil {
		sp.Close()
		return nil, err
	}
	meter := newPGMeter(store, newInstanceID(), logger)
	meter.spool = sp
	watch := newChangeWatch(meter.instance)
	logger.Info("instance joined the database",
		zap.String("database", postgres.RedactURL(cfg.url)), zap.String("instance", meter.instance),
		zap.String("spool", sp.Dir()))
	return startGatewayState(store, meter,
		func(ctx context.Context, _ *gatewayState) { runLeases(ctx, meter) },
		func(ctx context.Context, _ *gatewayState) {
			meter.deliverSpool(ctx)
			if err := sp.Close(); err != nil {
				logger.Warn("closing the usage spool", zap.Error(err))
			}
		},
		func(ctx context.Context, st *gatewayState) {
			store.Listen(ctx, func(c postgres.Change) {
				if c.Heartbeat != "" {
					watch.heard(c.Heartbeat)
					return
				}
				forgetChanged(st.cache, c)
			})
		},
		func(ctx context.Context, st *gatewayState) { checkChanges(ctx, store, watch, st) },
	), nil
}

// newInstanceID names this process's holds in the database: the host, the
// process and a random part, so that a restarted process never renews the
// holds of the one before it.
func newInstanceID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString()[:8])
}

// runLeases renews the leases of the instance's holds every renewInterval,
// reclaims expired ones every expireInterval, and retries the releases
// that failed, until ctx ends (then it tries those once more).
func runLeases(ctx context.Context, m *pgMeter) {
	renew := time.NewTicker(renewInterval)
	defer renew.Stop()
	expire := time.NewTicker(expireInterval)
	defer expire.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			m.retryReleases(context.Background())
			return
		case now := <-renew.C:
			rctx, cancel := context.WithTimeout(ctx, releaseTimeout)
			_, err := m.store.RenewLeases(rctx, m.instance, now.Add(leaseLength))
			cancel()
			switch {
			case err != nil && !failing:
				failing = true
				m.logger.Warn("renewing budget hold leases failed", zap.Error(err))
			case err == nil:
				failing = false
				m.retryReleases(ctx)
			}
		case now := <-expire.C:
			rctx, cancel := context.WithTimeout(ctx, releaseTimeout)
			if _, err := m.store.ExpireLeases(rctx, now); err != nil && !failing {
				m.logger.Warn("expiring budget hold leases failed", zap.Error(err))
			}
			cancel()
		}
	}
}

// checkChanges drops the cached objects whenever the change notifications
// may have stopped arriving: every cacheCheckInterval it sends a heartbeat
// through the database and drops them when the previous one has not come
// back, or when it cannot send one. While they arrive, the caches are kept
// (each change notification drops them, see newPostgresState), so the hot
// path does not go to the database for what it has cached.
func checkChanges(ctx context.Context, store *postgres.Store, w *changeWatch, st *gatewayState) {
	t := time.NewTicker(cacheCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if w.missed() {
				st.cache.invalidate()
			}
			hctx, cancel := context.WithTimeout(ctx, cacheCheckInterval)
			err := store.Heartbeat(hctx, w.next())
			cancel()
			if err != nil {
				st.cache.invalidate()
			}
		}
	}
}
