"""The leaf envelope: the canonical bytes each ledger leaf hashes (docs/ledger.md §Envelope).

Layout, all integers unsigned big-endian::

    u8   format            0x01
    u64  position          0-based leaf index
    16   stream id         the UUID's 16 bytes (RFC 9562 byte order)
    u64  stream version    1-based
    u16  topic length L
    L    topic             UTF-8
    32   payload hash      SHA-256 of the stored payload bytes
    32   previous leaf     leaf hash of the stream's previous event; 32 zero bytes at version 1

leaf hash = SHA-256(0x00 || envelope)  (RFC 9162 §2.1.1)
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from uuid import UUID

FORMAT = 1
ZERO_HASH = bytes(32)
_HEAD = struct.Struct(">BQ16sQH")


@dataclass(frozen=True, slots=True)
class Envelope:
    position: int
    stream_id: UUID
    stream_version: int
    topic: str
    payload_hash: bytes
    previous_leaf: bytes

    def encode(self) -> bytes:
        topic = self.topic.encode()
        head = _HEAD.pack(FORMAT, self.position, self.stream_id.bytes, self.stream_version,
                          len(topic))
        return head + topic + self.payload_hash + self.previous_leaf

    @classmethod
    def decode(cls, data: bytes) -> Envelope:
        fmt, position, sid, version, length = _HEAD.unpack_from(data)
        if fmt != FORMAT:
            msg = f"unknown envelope format {fmt}"
            raise ValueError(msg)
        rest = data[_HEAD.size:]
        if len(rest) != length + 64:
            msg = f"envelope length {len(data)} does not match its topic length {length}"
            raise ValueError(msg)
        return cls(position, UUID(bytes=sid), version, rest[:length].decode(),
                   rest[length:length + 32], rest[length + 32:])

    def leaf_hash(self) -> bytes:
        return leaf_hash(self.encode())


def leaf_hash(envelope: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + envelope).digest()


def payload_hash(state: bytes) -> bytes:
    return hashlib.sha256(state).digest()
