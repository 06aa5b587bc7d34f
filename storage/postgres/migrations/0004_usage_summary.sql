-- Usage summaries (GET /v1/usage/summary): totals kept as records are
-- written, never computed by scanning records, and untouched when old
-- records are deleted. An hourly row per provider and model (one per model
-- however many users, keys and end users: the totals and per-model
-- queries read only these), an hourly row per provider, model, user, key
-- and end user, and a daily row per provider, model, user and key (no end
-- user, so a day holds one row per model, user and key however many end
-- users call it); '' stands for no key and no end user. Queries roll rows
-- up into day and month buckets and the requested group.
CREATE TABLE usage_summary_models (
	hour              timestamptz NOT NULL,
	provider          text COLLATE "C" NOT NULL,
	model             text COLLATE "C" NOT NULL,
	requests          bigint NOT NULL,
	errors            bigint NOT NULL,
	prompt_tokens     bigint NOT NULL,
	completion_tokens bigint NOT NULL,
	total_tokens      bigint NOT NULL,
	cost              bigint NOT NULL,
	PRIMARY KEY (hour, provider, model)
);
CREATE TABLE usage_summary_hourly (
	hour              timestamptz NOT NULL,
	provider          text COLLATE "C" NOT NULL,
	model             text COLLATE "C" NOT NULL,
	user_id           text COLLATE "C" NOT NULL,
	api_key_id        text COLLATE "C" NOT NULL,
	end_user          text COLLATE "C" NOT NULL,
	requests          bigint NOT NULL,
	errors            bigint NOT NULL,
	prompt_tokens     bigint NOT NULL,
	completion_tokens bigint NOT NULL,
	total_tokens      bigint NOT NULL,
	cost              bigint NOT NULL,
	PRIMARY KEY (hour, provider, model, user_id, api_key_id, end_user)
);
CREATE TABLE usage_summary_daily (
	day               timestamptz NOT NULL,
	provider          text COLLATE "C" NOT NULL,
	model             text COLLATE "C" NOT NULL,
	user_id           text COLLATE "C" NOT NULL,
	api_key_id        text COLLATE "C" NOT NULL,
	requests          bigint NOT NULL,
	errors            bigint NOT NULL,
	prompt_tokens     bigint NOT NULL,
	completion_tokens bigint NOT NULL,
	total_tokens      bigint NOT NULL,
	cost              bigint NOT NULL,
	PRIMARY KEY (day, provider, model, user_id, api_key_id)
);

-- Every statement that inserts usage records (the settle batch, an
-- import) adds the rows it inserted to the summaries, in its own
-- transaction. Rows are upserted in key order so that two batches lock
-- them in the same order. An import that carries the summaries of its
-- source (caddy llm-gateway migrate from an embedded store) sets
-- llm_gateway.summaries_carried for its transaction, so its records are
-- not counted twice.
CREATE FUNCTION gateway_summarize_usage() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	IF current_setting('llm_gateway.summaries_carried', true) = 'on' THEN
		RETURN NULL;
	END IF;
	INSERT INTO usage_summary_models AS s (hour, provider, model,
		requests, errors, prompt_tokens, completion_tokens, total_tokens, cost)
	SELECT date_trunc('hour', ts, 'UTC'), provider, model, count(*),
		count(*) FILTER (WHERE status <> 'success'),
		sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), sum(cost)
	FROM new_records
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
	FROM new_records
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
	FROM new_records
	GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
	ON CONFLICT (day, provider, model, user_id, api_key_id) DO UPDATE SET
		requests = s.requests + EXCLUDED.requests,
		errors = s.errors + EXCLUDED.errors,
		prompt_tokens = s.prompt_tokens + EXCLUDED.prompt_tokens,
		completion_tokens = s.completion_tokens + EXCLUDED.completion_tokens,
		total_tokens = s.total_tokens + EXCLUDED.total_tokens,
		cost = s.cost + EXCLUDED.cost;
	RETURN NULL;
END
$$;

-- CREATE TRIGGER locks usage_records against writes until this migration
-- commits, so the records summarised below and those the trigger counts
-- are exactly all of them, each once.
CREATE TRIGGER usage_records_summarize AFTER INSERT ON usage_records
	REFERENCING NEW TABLE AS new_records
	FOR EACH STATEMENT EXECUTE FUNCTION gateway_summarize_usage();

INSERT INTO usage_summary_models (hour, provider, model,
	requests, errors, prompt_tokens, completion_tokens, total_tokens, cost)
SELECT date_trunc('hour', ts, 'UTC'), provider, model, count(*),
	count(*) FILTER (WHERE status <> 'success'),
	sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), sum(cost)
FROM usage_records GROUP BY 1, 2, 3;
INSERT INTO usage_summary_hourly (hour, provider, model, user_id, api_key_id, end_user,
	requests, errors, prompt_tokens, completion_tokens, total_tokens, cost)
SELECT date_trunc('hour', ts, 'UTC'), provider, model, user_id, coalesce(api_key_id, ''),
	coalesce(end_user, ''), count(*), count(*) FILTER (WHERE status <> 'success'),
	sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), sum(cost)
FROM usage_records GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO usage_summary_daily (day, provider, model, user_id, api_key_id,
	requests, errors, prompt_tokens, completion_tokens, total_tokens, cost)
SELECT date_trunc('day', ts, 'UTC'), provider, model, user_id, coalesce(api_key_id, ''),
	count(*), count(*) FILTER (WHERE status <> 'success'),
	sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), sum(cost)
FROM usage_records GROUP BY 1, 2, 3, 4, 5;
