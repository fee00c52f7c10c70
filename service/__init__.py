"""Application layer: the event store, command handlers, policy, ledger, configuration, CLI."""
