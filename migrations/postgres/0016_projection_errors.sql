-- A read model that stops on an event it cannot apply says so: the follower records the error,
-- the position it stopped after (its position does not move past the event), and
-- clears them when the model moves again. /ready and `kaoping rebuild --check` read them.
-- The tracking table is derived state, already UPDATEable by the application role (0003).
ALTER TABLE kaoping_projection_tracking
    ADD COLUMN error text;
