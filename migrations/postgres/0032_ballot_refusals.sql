-- Refused ballot casts (wrong or revoked credentials) shared by every API process
-- (service/throttle.py, SharedRefusals): each process counts a client's refusals in a session
-- from here, so N API processes give a guesser one budget, not N. One row per refusal, with
-- the server's time; the budgets are counted over a sliding window. Throttling state, not a
-- record, like kaoping_rate_buckets (0030): UNLOGGED (not replicated; a crash of the primary
-- empties it), the client address only as an HMAC, and housekeeping deletes the rows the
-- window has left behind -- the stated exception to append-only, which covers the log and
-- the ledger. A refused cast is no ballot: nothing here names a credential or a voter.
CREATE UNLOGGED TABLE kaoping_ballot_refusals (
    session text NOT NULL,          -- the evaluation session's code
    client text NOT NULL,           -- HMAC of the client address (never the address)
    at double precision NOT NULL    -- epoch seconds (the server's clock)
);
CREATE INDEX kaoping_ballot_refusals_session_at ON kaoping_ballot_refusals (session, at);

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON kaoping_ballot_refusals TO %I', app);
END $$;
