"""The ledger's signing keys (账本签名密钥): which key signs the log's checkpoints, and each
handover from a retired key to its successor, with its reason and the authority that decided it.

One stream per log (origin). A rotation is recorded here *before* the handover checkpoint is
signed, so the checkpoint that both keys sign contains the event naming them: a verifier that
trusts the retired key learns the successor from a signed tree, not from the server's word.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, InvalidInput


class LedgerKeys(Aggregate):
    """账本签名密钥: the signing keys of one log, in the order they were used."""

    TOPIC = "kaoping/LedgerKeys"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/LedgerKeys.Created"  # base only; never stored

    class Recorded(Created):
        """The key in use when key changes began to be recorded."""

        TOPIC = "kaoping/LedgerKeys.Recorded.v1"
        origin: str
        key: str  # C2SP verifier key
        actor: str

    class Rotated(Aggregate.Event):
        TOPIC = "kaoping/LedgerKeys.Rotated.v1"
        retired_key: str  # C2SP verifier keys
        successor_key: str
        reason: str
        authority: str  # who decided it (a body and its decision, e.g. minutes)
        actor: str

    @staticmethod
    def id_for(origin: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"kaoping:ledger-keys:{origin}")

    @classmethod
    def create_id(cls, origin: str, **_: object) -> UUID:
        return cls.id_for(origin)

    @event(Recorded)
    def __init__(self, origin: str, key: str, actor: str) -> None:
        self.origin = origin
        self.keys: list[str] = [key]
        self.handovers: list[tuple[str, str, str, str]] = []  # retired, successor, reason, auth.

    @property
    def current(self) -> str:
        return self.keys[-1]

    def rotate(self, retired_key: str, successor_key: str, reason: str, authority: str,
               actor: str) -> None:
        if retired_key != self.current:
            msg = f"{retired_key} is not the ledger's current key ({self.current})"
            raise Conflict(msg, rule="ledger-key.current")
        if successor_key in self.keys:
            msg = "the successor key was used before; a rotation needs a new key"
            raise Conflict(msg, rule="ledger-key.new")
        for field, value in (("reason", reason), ("authority", authority)):
            if not value.strip():
                msg = f"a ledger key rotation states its {field}"
                raise InvalidInput(msg, rule=f"ledger-key.{field}", field=field)
        self._rotated(retired_key=retired_key, successor_key=successor_key, reason=reason,
                      authority=authority, actor=actor)

    @event(Rotated)
    def _rotated(self, retired_key: str, successor_key: str, reason: str, authority: str,
                 actor: str) -> None:
        self.keys.append(successor_key)
        self.handovers.append((retired_key, successor_key, reason, authority))
