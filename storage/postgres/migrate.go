package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// migrationFiles are the schema's versions: NNNN_name.sql, applied in
// version order, each in its own transaction. A released file is never
// edited; a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one versioned schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var list []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.sql", name)
		}
		body, err := migrationFiles.ReadFile(path.Join("migrations", name))
		if err != nil {
			return nil, err
		}
		list = append(list, migration{version: version, name: strings.TrimSuffix(name, ".sql"), sql: string(body)})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].version < list[j].version })
	for i := 1; i < len(list); i++ {
		if list[i].version == list[i-1].version {
			return nil, fmt.Errorf("two migrations with version %d", list[i].version)
		}
	}
	return list, nil
}

// SchemaVersion is the schema version this build migrates to.
func SchemaVersion() int {
	list, err := migrations()
	if err != nil || len(list) == 0 {
		return 0
	}
	return list[len(list)-1].version
}

// prepareSchema migrates the schema, or with SkipMigrations checks that it
// is current.
func (s *Store) prepareSchema(ctx context.Context, opts Options) error {
	list, err := migrations()
	if err != nil {
		return fmt.Errorf("reading migrations: %w", err)
	}
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	if opts.SkipMigrations {
		return checkSchema(ctx, c, list)
	}
	return s.migrate(ctx, c, opts.Schema, list)
}

// migrationLockKey is the advisory lock that serialises migrations of one
// schema: instances starting at once on an empty database take turns, and
// all but the first find nothing left to do.
const migrationLockSQL = `SELECT pg_advisory_lock(hashtextextended('caddy-llm-gateway migrations ' || coalesce(nullif($1, ''), current_schema(), ''), 0))`
const migrationUnlockSQL = `SELECT pg_advisory_unlock(hashtextextended('caddy-llm-gateway migrations ' || coalesce(nullif($1, ''), current_schema(), ''), 0))`

// migrate applies the migrations the schema lacks under the migration
// lock, each in a transaction that also records it in schema_migrations.
func (s *Store) migrate(ctx context.Context, c *pgxpool.Conn, schema string, list []migration) (err error) {
	if _, err := c.Exec(ctx, migrationLockSQL, schema); err != nil {
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	defer func() {
		// A session lock outlives a failed transaction: release it on
		// every path (a lost connection releases it by itself).
		if _, uerr := c.Exec(context.WithoutCancel(ctx), migrationUnlockSQL, schema); uerr != nil && err == nil {
			err = fmt.Errorf("releasing the migration lock: %w", uerr)
		}
	}()

	if schema != "" {
		if _, err := c.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("creating schema: %w", err)
		}
	}
	if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	applied, err := appliedVersions(ctx, c)
	if err != nil {
		return err
	}
	if err := checkKnown(applied, list); err != nil {
		return err
	}
	for _, m := range list {
		if applied[m.version] {
			continue
		}
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("applying migration %s: %w", m.name, err)
		}
		s.logger.Info("applied database migration", zap.Int("version", m.version), zap.String("name", m.name))
	}
	return nil
}

// checkSchema fails unless every migration has been applied.
func checkSchema(ctx context.Context, c *pgxpool.Conn, list []migration) error {
	applied, err := appliedVersions(ctx, c)
	if isCode(err, "42P01") { // undefined_table: never migrated
		return fmt.Errorf("%w: no schema_migrations table (migrations are skipped)", ErrSchemaBehind)
	}
	if err != nil {
		return err
	}
	if err := checkKnown(applied, list); err != nil {
		return err
	}
	var missing []string
	for _, m := range list {
		if !applied[m.version] {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s (migrations are skipped)", ErrSchemaBehind, strings.Join(missing, ", "))
	}
	return nil
}

// appliedVersions reads schema_migrations.
func appliedVersions(ctx context.Context, c *pgxpool.Conn) (map[int]bool, error) {
	rows, err := c.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("reading schema_migrations: %w", err)
	}
	applied := make(map[int]bool, len(versions))
	for _, v := range versions {
		applied[int(v)] = true
	}
	return applied, nil
}

// checkKnown refuses a schema migrated by a newer build, whose changes this
// one does not know, as the Badger store refuses a newer format.
func checkKnown(applied map[int]bool, list []migration) error {
	known := make(map[int]bool, len(list))
	for _, m := range list {
		known[m.version] = true
	}
	for v := range applied {
		if !known[v] {
			return fmt.Errorf("%w: the database has schema version %d, this build knows up to %d",
				storage.ErrUnknownFormat, v, list[len(list)-1].version)
		}
	}
	return nil
}
