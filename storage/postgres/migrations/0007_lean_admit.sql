-- A leaner admission of one request, and holds with two indexes instead of
-- four.
--
-- A request that waits alone is admitted by gateway_admit (a batch of one,
-- the common case at low concurrency), and what it costs the database is
-- mostly the number of statements it runs, not the rows they touch. This
-- version runs the statements of rate rules only when the request has
-- rules (most requests are on budgets alone), takes its locks in one
-- statement and reads all its budgets in one, as gateway_admit_batch does:
-- a request on a user and a key budget without rules runs three statements
-- instead of seven. Decisions
-- are unchanged; TestBatchDecidesAsOneAtATime compares them with the
-- batch function's.
--
-- Every admission inserts its holds and every settlement deletes them, so
-- each index of reservations is written twice per request and cleaned by
-- every vacuum. Only two are read on the hot path: the primary key (the
-- settlement deletes by hold id) and reservations_account_idx (admission
-- sums an account's live holds). Lease renewal (by instance, every 10 s)
-- and expiry (by lease end, every 30 s) read the table whole, which holds
-- the requests in flight and the dead rows since the last vacuum.
DROP INDEX reservations_instance_idx;
DROP INDEX reservations_lease_idx;

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
	n_r       integer := coalesce(array_length(p_r_owner, 1), 0);
	n_b       integer := coalesce(array_length(p_b_owner, 1), 0);
	i         integer;
	n         bigint;
	toks      bigint;
	first_at  timestamptz;
	a_spent   bigint[];
	a_held    bigint[];
	v_counts  bigint[];
	v_oldests timestamptz[];
BEGIN
	-- 1. Lock every account that a limit applies to, in hash order, in one
	-- statement (the keys of gateway_admit_batch: 'o/account').
	PERFORM pg_advisory_xact_lock(1819047278, l.k) -- 'llmg' as a class id
	FROM (
		SELECT DISTINCT hashtext(o::text || '/' || a) AS k
		FROM (
			SELECT o, a FROM unnest(p_b_owner, p_b_account, p_b_max) AS b(o, a, m) WHERE m IS NOT NULL
			UNION ALL
			SELECT o, a FROM unnest(p_r_owner, p_r_account, p_r_rpm, p_r_tpm) AS x(o, a, rpm, tpm) WHERE rpm > 0 OR tpm > 0
		) AS limited(o, a)
		ORDER BY 1
	) AS l;

	IF n_r > 0 THEN
		-- 2. Rate rules, in order.
		FOR i IN 1 .. n_r LOOP
			CONTINUE WHEN p_r_rpm[i] <= 0 AND p_r_tpm[i] <= 0;
			SELECT count(*), coalesce(sum(e.tokens), 0), min(e.at) INTO n, toks, first_at
			FROM rate_events e
			WHERE e.owner = p_r_owner[i] AND e.account_id = p_r_account[i] AND e.at > p_window_start;
			IF (p_r_rpm[i] > 0 AND n >= p_r_rpm[i]) OR (p_r_tpm[i] > 0 AND n > 0 AND toks + p_tokens > p_r_tpm[i]) THEN
				RETURN QUERY SELECT 'rate'::text, i - 1, NULL::bigint, NULL::bigint, first_at, NULL::bigint[], NULL::timestamptz[];
				RETURN;
			END IF;
		END LOOP;

		-- 3. Count the request in every rate window.
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
	END IF;

	-- 4. Budgets, in order: every period's spend and live holds read in
	-- one statement, one snapshot (a settlement committing between two
	-- reads would otherwise be missed twice: its cost not yet in the
	-- spend, its reservation already gone).
	IF n_b > 0 AND NOT p_unpriced THEN
		SELECT array_agg((SELECT coalesce(max(sp.spend), 0) FROM spend_periods sp
				WHERE sp.owner = d.o AND sp.account_id = d.x AND sp.period_start = d.p) ORDER BY d.ord),
			array_agg((SELECT coalesce(sum(rv.amount), 0)::bigint FROM reservations rv
				WHERE rv.owner = d.o AND rv.account_id = d.x AND rv.period_start = d.p
					AND rv.lease_expires_at > p_now) ORDER BY d.ord)
		INTO a_spent, a_held
		FROM unnest(p_b_owner, p_b_account, p_b_period) WITH ORDINALITY AS d(o, x, p, ord);
	END IF;
	FOR i IN 1 .. n_b LOOP
		CONTINUE WHEN p_b_max[i] IS NULL;
		IF p_unpriced THEN
			RETURN QUERY SELECT 'unpriced'::text, i - 1, NULL::bigint, NULL::bigint, NULL::timestamptz, v_counts, v_oldests;
			RETURN;
		END IF;
		IF a_spent[i] >= p_b_max[i] OR a_spent[i] + a_held[i] + p_cost > p_b_max[i] THEN
			RETURN QUERY SELECT 'budget'::text, i - 1, a_spent[i], a_held[i], NULL::timestamptz, v_counts, v_oldests;
			RETURN;
		END IF;
	END LOOP;

	-- 5. Admitted: hold the cost.
	INSERT INTO reservations (id, owner, account_id, period_start, amount, instance_id, lease_expires_at)
	SELECT p_id, o, a, p, p_cost, p_instance, p_lease_until
	FROM unnest(p_b_owner, p_b_account, p_b_period) AS b(o, a, p);

	RETURN QUERY SELECT 'admitted'::text, NULL::integer, NULL::bigint, NULL::bigint, NULL::timestamptz, v_counts, v_oldests;
END
$$;
