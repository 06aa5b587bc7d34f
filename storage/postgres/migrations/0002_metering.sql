-- Shared-state metering: budget reservations and rate-limit windows that
-- every gateway instance admits against, so that budgets and limits hold
-- across instances. Admission is one call of gateway_admit (one statement,
-- one round trip, one transaction); settlement is one statement per batch
-- (see usage_writer.go).

-- A reservation holds amount against one account's budget period for one
-- request in flight, one row per account the request is charged to. The
-- instance that admitted it renews its lease while the request runs; a
-- reservation whose lease has expired no longer counts (its instance died)
-- and is swept by ExpireLeases.
CREATE TABLE reservations (
	id               text COLLATE "C" NOT NULL, -- the hold id, shared by the request's rows
	owner            text NOT NULL CHECK (owner IN ('u', 'k')),
	account_id       text COLLATE "C" NOT NULL,
	period_start     timestamptz NOT NULL,
	amount           bigint NOT NULL CHECK (amount >= 0),
	instance_id      text NOT NULL,
	lease_expires_at timestamptz NOT NULL,
	PRIMARY KEY (id, owner, account_id)
);
-- Admission sums the live reservations of an account's period.
CREATE INDEX reservations_account_idx ON reservations (owner, account_id, period_start)
	INCLUDE (amount, lease_expires_at);
CREATE INDEX reservations_instance_idx ON reservations (instance_id);
CREATE INDEX reservations_lease_idx ON reservations (lease_expires_at);

-- A rate event is one admitted request on one rate-limited account; it
-- counts for the sliding window (one minute) after at. tokens starts as
-- the request's estimate and becomes its real count at settlement.
CREATE TABLE rate_events (
	reservation_id text COLLATE "C" NOT NULL,
	owner          text NOT NULL CHECK (owner IN ('u', 'k')),
	account_id     text COLLATE "C" NOT NULL,
	at             timestamptz NOT NULL,
	tokens         bigint NOT NULL,
	PRIMARY KEY (reservation_id, owner, account_id)
);
CREATE INDEX rate_events_account_idx ON rate_events (owner, account_id, at) INCLUDE (tokens);
CREATE INDEX rate_events_at_idx ON rate_events (at);

-- gateway_admit admits one request, or refuses it, atomically across
-- instances, with the semantics of the in-memory meter:
--
--   1. it takes a transaction-scoped advisory lock per limited account, in
--      one global order (so two admissions never deadlock), which
--      serialises the admissions of an account on every instance;
--   2. each statement after that runs on a fresh snapshot (PL/pgSQL,
--      READ COMMITTED), so it sees every admission committed before the
--      lock was granted;
--   3. rate rules, in order: the events of the last window (at >
--      window_start) are counted; rpm > 0 and count >= rpm, or tpm > 0 and
--      a non-empty window whose tokens + this request's exceed tpm,
--      refuse, and nothing is recorded;
--   4. the request is counted in every rate window (a budget refusal
--      below leaves it counted, with its token estimate);
--   5. budgets with a max, in order: an unpriced request is refused by
--      the first; otherwise spend of the period + live reservations
--      (lease_expires_at > now) + cost > max, or spend >= max, refuse;
--   6. otherwise one reservation row per budget is inserted under id.
--
-- It returns one row: outcome 'admitted', 'rate', 'unpriced' or 'budget';
-- refused, the index (0-based) of the refusing rule or budget; spent and
-- reserved of a refusing budget; oldest, the start of a refusing rate
-- window; and, unless a rate rule refused, per rate rule the count of
-- events in its window (this one included) and the oldest event's time.
CREATE FUNCTION gateway_admit(
	p_id            text,
	p_instance      text,
	p_now           timestamptz,
	p_lease_until   timestamptz,
	p_cost          bigint,
	p_b_owner       text[],
	p_b_account     text[],
	p_b_period      timestamptz[],
	p_b_max         bigint[],     -- NULL element: tracked, not limited
	p_window_start  timestamptz,
	p_tokens        bigint,
	p_r_owner       text[],
	p_r_account     text[],
	p_r_rpm         bigint[],     -- 0: no limit
	p_r_tpm         bigint[],     -- 0: no limit
	p_unpriced      boolean       -- the model has no price: every budget with a max refuses
) RETURNS TABLE (
	outcome  text,
	refused  integer,
	spent    bigint,
	reserved bigint,
	oldest   timestamptz,
	counts   bigint[],
	oldests  timestamptz[]
)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	lock_key  integer;
	i         integer;
	n         bigint;
	toks      bigint;
	first_at  timestamptz;
	s         bigint;
	r         bigint;
	v_counts  bigint[];
	v_oldests timestamptz[];
BEGIN
	-- 1. Lock every account that a limit applies to, in hash order.
	FOR lock_key IN
		SELECT DISTINCT hashtext(o::text || '/' || a)
		FROM (
			SELECT o, a FROM unnest(p_b_owner, p_b_account, p_b_max) AS b(o, a, m) WHERE m IS NOT NULL
			UNION ALL
			SELECT o, a FROM unnest(p_r_owner, p_r_account, p_r_rpm, p_r_tpm) AS x(o, a, rpm, tpm) WHERE rpm > 0 OR tpm > 0
		) AS limited(o, a)
		ORDER BY 1
	LOOP
		PERFORM pg_advisory_xact_lock(1819047278, lock_key); -- 'llmg' as a class id
	END LOOP;

	-- 3. Rate rules, in order.
	FOR i IN 1 .. coalesce(array_length(p_r_owner, 1), 0) LOOP
		CONTINUE WHEN p_r_rpm[i] <= 0 AND p_r_tpm[i] <= 0;
		SELECT count(*), coalesce(sum(e.tokens), 0), min(e.at) INTO n, toks, first_at
		FROM rate_events e
		WHERE e.owner = p_r_owner[i] AND e.account_id = p_r_account[i] AND e.at > p_window_start;
		IF (p_r_rpm[i] > 0 AND n >= p_r_rpm[i]) OR (p_r_tpm[i] > 0 AND n > 0 AND toks + p_tokens > p_r_tpm[i]) THEN
			RETURN QUERY SELECT 'rate'::text, i - 1, NULL::bigint, NULL::bigint, first_at, NULL::bigint[], NULL::timestamptz[];
			RETURN;
		END IF;
	END LOOP;

	-- 4. Count the request in every rate window.
	INSERT INTO rate_events (reservation_id, owner, account_id, at, tokens)
	SELECT p_id, o, a, p_now, p_tokens
	FROM unnest(p_r_owner, p_r_account, p_r_rpm, p_r_tpm) AS x(o, a, rpm, tpm)
	WHERE rpm > 0 OR tpm > 0;

	SELECT array_agg(w.n ORDER BY x.ord), array_agg(w.first_at ORDER BY x.ord) INTO v_counts, v_oldests
	FROM unnest(p_r_owner, p_r_account) WITH ORDINALITY AS x(o, a, ord)
	CROSS JOIN LATERAL (
		SELECT count(*) AS n, min(e.at) AS first_at
		FROM rate_events e
		WHERE e.owner = x.o AND e.account_id = x.a AND e.at > p_window_start
	) AS w;

	-- 5. Budgets, in order.
	FOR i IN 1 .. coalesce(array_length(p_b_owner, 1), 0) LOOP
		CONTINUE WHEN p_b_max[i] IS NULL;
		IF p_unpriced THEN
			RETURN QUERY SELECT 'unpriced'::text, i - 1, NULL::bigint, NULL::bigint, NULL::timestamptz, v_counts, v_oldests;
			RETURN;
		END IF;
		SELECT coalesce(max(sp.spend), 0) INTO s
		FROM spend_periods sp
		WHERE sp.owner = p_b_owner[i] AND sp.account_id = p_b_account[i] AND sp.period_start = p_b_period[i];
		SELECT coalesce(sum(rv.amount), 0) INTO r
		FROM reservations rv
		WHERE rv.owner = p_b_owner[i] AND rv.account_id = p_b_account[i] AND rv.period_start = p_b_period[i]
			AND rv.lease_expires_at > p_now;
		IF s >= p_b_max[i] OR s + r + p_cost > p_b_max[i] THEN
			RETURN QUERY SELECT 'budget'::text, i - 1, s, r, NULL::timestamptz, v_counts, v_oldests;
			RETURN;
		END IF;
	END LOOP;

	-- 6. Admitted: hold the cost.
	INSERT INTO reservations (id, owner, account_id, period_start, amount, instance_id, lease_expires_at)
	SELECT p_id, o, a, p, p_cost, p_instance, p_lease_until
	FROM unnest(p_b_owner, p_b_account, p_b_period) AS b(o, a, p);

	RETURN QUERY SELECT 'admitted'::text, NULL::integer, NULL::bigint, NULL::bigint, NULL::timestamptz, v_counts, v_oldests;
END
$$;
