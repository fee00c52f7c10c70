-- Merging the credential guards (0014) with subscriptions that outlive no credential (0018):
-- the service records a suspension and an operator's removal reason, so the application role
-- may write those columns; the credential a subscription was made with (`via`,
-- `credential_expires_at`) is fixed like its owner and role, and a suspension is final (the
-- subscription is never resumed silently: subscribe anew).
CREATE OR REPLACE FUNCTION kaoping_webhook_subscription_fixed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id OR NEW.owner IS DISTINCT FROM OLD.owner
       OR NEW.role IS DISTINCT FROM OLD.role OR NEW.url IS DISTINCT FROM OLD.url
       OR NEW.secret IS DISTINCT FROM OLD.secret
       OR NEW.event_types IS DISTINCT FROM OLD.event_types
       OR NEW.via IS DISTINCT FROM OLD.via
       OR NEW.credential_expires_at IS DISTINCT FROM OLD.credential_expires_at
       OR (OLD.suspended_at IS NOT NULL
           AND (NEW.suspended_at IS DISTINCT FROM OLD.suspended_at
                OR NEW.suspended_reason IS DISTINCT FROM OLD.suspended_reason)) THEN
        RAISE EXCEPTION 'kaoping_webhook_subscriptions: a subscription''s owner, role, url, '
            'secret, event types and credential are fixed, and a suspension is final; '
            'subscribe anew instead'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('GRANT UPDATE (suspended_at, suspended_reason, deleted_reason) '
                   'ON kaoping_webhook_subscriptions TO %I', app);
END $$;
