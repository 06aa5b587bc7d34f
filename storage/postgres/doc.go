// Package postgres persists the gateway's state in PostgreSQL, so that
// several gateway instances share one set of users, keys, budgets, prices,
// usage records, spend counters, budget reservations and rate-limit
// windows.
//
// A Store has the same methods, with the same semantics, as the embedded
// Badger store (storage.Store), plus the shared-state metering the Badger
// store does in memory: Admit reserves a request's worst-case cost against
// every budget that applies and counts it in the rate-limit windows, in
// one statement shared by the admissions waiting at the same time; Settle stores the usage records of a request and releases
// its hold in one batched transaction; RenewLeases and ExpireLeases keep
// the holds of live instances and free those of dead ones. Listen reports
// the writes of every instance to users, keys, budgets and prices (via
// LISTEN/NOTIFY), so that caches can be invalidated across instances.
//
// The schema is created and migrated by Open (migrations/*.sql, applied in
// order under an advisory lock and recorded in schema_migrations). Money is
// BIGINT nano-dollars. PostgreSQL keeps timestamps to the microsecond, so
// the store truncates the times of every record it writes to the
// microsecond, in the caller's value too: what a caller holds after a
// write equals what every instance reads.
//
// Errors wrap the storage sentinels (storage.ErrNotFound, ErrExists,
// ErrUserDeleted, ErrBudgetMissing, ErrClosed) as the Badger store does,
// and ErrUnavailable when the database cannot be reached. No error carries
// the database password.
package postgres
