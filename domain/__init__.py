"""The domain: aggregates, their events, the scheme, and the pure scoring functions.

No I/O, no clock, no framework imports except eventsourcing's Aggregate and event bases.
"""
