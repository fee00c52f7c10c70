"""The leaf envelope's byte layout (docs/ledger.md) and its leaf hash."""

from __future__ import annotations

import hashlib
import struct
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from service.ledger.envelope import ZERO_HASH, Envelope, leaf_hash, payload_hash

SID = UUID("245cd23d-c75a-50ae-aedb-e7b089ab6a5e")


def test_layout_is_the_documented_one() -> None:
    env = Envelope(7, SID, 3, "kaoping/Unit.Renamed.v1", payload_hash(b'{"a":1}'), b"\x11" * 32)
    data = env.encode()
    topic = b"kaoping/Unit.Renamed.v1"
    expected = (b"\x01" + struct.pack(">Q", 7) + SID.bytes + struct.pack(">Q", 3)
                + struct.pack(">H", len(topic)) + topic
                + hashlib.sha256(b'{"a":1}').digest() + b"\x11" * 32)
    assert data == expected
    assert env.leaf_hash() == hashlib.sha256(b"\x00" + expected).digest()
    assert leaf_hash(data) == env.leaf_hash()


@given(position=st.integers(0, 2**63), version=st.integers(1, 2**40),
       topic=st.text(min_size=1, max_size=200), payload=st.binary(max_size=300),
       prev=st.one_of(st.just(ZERO_HASH), st.binary(min_size=32, max_size=32)),
       sid=st.uuids())
def test_round_trip(position: int, version: int, topic: str, payload: bytes, prev: bytes,
                    sid: UUID) -> None:
    env = Envelope(position, sid, version, topic, payload_hash(payload), prev)
    assert Envelope.decode(env.encode()) == env


def test_any_field_changes_the_leaf_hash() -> None:
    base = Envelope(1, SID, 2, "t", payload_hash(b"x"), ZERO_HASH)
    variants = [
        Envelope(2, SID, 2, "t", payload_hash(b"x"), ZERO_HASH),
        Envelope(1, UUID(int=1), 2, "t", payload_hash(b"x"), ZERO_HASH),
        Envelope(1, SID, 3, "t", payload_hash(b"x"), ZERO_HASH),
        Envelope(1, SID, 2, "u", payload_hash(b"x"), ZERO_HASH),
        Envelope(1, SID, 2, "t", payload_hash(b"y"), ZERO_HASH),
        Envelope(1, SID, 2, "t", payload_hash(b"x"), b"\x01" * 32),
    ]
    assert len({v.leaf_hash() for v in variants} | {base.leaf_hash()}) == len(variants) + 1
