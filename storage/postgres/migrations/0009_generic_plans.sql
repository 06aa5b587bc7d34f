-- The hot path's statements keep their plans.
--
-- PostgreSQL plans a statement with parameters anew on every run ("custom
-- plans") as long as the plan it would keep ("generic") looks dearer than
-- the fresh ones, and for the statements of the hot path it always does:
-- they read their rows out of array parameters (unnest), which a generic
-- plan reckons at ten rows an array, and a fresh one at what the arrays
-- hold. So each admission and each settlement was planned again, every
-- time: on the bench machine at concurrency 1, planning was about 190 of
-- the 410 microseconds of an admission and about 100 of a settlement,
-- whose plans (index lookups by key, whatever the arrays hold) do not
-- depend on the parameters. These functions now run with
-- plan_cache_mode = force_generic_plan: each of their statements is
-- planned once per connection. The setting is the functions' own; it does
-- not touch any other statement of the session (the admin API's and
-- /v1/usage's queries, whose best plans do depend on their parameters).
ALTER FUNCTION gateway_admit SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION gateway_admit_batch SET plan_cache_mode = force_generic_plan;

-- gateway_settle is the settlement of a batch (the statement the usage
-- writer sent itself until now, which the session planned anew each time),
-- in one statement, hence one snapshot:
--
--   - new records are inserted; a record id already stored is skipped
--     (ON CONFLICT DO NOTHING), so only records inserted now are charged;
--   - their costs are summed per spend period (one upsert per period,
--     however many records add to it, in key order so that two batches
--     lock periods in the same order);
--   - the holds are released and their rate-limit entries get their real
--     token counts (a negative count keeps the estimate).
--
-- With p_async (durability os), synchronous_commit is off for the
-- transaction (set_config with is_local: the caller's statement is its own
-- implicit transaction, so the setting never outlives the batch).
-- PostgreSQL reads synchronous_commit when the transaction commits, so the
-- whole batch commits without waiting for its WAL flush, and the spend
-- rows it locked are free as soon as the statement ends.
--
-- Parameters are parallel arrays, one element per record (p_id …
-- p_key_period) or per hold (p_hold_id, p_hold_tokens).
CREATE FUNCTION gateway_settle(
	p_id text[], p_request_id text[], p_user_id text[], p_api_key_id text[], p_end_user text[],
	p_ts timestamptz[], p_model text[], p_provider text[], p_endpoint text[],
	p_prompt_tokens bigint[], p_completion_tokens bigint[], p_total_tokens bigint[], p_cost bigint[],
	p_status text[], p_status_code integer[], p_latency_ms bigint[], p_error_message text[],
	p_usage_source text[], p_exceeded_reservation boolean[],
	p_user_period timestamptz[], p_key_period timestamptz[],
	p_hold_id text[], p_hold_tokens bigint[],
	p_async boolean
) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
	IF p_async THEN
		PERFORM set_config('synchronous_commit', 'off', true);
	END IF;
	WITH recs AS (
		SELECT * FROM unnest(
			p_id, p_request_id, p_user_id, p_api_key_id, p_end_user, p_ts,
			p_model, p_provider, p_endpoint, p_prompt_tokens, p_completion_tokens, p_total_tokens,
			p_cost, p_status, p_status_code, p_latency_ms, p_error_message, p_usage_source,
			p_exceeded_reservation, p_user_period, p_key_period
		) AS r(id, request_id, user_id, api_key_id, end_user, ts, model, provider, endpoint,
			prompt_tokens, completion_tokens, total_tokens, cost, status, status_code, latency_ms,
			error_message, usage_source, exceeded_reservation, user_period, key_period)
	),
	inserted AS (
		INSERT INTO usage_records (id, request_id, user_id, api_key_id, end_user, ts, model, provider,
			endpoint, prompt_tokens, completion_tokens, total_tokens, cost, status, status_code,
			latency_ms, error_message, usage_source, exceeded_reservation, user_period, key_period)
		SELECT id, request_id, user_id, nullif(api_key_id, ''), nullif(end_user, ''), ts, model,
			provider, endpoint, prompt_tokens, completion_tokens, total_tokens, cost, status,
			status_code, latency_ms, nullif(error_message, ''), usage_source, exceeded_reservation,
			user_period, key_period
		FROM recs
		ON CONFLICT (id) DO NOTHING
		RETURNING user_id, api_key_id, cost, user_period, key_period
	),
	charges AS (
		SELECT 'u' AS owner, user_id AS account_id, coalesce(user_period, '0001-01-01 00:00:00+00') AS period_start, cost
		FROM inserted WHERE user_id <> '' AND cost > 0
		UNION ALL
		SELECT 'k', api_key_id, coalesce(key_period, '0001-01-01 00:00:00+00'), cost
		FROM inserted WHERE api_key_id IS NOT NULL AND cost > 0
	),
	charged AS (
		INSERT INTO spend_periods (owner, account_id, period_start, spend)
		SELECT owner, account_id, period_start, sum(cost)
		FROM charges GROUP BY owner, account_id, period_start
		ORDER BY owner, account_id, period_start
		ON CONFLICT (owner, account_id, period_start) DO UPDATE SET spend = spend_periods.spend + EXCLUDED.spend
	),
	holds AS (
		SELECT * FROM unnest(p_hold_id, p_hold_tokens) AS h(id, tokens)
	),
	counted AS (
		UPDATE rate_events e SET tokens = h.tokens
		FROM holds h WHERE e.reservation_id = h.id AND h.tokens >= 0
	)
	DELETE FROM reservations WHERE id IN (SELECT id FROM holds);
END
$$;
