"""Issue 7: the ledger key aggregate refuses a rotation from a key that is not current, and
to a key used before (rotation itself is tested end to end in tests/integration)."""

from __future__ import annotations

import pytest

from domain.errors import Conflict
from domain.ledger_keys import LedgerKeys


def _keys() -> LedgerKeys:
    keys = LedgerKeys(origin="kaoping.example/log", key="k1", actor="ops")
    keys.rotate("k1", "k2", "annual", "minutes 3", "ops")
    return keys


@pytest.mark.parametrize(("retired", "successor", "rule"), [
    ("k1", "k3", "ledger-key.current"),  # k1 was retired already
    ("k9", "k3", "ledger-key.current"),
    ("k2", "k1", "ledger-key.new"),  # k1 was used before
    ("k2", "k2", "ledger-key.new"),
])
def test_a_rotation_starts_from_the_current_key_to_a_new_one(retired: str, successor: str,
                                                             rule: str) -> None:
    keys = _keys()
    version = keys.version
    with pytest.raises(Conflict) as caught:
        keys.rotate(retired, successor, "r", "a", "ops")
    assert caught.value.rule == rule
    assert (keys.keys, keys.version, len(keys.collect_events())) == (["k1", "k2"], version, 2)
