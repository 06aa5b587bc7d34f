package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// Defaults of Options.
const (
	DefaultMaxConns       = 16
	DefaultConnectTimeout = 5 * time.Second
	DefaultAcquireTimeout = 2 * time.Second
	DefaultQueryTimeout   = 5 * time.Second
	// maxTxRetries bounds the runs of a transaction that lost a
	// serialization or deadlock race.
	maxTxRetries = 16
)

// Options configures Open. Only URL is required.
type Options struct {
	// URL is the connection string: postgres://user:password@host:port/db?sslmode=…
	// (or key=value pairs). pgx reads the usual PG* environment variables
	// for what it leaves out.
	URL string
	// Schema, when set, is the schema the store's tables live in: it is the
	// search_path of every connection, and Open creates it when it migrates.
	// Empty: the connection's default search_path.
	Schema string
	// MaxConns caps the pool. Default DefaultMaxConns.
	MaxConns int32
	// MinConns is how many idle connections the pool keeps open. Default 0.
	MinConns int32
	// ConnectTimeout bounds establishing one connection (TCP, TLS,
	// authentication). Default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// AcquireTimeout bounds the wait for a free connection of the pool; past
	// it an operation fails with ErrUnavailable instead of queueing.
	// Default DefaultAcquireTimeout.
	AcquireTimeout time.Duration
	// QueryTimeout bounds every operation once it holds a connection (a
	// query, or a whole transaction). Default DefaultQueryTimeout.
	QueryTimeout time.Duration
	// MaxConnLifetime closes connections older than this (behind a proxy
	// or load balancer, connections should move now and then). Default 1h.
	MaxConnLifetime time.Duration
	// SkipMigrations makes Open check the schema instead of migrating it:
	// it fails with ErrSchemaBehind when a migration is missing. For
	// deployments that migrate in a separate step.
	SkipMigrations bool
	// Durability says when a settlement (usage records and their charges)
	// counts as committed; see Store.SetDurability. Default
	// storage.DurabilityOS.
	Durability storage.Durability
	// Logger receives the store's own logs. Nil discards them.
	Logger *zap.Logger
	// Tracer, when set, sees every statement the store's connections send
	// (pgx's hook; for metrics, and for the tests that count round trips).
	Tracer pgx.QueryTracer

	// vacuumAfter and vacuumInterval replace defaultVacuumAfter and
	// defaultVacuumInterval when set (tests).
	vacuumAfter    int64
	vacuumInterval time.Duration
	// foldInterval and foldIdleInterval replace defaultFoldInterval and
	// defaultFoldIdleInterval when set (tests).
	foldInterval, foldIdleInterval time.Duration
}

// Store is the gateway's state in PostgreSQL. Create it with Open and
// release it with Close. It is safe for concurrent use.
type Store struct {
	pool     *pgxpool.Pool
	logger   *zap.Logger
	redactor redactor

	acquireTimeout time.Duration
	queryTimeout   time.Duration

	// mu guards closed; operations hold it for reading while they use the
	// pool and Close takes it for writing, as in the Badger store.
	mu     sync.RWMutex
	closed bool

	settlements chan *settleRequest
	settleTurn  chan struct{} // one token: whoever holds it commits a batch of settlements
	writerDone  chan struct{}
	admissions  chan *admitCall
	admitters   sync.WaitGroup // the admission workers
	durability  atomic.Int32   // a storage.Durability; see SetDurability

	schema  string        // current_schema() of the store's tables, for Listen
	closing chan struct{} // closed when Close starts; stops Listen and the background loops

	released       atomic.Int64  // holds released since the last vacuum (see vacuum.go)
	vacuumAfter    int64         // defaultVacuumAfter unless Options say otherwise
	vacuumInterval time.Duration // defaultVacuumInterval unless Options say otherwise
	vacuumNow      chan struct{} // wakes the vacuumer
	vacuumDone     chan struct{} // closed when the vacuumer returns

	backlogged       atomic.Bool   // settled records since the last fold (see summary_backlog.go)
	foldInterval     time.Duration // defaultFoldInterval unless Options say otherwise
	foldIdleInterval time.Duration // defaultFoldIdleInterval unless Options say otherwise
	foldDone         chan struct{} // closed when the folder returns

	retention     atomic.Int64  // a time.Duration; see SetUsageRetention
	retentionWake chan struct{} // a new retention was set
	retentionDone chan struct{} // closed when the retention loop returns
}

// Open connects to the database described by opts, migrates its schema
// (or checks it, with SkipMigrations), and starts the usage writer. It
// fails with an error wrapping ErrUnavailable when the database does not
// answer within the connect timeout.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.URL == "" {
		return nil, errors.New("opening database: no URL given")
	}
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		// pgx redacts what it can; redact the rest with what we can parse.
		return nil, newRedactor(opts.URL, "").redact(fmt.Errorf("opening database: parsing URL: %w", err))
	}
	red := newRedactor(opts.URL, cfg.ConnConfig.Password)
	s := &Store{
		logger:           opts.Logger,
		redactor:         red,
		acquireTimeout:   orDefault(opts.AcquireTimeout, DefaultAcquireTimeout),
		queryTimeout:     orDefault(opts.QueryTimeout, DefaultQueryTimeout),
		settlements:      make(chan *settleRequest, settleQueueSize),
		settleTurn:       make(chan struct{}, 1),
		writerDone:       make(chan struct{}),
		admissions:       make(chan *admitCall, admitQueueSize),
		closing:          make(chan struct{}),
		vacuumNow:        make(chan struct{}, 1),
		vacuumAfter:      cmp.Or(opts.vacuumAfter, defaultVacuumAfter),
		vacuumInterval:   cmp.Or(opts.vacuumInterval, defaultVacuumInterval),
		vacuumDone:       make(chan struct{}),
		retentionWake:    make(chan struct{}, 1),
		retentionDone:    make(chan struct{}),
		foldInterval:     cmp.Or(opts.foldInterval, defaultFoldInterval),
		foldIdleInterval: cmp.Or(opts.foldIdleInterval, defaultFoldIdleInterval),
		foldDone:         make(chan struct{}),
	}
	if s.logger == nil {
		s.logger = zap.NewNop()
	}
	s.SetDurability(opts.Durability)
	configurePool(cfg, opts)

	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, red.redact(fmt.Errorf("opening database: %w", classify(err)))
	}
	if err := s.prepareSchema(ctx, opts); err != nil {
		s.pool.Close()
		return nil, red.redact(fmt.Errorf("opening database: %w", classify(err)))
	}
	if err := s.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&s.schema); err != nil {
		s.pool.Close()
		return nil, red.redact(fmt.Errorf("opening database: reading current schema: %w", classify(err)))
	}
	go s.writeSettlements()
	s.admitters.Add(admitWorkers)
	for range admitWorkers {
		go s.admitBatches()
	}
	go s.vacuumHolds()
	go s.expireUsage()
	go s.foldSummaries()
	return s, nil
}

// SetDurability sets when a settlement counts as committed, for the
// settlements committed from now on (a reload's setting):
//
//   - storage.DurabilityOS: the settlement's transaction sets
//     synchronous_commit off for itself (set_config(…, true), inside the
//     settlement's one statement), so its commit returns once the commit
//     record is in the database server's WAL buffers, without waiting for
//     the WAL flush, and releases its row locks at once. It is visible to
//     every other session at once, and it survives a crash of the
//     gateway; a crash of the database server or of its machine may lose
//     the settlements of the last 3 × wal_writer_delay (600 ms by
//     default), never part of one.
//   - storage.DurabilityFsync: synchronous_commit is left as the database
//     has it (on by default): the commit returns once flushed to disk.
//
// Other writes (users, keys, budgets, prices, lease and hold bookkeeping)
// are not affected: they commit with the database's setting. A spooled
// settlement is always delivered with DurabilityFsync (Settlement.Durable),
// since the spool forgets it once delivered.
func (s *Store) SetDurability(d storage.Durability) { s.durability.Store(int32(d)) }

// configurePool applies opts to cfg: pool size, timeouts, search_path,
// and timestamps scanned in UTC (pgx would use time.Local).
func configurePool(cfg *pgxpool.Config, opts Options) {
	cfg.MaxConns = DefaultMaxConns
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	cfg.MinConns = max(min(opts.MinConns, cfg.MaxConns), 0)
	cfg.MaxConnLifetime = orDefault(opts.MaxConnLifetime, time.Hour)
	cfg.MaxConnIdleTime = 10 * time.Minute
	cfg.HealthCheckPeriod = 30 * time.Second
	if cfg.ConnConfig.ConnectTimeout == 0 || opts.ConnectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = orDefault(opts.ConnectTimeout, DefaultConnectTimeout)
	}
	if opts.Tracer != nil {
		cfg.ConnConfig.Tracer = opts.Tracer
	}
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "caddy-llm-gateway"
	}
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		conn.TypeMap().RegisterType(&pgtype.Type{
			Name:  "timestamptz",
			OID:   pgtype.TimestamptzOID,
			Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC},
		})
		return nil
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Close waits for queued admissions to be decided and settlements to be
// committed, stops the admission workers, the usage writer, the vacuumer,
// the retention loop and the summary folder, and closes the pool. Further
// calls return nil; every other method fails with an error wrapping
// storage.ErrClosed afterwards.
func (s *Store) Close() error {
	if s.shutdown() {
		// After mu is released: a vacuum or a deletion may be waiting for it.
		<-s.vacuumDone
		<-s.retentionDone
		<-s.foldDone
	}
	return nil
}

// shutdown is Close but for the vacuumer, the retention loop and the
// folder; it reports whether this call closed the store.
func (s *Store) shutdown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closed = true
	close(s.closing)
	close(s.admissions) // no sender is active: senders hold mu for reading
	s.admitters.Wait()  // before the pool closes: a worker may still release holds
	close(s.settlements)
	<-s.writerDone
	s.pool.Close()
	return true
}

// Ping checks that the database answers a query.
func (s *Store) Ping() error {
	err := s.run(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
		return c.Ping(ctx)
	})
	if err != nil {
		return s.fail("pinging database", err)
	}
	return nil
}

// Probe checks that the database takes a write (a primary, not a standby,
// with room to write): it upserts one row.
func (s *Store) Probe() error {
	err := s.run(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO probe (id, at) VALUES (1, now())
			ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at`)
		return err
	})
	if err != nil {
		return s.fail("probing database", err)
	}
	return nil
}

// run runs fn on a connection of the pool: the wait for the connection is
// bounded by the acquire timeout and fn by the query timeout.
func (s *Store) run(ctx context.Context, fn func(ctx context.Context, c *pgxpool.Conn) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return storage.ErrClosed
	}
	return s.runOpen(ctx, fn)
}

// runOpen is run for callers that keep the pool open themselves: the
// usage writer, which Close waits for.
func (s *Store) runOpen(ctx context.Context, fn func(ctx context.Context, c *pgxpool.Conn) error) error {
	actx, cancel := context.WithTimeout(ctx, s.acquireTimeout)
	c, err := s.pool.Acquire(actx)
	cancel()
	if err != nil {
		if ctx.Err() == nil && actx.Err() != nil {
			return fmt.Errorf("%w: no connection within %s: %w", ErrUnavailable, s.acquireTimeout, err)
		}
		return classify(err)
	}
	defer c.Release()
	qctx, cancel := context.WithTimeout(ctx, s.queryTimeout)
	defer cancel()
	return classify(fn(qctx, c))
}

// tx runs fn in a transaction and commits it, running it again in a fresh
// transaction when it lost a serialization or deadlock race. fn must
// therefore have no side effects outside tx.
func (s *Store) tx(fn func(ctx context.Context, tx pgx.Tx) error) error {
	var err error
	for range maxTxRetries {
		err = s.run(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
			return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error { return fn(ctx, tx) })
		})
		if !retryable(err) {
			return err
		}
	}
	return fmt.Errorf("giving up after %d attempts: %w", maxTxRetries, err)
}

// fail wraps err with what the store was doing, redacting the password.
func (s *Store) fail(doing string, err error) error {
	return s.redactor.redact(fmt.Errorf("%s: %w", doing, err))
}

// queryer is what single statements run on: a pooled connection or a
// transaction.
type queryer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var (
	_ queryer = (*pgxpool.Conn)(nil)
	_ queryer = (pgx.Tx)(nil)
)
