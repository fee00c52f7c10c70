-- Columns that grant power are fixed once written, for the application role and the owner
-- alike. An API key's hash, role, identity and principal never change (rotation inserts a new
-- key), and a revocation is final: the only UPDATE the service makes is revoked_at from NULL.
-- A webhook subscription's owner and role decide which events it receives, its url and secret
-- where and how they go: the service only pauses, resumes, deletes and advances it.
-- Column-level grants refuse the rest to the application role; the triggers refuse it to
-- everyone (a later UPDATE grant cannot reopen it).

CREATE FUNCTION kaoping_api_key_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.key_id IS DISTINCT FROM OLD.key_id OR NEW.key_hash IS DISTINCT FROM OLD.key_hash
       OR NEW.name IS DISTINCT FROM OLD.name OR NEW.role IS DISTINCT FROM OLD.role
       OR NEW.acts_as IS DISTINCT FROM OLD.acts_as
       OR NEW.created_at IS DISTINCT FROM OLD.created_at
       OR NEW.principal_key_id IS DISTINCT FROM OLD.principal_key_id THEN
        RAISE EXCEPTION 'kaoping_api_keys: a key''s hash, name, role, identity and principal '
            'are fixed; issue a new key instead' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION 'kaoping_api_keys: key % is revoked, and a revocation is final',
            OLD.key_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER kaoping_api_keys_fixed BEFORE UPDATE ON kaoping_api_keys
    FOR EACH ROW EXECUTE FUNCTION kaoping_api_key_fixed();

CREATE FUNCTION kaoping_webhook_subscription_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id OR NEW.owner IS DISTINCT FROM OLD.owner
       OR NEW.role IS DISTINCT FROM OLD.role OR NEW.url IS DISTINCT FROM OLD.url
       OR NEW.secret IS DISTINCT FROM OLD.secret
       OR NEW.event_types IS DISTINCT FROM OLD.event_types THEN
        RAISE EXCEPTION 'kaoping_webhook_subscriptions: a subscription''s owner, role, url, '
            'secret and event types are fixed; subscribe anew instead'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER kaoping_webhook_subscriptions_fixed BEFORE UPDATE ON kaoping_webhook_subscriptions
    FOR EACH ROW EXECUTE FUNCTION kaoping_webhook_subscription_fixed();

CREATE TRIGGER kaoping_api_keys_no_delete BEFORE DELETE
    ON kaoping_api_keys FOR EACH ROW EXECUTE FUNCTION kaoping_refuse_change();

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('REVOKE UPDATE ON kaoping_api_keys FROM %I', app);
    EXECUTE format('GRANT UPDATE (revoked_at) ON kaoping_api_keys TO %I', app);
    EXECUTE format('REVOKE UPDATE ON kaoping_webhook_subscriptions FROM %I', app);
    EXECUTE format('GRANT UPDATE (paused, change_key, change_fingerprint, active, deleted_at, '
                   'version, after_position) ON kaoping_webhook_subscriptions TO %I', app);
END $$;
