-- Users, keys, budgets, prices, usage records and spend periods: the state
-- the Badger store keeps, as tables. Money is BIGINT nano-dollars
-- (storage.Money), never floating point. Ids and model keys use the "C"
-- collation so that ORDER BY is byte order, the order the Badger store
-- lists in. JSON columns are json, not jsonb, so metadata reads back
-- byte for byte as it was written.

CREATE TABLE budgets (
	budget_id           text COLLATE "C" PRIMARY KEY,
	max_budget          bigint CHECK (max_budget >= 0),
	budget_duration_sec bigint,
	duration_changes    json,
	created_at          timestamptz NOT NULL,
	updated_at          timestamptz NOT NULL
);

CREATE TABLE users (
	user_id              text COLLATE "C" PRIMARY KEY,
	alias                text,
	-- NO ACTION: DeleteBudget clears its users itself, in the transaction
	-- that locks and deletes the budget.
	budget_id            text COLLATE "C" REFERENCES budgets (budget_id),
	budget_started_at    timestamptz,
	next_budget_reset_at timestamptz,
	blocked              boolean NOT NULL DEFAULT false,
	created_at           timestamptz NOT NULL,
	updated_at           timestamptz NOT NULL,
	deleted_at           timestamptz,
	metadata             json
);
-- ListUsers pages through active users in id order.
CREATE INDEX users_active_idx ON users (user_id) WHERE deleted_at IS NULL;
-- DeleteBudget finds the users on a budget.
CREATE INDEX users_budget_idx ON users (budget_id) WHERE budget_id IS NOT NULL;

CREATE TABLE api_keys (
	id                  text COLLATE "C" PRIMARY KEY,
	key_hash            text NOT NULL UNIQUE, -- hex SHA-256 of the secret; auth looks keys up by it
	key_prefix          text NOT NULL,
	key_name            text,
	-- Users are only ever soft deleted, so this never dangles.
	user_id             text COLLATE "C" NOT NULL REFERENCES users (user_id),
	created_at          timestamptz NOT NULL,
	last_used_at        timestamptz,
	expires_at          timestamptz,
	is_active           boolean NOT NULL,
	metadata            json,
	allowed_models      text[],
	max_budget          bigint,
	budget_duration_sec bigint,
	budget_started_at   timestamptz,
	rpm_limit           bigint,
	tpm_limit           bigint,
	duration_changes    json
);
-- DeleteUser deactivates the keys of a user.
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

CREATE TABLE model_pricing (
	model_key                text COLLATE "C" PRIMARY KEY, -- provider:model
	input_price_per_million  double precision NOT NULL,   -- a rate, not an amount of money
	output_price_per_million double precision NOT NULL,
	created_at               timestamptz NOT NULL,
	updated_at               timestamptz NOT NULL
);

-- One row per upstream attempt. No foreign keys: records outlive the keys
-- (DeleteKey keeps them) and are written by the hot path, which must not
-- wait on admin locks.
CREATE TABLE usage_records (
	id                   text COLLATE "C" PRIMARY KEY, -- the idempotency key of a delivery
	request_id           text NOT NULL,
	user_id              text COLLATE "C" NOT NULL,
	api_key_id           text COLLATE "C",             -- NULL for the master key
	end_user             text COLLATE "C",
	ts                   timestamptz NOT NULL,
	model                text COLLATE "C" NOT NULL,
	provider             text NOT NULL,
	endpoint             text NOT NULL,
	prompt_tokens        bigint NOT NULL,
	completion_tokens    bigint NOT NULL,
	total_tokens         bigint NOT NULL,
	cost                 bigint NOT NULL CHECK (cost >= 0),
	status               text NOT NULL,
	status_code          integer NOT NULL,
	latency_ms           bigint NOT NULL,
	error_message        text,
	usage_source         text NOT NULL,
	exceeded_reservation boolean NOT NULL,
	user_period          timestamptz,
	key_period           timestamptz
);
-- ListUsage returns newest first, (ts, id) descending; each filter that
-- /v1/usage and the admin API offer has its own index in that order.
CREATE INDEX usage_ts_idx ON usage_records (ts DESC, id DESC);
CREATE INDEX usage_user_idx ON usage_records (user_id, ts DESC, id DESC);
CREATE INDEX usage_key_idx ON usage_records (api_key_id, ts DESC, id DESC) WHERE api_key_id IS NOT NULL;
CREATE INDEX usage_model_idx ON usage_records (model, ts DESC, id DESC);
CREATE INDEX usage_end_user_idx ON usage_records (end_user, ts DESC, id DESC) WHERE end_user IS NOT NULL;

-- What an account (owner 'u' user, 'k' key) spent in one budget period.
CREATE TABLE spend_periods (
	owner        text NOT NULL CHECK (owner IN ('u', 'k')),
	account_id   text COLLATE "C" NOT NULL,
	period_start timestamptz NOT NULL,
	spend        bigint NOT NULL,
	PRIMARY KEY (owner, account_id, period_start)
);

-- Probe writes here to check that the database takes writes.
CREATE TABLE probe (
	id integer PRIMARY KEY,
	at timestamptz NOT NULL
);
