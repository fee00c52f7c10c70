-- The credential a subscription was made with (`via`, `credential_expires_at`) is fixed like
-- its owner and role, and a suspension is final (never resumed silently: subscribe anew).
DROP TRIGGER kaoping_webhook_subscriptions_fixed;

CREATE TRIGGER kaoping_webhook_subscriptions_fixed BEFORE UPDATE ON kaoping_webhook_subscriptions
WHEN NEW.id IS NOT OLD.id OR NEW.owner IS NOT OLD.owner OR NEW.role IS NOT OLD.role
     OR NEW.url IS NOT OLD.url OR NEW.secret IS NOT OLD.secret
     OR NEW.event_types IS NOT OLD.event_types
     OR NEW.via IS NOT OLD.via OR NEW.credential_expires_at IS NOT OLD.credential_expires_at
     OR (OLD.suspended_at IS NOT NULL AND (NEW.suspended_at IS NOT OLD.suspended_at
                                           OR NEW.suspended_reason IS NOT OLD.suspended_reason))
BEGIN SELECT RAISE(ABORT, 'kaoping_webhook_subscriptions: a subscription''s owner, role, url, secret, event types and credential are fixed, and a suspension is final'); END;
