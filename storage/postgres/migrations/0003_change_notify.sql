-- Cache invalidation across instances: every write to a table the gateway
-- caches (users, keys, budgets, prices) sends a notification on channel
-- llm_gateway_changes when its transaction commits, naming the schema, the
-- table and the row (and, for keys, the old and new hash, since auth
-- caches keys by hash). Store.Listen delivers them. A key's last use alone
-- notifies nothing.
CREATE FUNCTION gateway_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	old_row jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
	new_row jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
	payload jsonb;
BEGIN
	-- TouchKey writes last_used_at on every use of a key; that changes
	-- nothing a cache holds for authentication, and must not flush it.
	IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'api_keys' AND old_row - 'last_used_at' = new_row - 'last_used_at' THEN
		RETURN NULL;
	END IF;
	payload := jsonb_build_object(
		's', TG_TABLE_SCHEMA,
		't', TG_TABLE_NAME,
		'id', coalesce(new_row, old_row) ->> TG_ARGV[0]);
	IF TG_TABLE_NAME = 'api_keys' THEN
		payload := payload || jsonb_build_object('h', jsonb_strip_nulls(jsonb_build_object(
			'old', old_row ->> 'key_hash', 'new', new_row ->> 'key_hash')));
	END IF;
	PERFORM pg_notify('llm_gateway_changes', payload::text);
	RETURN NULL;
END
$$;

CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE ON users
	FOR EACH ROW EXECUTE FUNCTION gateway_notify_change('user_id');
CREATE TRIGGER api_keys_notify AFTER INSERT OR UPDATE OR DELETE ON api_keys
	FOR EACH ROW EXECUTE FUNCTION gateway_notify_change('id');
CREATE TRIGGER budgets_notify AFTER INSERT OR UPDATE OR DELETE ON budgets
	FOR EACH ROW EXECUTE FUNCTION gateway_notify_change('budget_id');
CREATE TRIGGER model_pricing_notify AFTER INSERT OR UPDATE OR DELETE ON model_pricing
	FOR EACH ROW EXECUTE FUNCTION gateway_notify_change('model_key');
