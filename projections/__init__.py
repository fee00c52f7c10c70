"""Read models fed from the event log in order, with their position in the same transaction."""
