"""The tamper-evident ledger: leaf envelopes, RFC 9162 Merkle tree, checkpoints, proofs."""
