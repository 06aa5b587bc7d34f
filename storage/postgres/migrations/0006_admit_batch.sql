-- Admissions in batches: gateway_admit_batch admits or refuses the
-- requests that one instance has waiting, in one statement, with the
-- decisions gateway_admit makes one at a time.
--
-- gateway_admit ran about eight statements per request while it held its
-- accounts' advisory locks (the locks one by one, the rate windows counted
-- twice, a spend and a reservation read per budget, two inserts), so one
-- account admitted one request per run of all of them, and every request
-- paid them in database CPU. gateway_admit_batch takes the locks of every
-- account of the batch in one statement (one global order, as before: two
-- batches never deadlock), reads each account's rate window and each
-- budget period's spend and live reservations once, decides the requests
-- in order in memory (each sees what the ones before it in the batch
-- counted and held), and writes the batch's rate events and reservations
-- with one insert each: five statements per batch, whatever its size.
--
-- Each request's decision is gateway_admit's, with one difference, on the
-- safe side: the windows and leases are read once, at the batch's
-- earliest now (the earliest window start), so an event or a lease that
-- ends between that and a later request's now still counts for it. The
-- requests of one batch are at most a few milliseconds apart.
--
-- Inputs are parallel arrays, laid out by the caller (admission_batch.go)
-- so that the function does no matching of its own: per request (1-based
-- index i) its hold id, now, lease end, cost, token estimate and unpriced
-- flag; the batch's limited accounts as lock names ('u/<id>', 'k/<id>',
-- gateway_admit's lock keys); its distinct budget periods and rate-limited
-- accounts; then per budget and per rate rule, in request order, the
-- index of its request, of its period or window, and its limits. One row
-- comes back per request: its index, then gateway_admit's columns.
CREATE FUNCTION gateway_admit_batch(
	p_instance     text[],        -- per request: the instance that holds it
	p_id           text[],
	p_now          timestamptz[],
	p_lease_until  timestamptz[],
	p_cost         bigint[],
	p_tokens       bigint[],
	p_unpriced     boolean[],
	p_locks        text[],        -- distinct 'o/account' of every limited account
	p_window_start timestamptz,   -- the batch's earliest now, less the window
	p_live_at      timestamptz,   -- the batch's earliest now: leases ending later count
	p_a_owner      text[],        -- distinct budget periods
	p_a_account    text[],
	p_a_period     timestamptz[],
	p_w_owner      text[],        -- distinct rate-limited accounts
	p_w_account    text[],
	p_b_req        integer[],     -- per budget: its request,
	p_b_a          integer[],     -- its period,
	p_b_max        bigint[],      -- its max (NULL: tracked, not limited)
	p_r_req        integer[],     -- per rate rule: its request,
	p_r_w          integer[],     -- its account's window,
	p_r_rpm        bigint[],      -- its limits (0: none)
	p_r_tpm        bigint[]
) RETURNS TABLE (
	req      integer,
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
	n_req   integer := coalesce(array_length(p_id, 1), 0);
	n_b     integer := coalesce(array_length(p_b_req, 1), 0);
	n_r     integer := coalesce(array_length(p_r_req, 1), 0);
	a_spent bigint[];
	a_held  bigint[];
	w_n     bigint[];
	w_toks  bigint[];
	w_first timestamptz[];
	-- What the batch writes: rate events (request, window) and holds
	-- (request, budget).
	e_req integer[] := '{}'; e_w integer[] := '{}';
	h_req integer[] := '{}'; h_b integer[] := '{}';
	-- Each request's rules and budgets are contiguous runs of the arrays,
	-- in request order: [r_lo, r_hi) and [b_lo, b_hi).
	r_lo integer := 1; r_hi integer;
	b_lo integer := 1; b_hi integer;
	i integer; k integer; w integer; a integer;
	decided   boolean;
	v_counts  bigint[];
	v_oldests timestamptz[];
BEGIN
	-- 1. Lock every account that a limit applies to, in hash order.
	IF array_length(p_locks, 1) > 0 THEN
		PERFORM pg_advisory_xact_lock(1819047278, l.k) -- 'llmg' as a class id
		FROM (SELECT hashtext(x) AS k FROM unnest(p_locks) AS x ORDER BY 1) AS l;
	END IF;

	-- 2. The rate windows, read once (a fresh snapshot: after the locks).
	IF n_r > 0 THEN
		SELECT array_agg(ev.n ORDER BY d.ord), array_agg(ev.toks ORDER BY d.ord),
			array_agg(ev.first_at ORDER BY d.ord)
		INTO w_n, w_toks, w_first
		FROM unnest(p_w_owner, p_w_account) WITH ORDINALITY AS d(o, x, ord)
		CROSS JOIN LATERAL (
			SELECT count(*) AS n, coalesce(sum(e.tokens), 0)::bigint AS toks, min(e.at) AS first_at
			FROM rate_events e
			WHERE e.owner = d.o AND e.account_id = d.x AND e.at > p_window_start
		) AS ev;
	END IF;

	-- 3. The budget periods: spend and live reservations, in one
	-- statement (one snapshot, as in gateway_admit).
	IF n_b > 0 THEN
		SELECT array_agg((SELECT coalesce(max(sp.spend), 0) FROM spend_periods sp
				WHERE sp.owner = d.o AND sp.account_id = d.x AND sp.period_start = d.p) ORDER BY d.ord),
			array_agg((SELECT coalesce(sum(rv.amount), 0)::bigint FROM reservations rv
				WHERE rv.owner = d.o AND rv.account_id = d.x AND rv.period_start = d.p
					AND rv.lease_expires_at > p_live_at) ORDER BY d.ord)
		INTO a_spent, a_held
		FROM unnest(p_a_owner, p_a_account, p_a_period) WITH ORDINALITY AS d(o, x, p, ord);
	END IF;

	-- 4. Each request in order, as gateway_admit decides it.
	FOR i IN 1 .. n_req LOOP
		r_hi := r_lo;
		WHILE r_hi <= n_r AND p_r_req[r_hi] = i LOOP
			r_hi := r_hi + 1;
		END LOOP;
		b_hi := b_lo;
		WHILE b_hi <= n_b AND p_b_req[b_hi] = i LOOP
			b_hi := b_hi + 1;
		END LOOP;
		decided := false;
		v_counts := NULL;
		v_oldests := NULL;

		-- Rate rules, in order; a refusal records nothing.
		FOR k IN r_lo .. r_hi - 1 LOOP
			CONTINUE WHEN p_r_rpm[k] <= 0 AND p_r_tpm[k] <= 0;
			w := p_r_w[k];
			IF (p_r_rpm[k] > 0 AND w_n[w] >= p_r_rpm[k])
				OR (p_r_tpm[k] > 0 AND w_n[w] > 0 AND w_toks[w] + p_tokens[i] > p_r_tpm[k]) THEN
				req := i; outcome := 'rate'; refused := k - r_lo; spent := NULL; reserved := NULL;
				oldest := w_first[w]; counts := NULL; oldests := NULL;
				RETURN NEXT;
				decided := true;
				EXIT;
			END IF;
		END LOOP;

		IF NOT decided AND r_hi > r_lo THEN
			-- Count the request in every limited window.
			FOR k IN r_lo .. r_hi - 1 LOOP
				CONTINUE WHEN p_r_rpm[k] <= 0 AND p_r_tpm[k] <= 0;
				w := p_r_w[k];
				w_n[w] := w_n[w] + 1;
				w_toks[w] := w_toks[w] + p_tokens[i];
				w_first[w] := coalesce(least(w_first[w], p_now[i]), p_now[i]);
				e_req := e_req || i;
				e_w := e_w || w;
			END LOOP;
			v_counts := '{}';
			v_oldests := '{}';
			FOR k IN r_lo .. r_hi - 1 LOOP
				v_counts := v_counts || w_n[p_r_w[k]];
				v_oldests := v_oldests || w_first[p_r_w[k]];
			END LOOP;
		END IF;

		IF NOT decided THEN
			-- Budgets with a max, in order.
			FOR k IN b_lo .. b_hi - 1 LOOP
				CONTINUE WHEN p_b_max[k] IS NULL;
				a := p_b_a[k];
				IF p_unpriced[i] THEN
					req := i; outcome := 'unpriced'; refused := k - b_lo; spent := NULL; reserved := NULL;
					oldest := NULL; counts := v_counts; oldests := v_oldests;
					RETURN NEXT;
					decided := true;
					EXIT;
				END IF;
				IF a_spent[a] >= p_b_max[k] OR a_spent[a] + a_held[a] + p_cost[i] > p_b_max[k] THEN
					req := i; outcome := 'budget'; refused := k - b_lo; spent := a_spent[a]; reserved := a_held[a];
					oldest := NULL; counts := v_counts; oldests := v_oldests;
					RETURN NEXT;
					decided := true;
					EXIT;
				END IF;
			END LOOP;
		END IF;

		IF NOT decided THEN
			-- Admitted: hold the cost against every budget.
			FOR k IN b_lo .. b_hi - 1 LOOP
				a_held[p_b_a[k]] := a_held[p_b_a[k]] + p_cost[i];
				h_req := h_req || i;
				h_b := h_b || k;
			END LOOP;
			req := i; outcome := 'admitted'; refused := NULL; spent := NULL; reserved := NULL;
			oldest := NULL; counts := v_counts; oldests := v_oldests;
			RETURN NEXT;
		END IF;
		r_lo := r_hi;
		b_lo := b_hi;
	END LOOP;

	-- 5. What the batch counted and held.
	IF array_length(e_req, 1) > 0 THEN
		INSERT INTO rate_events (reservation_id, owner, account_id, at, tokens)
		SELECT p_id[x.i], p_w_owner[x.w], p_w_account[x.w], p_now[x.i], p_tokens[x.i]
		FROM unnest(e_req, e_w) AS x(i, w);
	END IF;
	IF array_length(h_req, 1) > 0 THEN
		INSERT INTO reservations (id, owner, account_id, period_start, amount, instance_id, lease_expires_at)
		SELECT p_id[x.i], p_a_owner[p_b_a[x.b]], p_a_account[p_b_a[x.b]], p_a_period[p_b_a[x.b]],
			p_cost[x.i], p_instance[x.i], p_lease_until[x.i]
		FROM unnest(h_req, h_b) AS x(i, b);
	END IF;
END
$$;
