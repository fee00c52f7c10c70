-- Columns that grant power are fixed once written (the PostgreSQL migration also narrows the
-- application role's UPDATE grants to the columns the service changes). An API key's hash,
-- role, identity and principal never change, and a revocation is final; a webhook
-- subscription's owner, role, url, secret and event types never change.

CREATE TRIGGER kaoping_api_keys_fixed BEFORE UPDATE ON kaoping_api_keys
WHEN NEW.key_id IS NOT OLD.key_id OR NEW.key_hash IS NOT OLD.key_hash
     OR NEW.name IS NOT OLD.name OR NEW.role IS NOT OLD.role
     OR NEW.acts_as IS NOT OLD.acts_as OR NEW.created_at IS NOT OLD.created_at
     OR NEW.principal_key_id IS NOT OLD.principal_key_id OR OLD.revoked_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'kaoping_api_keys: a key''s hash, name, role, identity and principal are fixed, and a revocation is final'); END;

CREATE TRIGGER kaoping_api_keys_no_delete BEFORE DELETE ON kaoping_api_keys
BEGIN SELECT RAISE(ABORT, 'kaoping_api_keys: keys are revoked, never deleted'); END;

CREATE TRIGGER kaoping_webhook_subscriptions_fixed BEFORE UPDATE ON kaoping_webhook_subscriptions
WHEN NEW.id IS NOT OLD.id OR NEW.owner IS NOT OLD.owner OR NEW.role IS NOT OLD.role
     OR NEW.url IS NOT OLD.url OR NEW.secret IS NOT OLD.secret
     OR NEW.event_types IS NOT OLD.event_types
BEGIN SELECT RAISE(ABORT, 'kaoping_webhook_subscriptions: a subscription''s owner, role, url, secret and event types are fixed'); END;
