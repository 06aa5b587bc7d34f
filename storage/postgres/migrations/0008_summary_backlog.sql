-- Usage summaries folded in after the settlement, not by it.
--
-- Until now the usage_records trigger upserted three summary rows in the
-- statement that inserted the records: the settlement every request
-- waits for. On the bench machine that was 150 of the 420 microseconds
-- a settlement of one record took at concurrency 1 (three upserts, and
-- the search_path the function set on every call). Now the trigger only
-- notes which records the statement inserted, as one backlog row in the
-- same transaction, and gateway_fold_usage_summaries adds the records of
-- the backlog to the summaries and deletes its rows, in one transaction:
-- a record is counted exactly once, whichever instance folds it, and a
-- record committed is never lost to the summaries, since its backlog row
-- commits with it. Every instance folds in the background about once a
-- second, and folds what was committed before a summary query answers it,
-- so answers are as exact as before.
CREATE TABLE usage_summary_backlog (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	record_ids text[] NOT NULL
);

-- The trigger function names the backlog by its schema, fixed here, so
-- that it needs no search_path of its own: setting one on every call cost
-- about 26 microseconds.
DO $migration$
BEGIN
	EXECUTE format($fn$
CREATE OR REPLACE FUNCTION gateway_summarize_usage() RETURNS trigger
LANGUAGE plpgsql AS $body$
BEGIN
	IF current_setting('llm_gateway.summaries_carried', true) = 'on' THEN
		RETURN NULL;
	END IF;
	INSERT INTO %1$I.usage_summary_backlog (record_ids)
	SELECT array_agg(id) FROM new_records HAVING count(*) > 0;
	RETURN NULL;
END
$body$
$fn$, current_schema());
END
$migration$;

-- gateway_fold_usage_summaries adds the records named by backlog rows to
-- the summaries and deletes those rows, and returns how many rows it
-- took. Without p_all it takes at most p_limit rows that no other fold
-- holds (SKIP LOCKED), in one pass: the background fold. With p_all it
-- takes every row committed when it starts, waiting for a fold that holds
-- some of them to commit first, in passes of p_limit rows: once it
-- returns, every record committed before it started is in the summaries.
-- Summary rows are upserted in the order of 0004_usage_summary.sql
-- (models, hourly, daily; each in key order), so folds never deadlock one
-- another.
CREATE FUNCTION gateway_fold_usage_summaries(p_limit integer, p_all boolean) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	upto  bigint;
	ids   text[];
	rows  bigint;
	total bigint := 0;
BEGIN
	IF p_all THEN
		SELECT max(id) INTO upto FROM usage_summary_backlog;
		IF upto IS NULL THEN
			RETURN 0;
		END IF;
	END IF;
	LOOP
		IF p_all THEN
			WITH d AS (
				DELETE FROM usage_summary_backlog WHERE id IN (
					SELECT id FROM usage_summary_backlog WHERE id <= upto
					ORDER BY id LIMIT p_limit FOR UPDATE)
				RETURNING id, record_ids)
			SELECT array_agg(r), count(DISTINCT d.id) INTO ids, rows FROM d, unnest(d.record_ids) AS r;
		ELSE
			WITH d AS (
				DELETE FROM usage_summary_backlog WHERE id IN (
					SELECT id FROM usage_summary_backlog
					ORDER BY id LIMIT p_limit FOR UPDATE SKIP LOCKED)
				RETURNING id, record_ids)
			SELECT array_agg(r), count(DISTINCT d.id) INTO ids, rows FROM d, unnest(d.record_ids) AS r;
		END IF;

		IF ids IS NOT NULL THEN
			INSERT INTO usage_summary_models AS s (hour, provider, model,
				requests, errors, prompt_tokens, completion_tokens, total_tokens, cost)
			SELECT date_trunc('hour', ts, 'UTC'), provider, model, count(*),
				count(*) FILTER (WHERE status <> 'success'),
				sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), sum(cost)
			FROM usage_records WHERE id = ANY (ids)
			GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
			ON CONFLICT (hour, provider, model) DO UPDATE SET
				requests = s.requests + EXCLUDED.requests,
				errors = s.errors + EXCLUDED.errors,
				prompt_tokens = s.prompt_tokens + EXCLUDED.prompt_tokens,
				completion_tokens = s.completion_tokens + EXCLUDED.completion_tokens,
				total_tokens = s.total_tokens + EXCLUDED.total_tokens,
				cost = s.cost + EXCLUDED.cost;
			INSERT INTO usage_summary_hourly AS s (hour, provider, model, user_id, api_key_id, end_user,
				requests, errors, prompt_tokens, completion_tokens, total_tokens, cost)
			SELECT date_trunc('hour', ts, 'UTC'), provider, model, user_id, coalesce(api_key_id, ''),
				coalesce(end_user, ''), count(*), count(*) FILTER (WHERE status <> 'success'),
				sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), sum(cost)
			FROM usage_records WHERE id = ANY (ids)
			GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
			ON CONFLICT (hour, provider, model, user_id, api_key_id, end_user) DO UPDATE SET
				requests = s.requests + EXCLUDED.requests,
				errors = s.errors + EXCLUDED.errors,
				prompt_tokens = s.prompt_tokens + EXCLUDED.prompt_tokens,
				completion_tokens = s.completion_tokens + EXCLUDED.completion_tokens,
				total_tokens = s.total_tokens + EXCLUDED.total_tokens,
				cost = s.cost + EXCLUDED.cost;
			INSERT INTO usage_summary_daily AS s (day, provider, model, user_id, api_key_id,
				requests, errors, prompt_tokens, completion_tokens, total_tokens, cost)
			SELECT date_trunc('day', ts, 'UTC'), provider, model, user_id, coalesce(api_key_id, ''),
				count(*), count(*) FILTER (WHERE status <> 'success'),
				sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), sum(cost)
			FROM usage_records WHERE id = ANY (ids)
			GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
			ON CONFLICT (day, provider, model, user_id, api_key_id) DO UPDATE SET
				requests = s.requests + EXCLUDED.requests,
				errors = s.errors + EXCLUDED.errors,
				prompt_tokens = s.prompt_tokens + EXCLUDED.prompt_tokens,
				completion_tokens = s.completion_tokens + EXCLUDED.completion_tokens,
				total_tokens = s.total_tokens + EXCLUDED.total_tokens,
				cost = s.cost + EXCLUDED.cost;
		END IF;
		total := total + rows;

		EXIT WHEN NOT p_all;
		EXIT WHEN NOT EXISTS (SELECT 1 FROM usage_summary_backlog WHERE id <= upto);
	END LOOP;
	RETURN total;
END
$$;
