-- Admission without a WAL flush, and budgets read on one snapshot.
--
-- gateway_admit holds the advisory lock of every limited account until its
-- transaction ends, and a transaction that wrote WAL ends only once the
-- WAL is flushed to disk: with reservations and rate events logged, every
-- admission of an account waited for the previous one's fsync, so one
-- account admitted at most one request per disk flush (about 500 a second
-- on a cloud disk) however many instances served it. Reservations and rate
-- events are leases that live seconds to minutes and are renewed while
-- they matter, so they become UNLOGGED: a transaction that writes only
-- unlogged tables commits without waiting for a flush, whatever
-- synchronous_commit says, and the lock is held for the function's run
-- alone. What is money stays logged and committed synchronously: usage
-- records and spend periods (the settlement, one transaction with the
-- release of the hold, still waits for its flush).
--
-- The price: a crash of the database server (a clean shutdown or restart
-- keeps them) empties unlogged tables. The requests in flight at
-- that moment then no longer hold their reservations, so a budget can be
-- exceeded by at most what those requests cost, and rate-limit windows
-- start over; their usage records are settled as always (or spooled). The
-- same holds after a failover to a streaming standby, which does not
-- receive unlogged tables.
ALTER TABLE reservations SET UNLOGGED;
ALTER TABLE rate_events SET UNLOGGED;

-- As in 0002_metering.sql, but the budget check reads spend and
-- reservations in one statement.
CREATE OR REPLACE FUNCTION gateway_admit(
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
		-- One statement, one snapshot: a settlement committing between
		-- two reads would otherwise be missed twice (its cost not yet in
		-- the spend, its reservation already gone).
		SELECT
			(SELECT coalesce(max(sp.spend), 0) FROM spend_periods sp
			WHERE sp.owner = p_b_owner[i] AND sp.account_id = p_b_account[i] AND sp.period_start = p_b_period[i]),
			(SELECT coalesce(sum(rv.amount), 0) FROM reservations rv
			WHERE rv.owner = p_b_owner[i] AND rv.account_id = p_b_account[i] AND rv.period_start = p_b_period[i]
				AND rv.lease_expires_at > p_now)
		INTO s, r;
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
