"""An independent verifier for Kaoping's public ledger, written from the specifications only.

Sources: RFC 9162 §2.1 (Merkle tree hash, inclusion and consistency proofs), C2SP
``signed-note`` and ``tlog-checkpoint`` (checkpoint format and Ed25519 note signatures), and
Kaoping's published ``docs/ledger.md`` (HTTP endpoints, verifier key string, envelope layout).
It deliberately imports nothing from the project: only the standard library and
``cryptography`` (Ed25519 signature verification).

Usage::

    python tests/e2e/independent_verifier.py --url http://127.0.0.1:8000 \\
        [--trusted-checkpoint FILE] [--trusted-key NAME+KEYID+KEY] [--api-key KEY]

It exits 0 after printing a summary, 1 naming the first check that failed.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import random
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HASH_SIZE = 32
ED25519_SIG_TYPE = 0x01
ED25519_SIG_SIZE = 64
LEAVES_PAGE_MAX = 1000
MAX_PROOF_LENGTH = 128  # 2 * 64 levels: more is never a valid RFC 9162 proof for a uint64 size
MAX_SIGNATURES = 64  # C2SP signed-note: verifiers MUST accept at least 16
EMPTY_ROOT = hashlib.sha256(b"").digest()
ZERO_HASH = bytes(HASH_SIZE)
ENVELOPE_FORMAT = 0x01
ENVELOPE_FIXED_LEN = 99  # 1 + 8 + 16 + 8 + 2 + 32 + 32, plus the topic


class VerificationError(Exception):
    """A check failed: the server's answer contradicts the specifications or itself."""


# ---------------------------------------------------------------------------------------------
# RFC 9162 §2.1: hashes, tree head, proofs
# ---------------------------------------------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: ``MTH({d(0)}) = HASH(0x00 || d(0))``."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: ``HASH(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two k with k < n (n > 1), as in RFC 9162 §2.1.1."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def merkle_tree_hash(leaf_hashes: Sequence[bytes], start: int = 0, end: int | None = None) -> bytes:
    """RFC 9162 §2.1.1 MTH over ``leaf_hashes[start:end]`` (already leaf-hashed entries)."""
    stop = len(leaf_hashes) if end is None else end
    n = stop - start
    if n < 0:
        raise ValueError("end before start")
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[start]
    k = _largest_power_of_two_below(n)
    return node_hash(
        merkle_tree_hash(leaf_hashes, start, start + k),
        merkle_tree_hash(leaf_hashes, start + k, stop),
    )


def _lsb(value: int) -> bool:
    return value & 1 == 1


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2, step by step. Raises VerificationError when the proof fails."""
    where = f"inclusion proof (index={index}, size={size})"
    if len(leaf) != HASH_SIZE or len(root) != HASH_SIZE:
        raise VerificationError(f"{where}: hashes must be {HASH_SIZE} bytes")
    if len(proof) > MAX_PROOF_LENGTH:
        raise VerificationError(f"{where}: {len(proof)} elements is too long")
    # 1. If leaf_index >= tree_size, fail.
    if index < 0 or index >= size:
        raise VerificationError(f"{where}: index is not inside the tree")
    # 2. fn = leaf_index, sn = tree_size - 1.
    fn = index
    sn = size - 1
    # 3. r = hash.
    r = leaf
    # 4. For each p in inclusion_path:
    for p in proof:
        if len(p) != HASH_SIZE:
            raise VerificationError(f"{where}: a path element is not {HASH_SIZE} bytes")
        # a. If sn is 0, stop and fail.
        if sn == 0:
            raise VerificationError(f"{where}: path is longer than the tree is deep")
        # b. If LSB(fn) is set, or fn == sn:
        if _lsb(fn) or fn == sn:
            # i. r = HASH(0x01 || p || r)
            r = node_hash(p, r)
            # ii. If LSB(fn) is not set, right-shift fn and sn until LSB(fn) is set or fn is 0.
            if not _lsb(fn):
                while not (_lsb(fn) or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            # Otherwise r = HASH(0x01 || r || p)
            r = node_hash(r, p)
        # c. Right-shift both fn and sn once.
        fn >>= 1
        sn >>= 1
    # 5. sn must be 0 and r must equal root_hash.
    if sn != 0:
        raise VerificationError(f"{where}: path is too short (sn={sn} at the end)")
    if r != root:
        raise VerificationError(f"{where}: computed root does not match the tree head's root")


def _consistency_degenerate(
    where: str,
    first: int,
    second: int,
    first_hash: bytes,
    second_hash: bytes,
    proof: Sequence[bytes],
) -> bool:
    """Input checks; True when the case is outside §2.1.4.2 (``0 < first < second``) and done."""
    if len(first_hash) != HASH_SIZE or len(second_hash) != HASH_SIZE:
        raise VerificationError(f"{where}: hashes must be {HASH_SIZE} bytes")
    if len(proof) > MAX_PROOF_LENGTH:
        raise VerificationError(f"{where}: {len(proof)} elements is too long")
    if any(len(c) != HASH_SIZE for c in proof):
        raise VerificationError(f"{where}: a path element is not {HASH_SIZE} bytes")
    if first < 0 or second < first:
        raise VerificationError(f"{where}: sizes must satisfy 0 <= first <= second")
    if first == 0:
        if first_hash != EMPTY_ROOT:
            raise VerificationError(f"{where}: the root of the empty tree must be SHA-256('')")
        if proof:
            raise VerificationError(f"{where}: expected an empty proof from the empty tree")
        return True
    if first == second:
        if proof:
            raise VerificationError(f"{where}: expected an empty proof between equal sizes")
        if first_hash != second_hash:
            raise VerificationError(f"{where}: two different roots for the same tree size")
        return True
    # §2.1.4.2 step 1: if consistency_path is an empty array, stop and fail.
    if not proof:
        raise VerificationError(f"{where}: empty proof")
    return False


def verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2, step by step. Raises VerificationError when the proof fails.

    Degenerate cases, outside §2.1.4.2's ``0 < first < second``: equal sizes need equal roots
    and an empty proof (PROOF(n, D[n]) is empty, §2.1.4.1); the empty tree (size 0, root
    HASH()) is consistent with every tree and needs no proof.
    """
    where = f"consistency proof ({first} -> {second})"
    if _consistency_degenerate(where, first, second, first_hash, second_hash, proof):
        return
    # 1. (An empty consistency_path failed above.)
    path = list(proof)
    # 2. If first is an exact power of 2, prepend first_hash.
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    # 3. fn = first - 1, sn = second - 1.
    fn = first - 1
    sn = second - 1
    # 4. If LSB(fn) is set, right-shift fn and sn until LSB(fn) is not set.
    while _lsb(fn):
        fn >>= 1
        sn >>= 1
    # 5. fr = sr = the first value of the path.
    fr = path[0]
    sr = path[0]
    # 6. For each subsequent value c:
    for c in path[1:]:
        # a. If sn is 0, stop and fail.
        if sn == 0:
            raise VerificationError(f"{where}: path is longer than the tree is deep")
        # b. If LSB(fn) is set, or fn == sn:
        if _lsb(fn) or fn == sn:
            # i. fr = HASH(0x01 || c || fr); ii. sr = HASH(0x01 || c || sr)
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # iii. If LSB(fn) is not set, right-shift fn and sn until LSB(fn) is set or fn is 0.
            if not _lsb(fn):
                while not (_lsb(fn) or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            # Otherwise sr = HASH(0x01 || sr || c)
            sr = node_hash(sr, c)
        # c. Right-shift both fn and sn once.
        fn >>= 1
        sn >>= 1
    # 7. fr == first_hash, sr == second_hash, sn == 0.
    if sn != 0:
        raise VerificationError(f"{where}: path is too short (sn={sn} at the end)")
    if fr != first_hash:
        raise VerificationError(f"{where}: the proof does not lead to the older root")
    if sr != second_hash:
        raise VerificationError(f"{where}: the proof does not lead to the newer root")


# ---------------------------------------------------------------------------------------------
# C2SP signed-note and tlog-checkpoint
# ---------------------------------------------------------------------------------------------


def _b64decode(text: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 §4), strictly: no stray characters, correct padding."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise VerificationError(f"{what}: not valid standard base64: {text!r}") from exc


def _b64_hash(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise VerificationError(f"{what}: expected a base64 string, got {text!r}")
    raw = _b64decode(text, what)
    if len(raw) != HASH_SIZE:
        raise VerificationError(f"{what}: expected {HASH_SIZE} bytes, got {len(raw)}")
    return raw


def _valid_key_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def key_id_for(name: str, public_key: bytes, sig_type: int = ED25519_SIG_TYPE) -> bytes:
    """C2SP signed-note: ``SHA-256(key name || 0x0A || signature type || public key)[:4]``."""
    material = name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key
    return hashlib.sha256(material).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    """A C2SP verifier key: ``<name>+<hex key id>+<base64(0x01 || 32-byte Ed25519 key)>``."""

    name: str
    key_id: bytes
    public_key: bytes
    text: str

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse a verifier key string and check that its key id is the one the spec derives."""
    vkey = text.strip()
    parts = vkey.split("+", 2)  # key names never contain "+"; base64 may
    if len(parts) != 3:
        raise VerificationError(f"verifier key: expected name+keyid+key, got {vkey!r}")
    name, hex_id, b64_key = parts
    if not _valid_key_name(name):
        raise VerificationError(f"verifier key: invalid key name {name!r}")
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise VerificationError(f"verifier key: key id must be 8 lowercase hex digits: {hex_id!r}")
    raw = _b64decode(b64_key, "verifier key")
    if len(raw) != 1 + 32:
        raise VerificationError(f"verifier key: expected 33 bytes (type + key), got {len(raw)}")
    if raw[0] != ED25519_SIG_TYPE:
        raise VerificationError(f"verifier key: algorithm byte {raw[0]:#04x}, expected 0x01")
    public_key = raw[1:]
    expected_id = key_id_for(name, public_key)
    if bytes.fromhex(hex_id) != expected_id:
        raise VerificationError(
            f"verifier key: key id {hex_id} does not match SHA-256(name||0x0A||0x01||key)[:4]"
            f" = {expected_id.hex()}"
        )
    try:
        Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError as exc:
        raise VerificationError("verifier key: not a valid Ed25519 public key") from exc
    return VerifierKey(name=name, key_id=expected_id, public_key=public_key, text=vkey)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint whose signature was verified by at least one trusted key."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...]
    note_text: bytes
    raw: bytes
    signed_by: tuple[str, ...]

    @property
    def root_b64(self) -> str:
        return base64.b64encode(self.root).decode("ascii")


@dataclass(frozen=True)
class TreeHead:
    """A (size, root) the auditor already trusts, e.g. printed in a public document."""

    size: int
    root: bytes


def _split_signed_note(raw: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """C2SP signed-note: text (ending in newline), a blank line, then signature lines."""
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VerificationError("signed note: not valid UTF-8") from exc
    for ch in decoded:
        if ord(ch) < 0x20 and ch != "\n":
            raise VerificationError(f"signed note: contains control character {ord(ch):#04x}")
    if not decoded.endswith("\n"):
        raise VerificationError("signed note: does not end with a newline")
    # The text is separated from the signatures by the last empty line.
    cut = decoded.rfind("\n\n")
    if cut < 0:
        raise VerificationError("signed note: no blank line before the signatures")
    text = decoded[: cut + 1]
    sig_block = decoded[cut + 2 :]
    lines = sig_block.split("\n")
    if lines[-1] != "":
        raise VerificationError("signed note: last signature line does not end in newline")
    lines = lines[:-1]
    if not lines:
        raise VerificationError("signed note: no signature lines")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(f"signed note: more than {MAX_SIGNATURES} signatures")
    signatures: list[tuple[str, bytes]] = []
    for line in lines:
        m = re.fullmatch(r"\u2014 (\S+) (\S+)", line)
        if m is None:
            raise VerificationError(f"signed note: malformed signature line {line!r}")
        name, b64 = m.group(1), m.group(2)
        if not _valid_key_name(name):
            raise VerificationError(f"signed note: invalid key name {name!r}")
        sig = _b64decode(b64, "signed note signature")
        if len(sig) < 5:
            raise VerificationError("signed note: signature shorter than key id + 1 byte")
        signatures.append((name, sig))
    return text.encode("utf-8"), signatures


def parse_checkpoint(raw: bytes, trusted_keys: Sequence[VerifierKey]) -> Checkpoint:
    """Verify a checkpoint's note signature with the trusted keys, then parse its text.

    Per signed-note: signatures from unknown (name, key id) pairs are ignored; a signature from
    a known key that fails rejects the whole note; at least one known signature must verify.
    """
    text, signatures = _split_signed_note(raw)
    verified: list[str] = []
    for name, sig in signatures:
        key_id, body = sig[:4], sig[4:]
        for key in trusted_keys:
            if key.name != name or key.key_id != key_id:
                continue
            if len(body) != ED25519_SIG_SIZE or not key.verify(text, body):
                raise VerificationError(
                    f"checkpoint: the signature by trusted key {name}+{key_id.hex()} does not"
                    " verify over the note text"
                )
            verified.append(key.text)
    if not verified:
        named = ", ".join(f"{n}+{s[:4].hex()}" for n, s in signatures)
        raise VerificationError(
            f"checkpoint: not signed by any trusted key (signatures by: {named})"
        )
    return _parse_checkpoint_text(text, raw, tuple(verified))


def _parse_checkpoint_text(text: bytes, raw: bytes, signed_by: tuple[str, ...]) -> Checkpoint:
    """C2SP tlog-checkpoint note text: origin, decimal size, base64 root, extension lines."""
    lines = text.decode("utf-8").split("\n")
    assert lines[-1] == ""  # the note text ends in a newline (checked when splitting)
    lines = lines[:-1]
    if len(lines) < 3:
        raise VerificationError(f"checkpoint: {len(lines)} text lines, need at least 3")
    origin, size_line, root_line, *extensions = lines
    if not origin:
        raise VerificationError("checkpoint: empty origin line")
    if not re.fullmatch(r"0|[1-9][0-9]*", size_line):
        raise VerificationError(f"checkpoint: tree size {size_line!r} is not canonical decimal")
    size = int(size_line)
    if size >= 1 << 64:
        raise VerificationError("checkpoint: tree size does not fit in 64 bits")
    root = _b64_hash(root_line, "checkpoint root hash")
    if any(not ext for ext in extensions):
        raise VerificationError("checkpoint: empty extension line")
    return Checkpoint(
        origin=origin,
        size=size,
        root=root,
        extensions=tuple(extensions),
        note_text=text,
        raw=raw,
        signed_by=signed_by,
    )


# ---------------------------------------------------------------------------------------------
# docs/ledger.md: the leaf envelope
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    position: int
    stream_id: bytes
    stream_version: int
    topic: str
    payload_hash: bytes
    previous_leaf: bytes


def parse_envelope(data: bytes) -> Envelope:
    """The byte layout of docs/ledger.md "Envelope" (all integers unsigned big-endian)."""
    if len(data) < ENVELOPE_FIXED_LEN:
        raise VerificationError(f"envelope: {len(data)} bytes, shorter than {ENVELOPE_FIXED_LEN}")
    if data[0] != ENVELOPE_FORMAT:
        raise VerificationError(f"envelope: format byte {data[0]:#04x}, expected 0x01")
    position = int.from_bytes(data[1:9], "big")
    stream_id = data[9:25]
    version = int.from_bytes(data[25:33], "big")
    topic_len = int.from_bytes(data[33:35], "big")
    if len(data) != ENVELOPE_FIXED_LEN + topic_len:
        raise VerificationError(
            f"envelope: {len(data)} bytes, expected 99 + L = {ENVELOPE_FIXED_LEN + topic_len}"
        )
    try:
        topic = data[35 : 35 + topic_len].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VerificationError("envelope: topic is not UTF-8") from exc
    rest = data[35 + topic_len :]
    return Envelope(
        position=position,
        stream_id=stream_id,
        stream_version=version,
        topic=topic,
        payload_hash=rest[:32],
        previous_leaf=rest[32:64],
    )


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


class Client:
    """A tiny HTTP client: no proxies, bounded timeouts, every response closed."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise VerificationError(f"not an http(s) base URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._origin = (parsed.scheme, parsed.netloc)
        self.api_key = api_key
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def url(self, path: str, query: Mapping[str, int | str] | None = None) -> str:
        q = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"{self.base_url}{path}{q}"

    def get(self, url: str, *, expect: int | None = 200) -> Response:
        parsed = urllib.parse.urlsplit(url)
        if (parsed.scheme, parsed.netloc) != self._origin:
            raise VerificationError(f"refusing to follow a link off the server: {url}")
        headers = {"Accept": "*/*"}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        request = urllib.request.Request(url, headers=headers, method="GET")  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as resp:
                response = Response(
                    status=resp.status,
                    headers={k.lower(): v for k, v in resp.headers.items()},
                    body=resp.read(),
                    url=url,
                )
        except urllib.error.HTTPError as err:
            with err:
                response = Response(
                    status=err.code,
                    headers={k.lower(): v for k, v in err.headers.items()},
                    body=err.read(),
                    url=url,
                )
        except (urllib.error.URLError, OSError) as exc:
            raise VerificationError(f"GET {url}: {exc}") from exc
        if expect is not None and response.status != expect:
            body = response.body[:500].decode("utf-8", "replace")
            raise VerificationError(f"GET {url}: HTTP {response.status}, expected {expect}: {body}")
        return response

    def get_json(self, url: str) -> Any:
        response = self.get(url)
        try:
            return json.loads(response.body)
        except ValueError as exc:
            raise VerificationError(f"GET {url}: body is not JSON") from exc


def parse_link_next(header: str | None) -> str | None:
    """The target of the ``rel="next"`` link of an RFC 8288 Link header, if any."""
    if not header:
        return None
    for m in re.finditer(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)", header):
        target, params = m.group(1), m.group(2)
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            rels = value.strip().strip('"').split()
            if key.strip().lower() == "rel" and "next" in rels:
                return target
    return None


# ---------------------------------------------------------------------------------------------
# Fetching the public ledger
# ---------------------------------------------------------------------------------------------

KEY_PATH = "/api/v1/ledger/key"
CHECKPOINT_PATH = "/api/v1/ledger/checkpoint"
LEAVES_PATH = "/api/v1/ledger/leaves"
INCLUSION_PATH = "/api/v1/ledger/proofs/inclusion"
CONSISTENCY_PATH = "/api/v1/ledger/proofs/consistency"


@dataclass(frozen=True)
class Leaf:
    index: int
    leaf_hash: bytes
    envelope: bytes | None


def fetch_verifier_key(client: Client) -> VerifierKey:
    response = client.get(client.url(KEY_PATH))
    try:
        text = response.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VerificationError("verifier key: not UTF-8") from exc
    return parse_verifier_key(text)


def fetch_checkpoint_bytes(client: Client, size: int | None = None) -> bytes:
    query = None if size is None else {"size": size}
    return client.get(client.url(CHECKPOINT_PATH, query)).body


def fetch_leaves(client: Client, size: int) -> list[Leaf]:
    """Leaves ``0..size-1``, following ``Link: rel="next"`` until the range is complete."""
    leaves: list[Leaf] = []
    if size == 0:
        return leaves
    url: str | None = client.url(LEAVES_PATH, {"start": 0, "end": size})
    pages = 0
    while url is not None and len(leaves) < size:
        pages += 1
        if pages > size // LEAVES_PAGE_MAX + 2:
            raise VerificationError(f"leaves: too many pages for {size} leaves (link loop?)")
        response = client.get(url)
        try:
            items = json.loads(response.body)
        except ValueError as exc:
            raise VerificationError(f"GET {url}: body is not JSON") from exc
        if not isinstance(items, list) or not items:
            raise VerificationError(
                f"GET {url}: expected a non-empty JSON array (have {len(leaves)} of {size})"
            )
        if len(items) > LEAVES_PAGE_MAX:
            raise VerificationError(f"GET {url}: {len(items)} leaves in one page, max 1000")
        for item in items:
            if not isinstance(item, dict):
                raise VerificationError(f"GET {url}: leaf entry is not an object: {item!r}")
            expected_index = len(leaves)
            if item.get("index") != expected_index:
                raise VerificationError(
                    f"GET {url}: leaf index {item.get('index')!r}, expected {expected_index}"
                    " (positions must be dense and in order)"
                )
            envelope_b64 = item.get("envelope")
            envelope = None if envelope_b64 is None else _b64decode(str(envelope_b64), "envelope")
            leaves.append(
                Leaf(
                    index=expected_index,
                    leaf_hash=_b64_hash(item.get("leaf_hash"), f"leaf {expected_index}"),
                    envelope=envelope,
                )
            )
        nxt = parse_link_next(response.headers.get("link"))
        url = None if nxt is None else urllib.parse.urljoin(url, nxt)
    if len(leaves) > size:
        raise VerificationError(f"leaves: got {len(leaves)} leaves for range [0, {size})")
    if len(leaves) < size:
        raise VerificationError(
            f'leaves: the server stopped at {len(leaves)} leaves (no Link: rel="next"),'
            f" but the checkpoint has {size}"
        )
    return leaves


def fetch_inclusion_proof(client: Client, index: int, size: int) -> tuple[bytes, list[bytes]]:
    url = client.url(INCLUSION_PATH, {"index": index, "size": size})
    body = client.get_json(url)
    if not isinstance(body, dict):
        raise VerificationError(f"GET {url}: expected a JSON object")
    if body.get("index") != index or body.get("size") != size:
        raise VerificationError(
            f"GET {url}: answer is for index={body.get('index')!r}, size={body.get('size')!r}"
        )
    proof = body.get("proof")
    if not isinstance(proof, list):
        raise VerificationError(f"GET {url}: 'proof' is not an array")
    return (
        _b64_hash(body.get("leaf_hash"), f"{url} leaf_hash"),
        [_b64_hash(p, f"{url} proof element") for p in proof],
    )


def fetch_consistency_proof(client: Client, first: int, second: int) -> list[bytes]:
    url = client.url(CONSISTENCY_PATH, {"from": first, "to": second})
    body = client.get_json(url)
    if not isinstance(body, dict):
        raise VerificationError(f"GET {url}: expected a JSON object")
    if body.get("from") != first or body.get("to") != second:
        raise VerificationError(
            f"GET {url}: answer is for from={body.get('from')!r}, to={body.get('to')!r}"
        )
    proof = body.get("proof")
    if not isinstance(proof, list):
        raise VerificationError(f"GET {url}: 'proof' is not an array")
    return [_b64_hash(p, f"{url} proof element") for p in proof]


# ---------------------------------------------------------------------------------------------
# The whole audit
# ---------------------------------------------------------------------------------------------


@dataclass
class Summary:
    base_url: str
    verifier_key: str
    key_pinned: bool
    origin: str
    tree_size: int
    root_b64: str
    older_size: int | None = None
    leaves_checked: int = 0
    envelopes_checked: int = 0
    streams_checked: int = 0
    inclusion_proofs_checked: int = 0
    consistency_proofs_checked: int = 0
    receipts_checked: int = 0
    warnings: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [
            f"ledger at {self.base_url}: OK",
            f"  verifier key       {self.verifier_key}"
            + ("  (pinned)" if self.key_pinned else "  (NOT pinned: taken from the server)"),
            f"  checkpoint         {self.origin} size={self.tree_size} root={self.root_b64}",
            "  older checkpoint   "
            + ("none given" if self.older_size is None else f"size={self.older_size}, consistent"),
            f"  leaves             {self.leaves_checked} recomputed into the root",
            f"  envelopes          {self.envelopes_checked} in {self.streams_checked} streams",
            f"  inclusion proofs   {self.inclusion_proofs_checked}",
            f"  consistency proofs {self.consistency_proofs_checked}",
            f"  receipts           {self.receipts_checked}",
        ]
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def _sample_indices(size: int, limit: int | None, must: Iterable[int], seed: int) -> list[int]:
    """All indices when they fit in ``limit``, else edges, power-of-two borders and a sample."""
    if limit is None or size <= limit:
        return list(range(size))
    chosen = {i for i in must if 0 <= i < size}
    chosen.update({0, 1, size - 2, size - 1})
    k = 1
    while k < size:
        chosen.update({k - 1, k, k + 1})
        k <<= 1
    chosen = {i for i in chosen if 0 <= i < size}
    rng = random.Random(seed)
    while len(chosen) < limit:
        chosen.add(rng.randrange(size))
    return sorted(chosen)


def _sample_sizes(size: int, limit: int, seed: int) -> list[int]:
    """Older tree sizes in ``[1, size)`` to check consistency proofs against local roots."""
    chosen: set[int] = {1, 2, 3, size - 1}
    k = 1
    while k < size:
        chosen.update({k - 1, k, k + 1})
        k <<= 1
    rng = random.Random(seed)
    candidates = sorted(s for s in chosen if 1 <= s < size)
    if len(candidates) > limit:
        candidates = sorted(rng.sample(candidates, limit))
    return candidates


def _check_envelopes(leaves: Sequence[Leaf], summary: Summary) -> None:
    """Leaf hash = HASH(0x00 || envelope), position = index, and each stream's hash chain."""
    last: dict[bytes, tuple[int, bytes]] = {}  # stream id -> (version, leaf hash)
    for leaf in leaves:
        if leaf.envelope is None:
            continue
        if leaf_hash(leaf.envelope) != leaf.leaf_hash:
            raise VerificationError(f"leaf {leaf.index}: leaf_hash != SHA-256(0x00 || envelope)")
        env = parse_envelope(leaf.envelope)
        if env.position != leaf.index:
            raise VerificationError(
                f"leaf {leaf.index}: the envelope names position {env.position}"
            )
        previous = last.get(env.stream_id)
        expected_version = 1 if previous is None else previous[0] + 1
        if env.stream_version != expected_version:
            raise VerificationError(
                f"leaf {leaf.index}: stream {env.stream_id.hex()} version {env.stream_version},"
                f" expected {expected_version}"
            )
        expected_prev = ZERO_HASH if previous is None else previous[1]
        if env.previous_leaf != expected_prev:
            raise VerificationError(
                f"leaf {leaf.index}: previous-leaf field does not chain to the stream's"
                f" version {expected_version - 1}"
            )
        last[env.stream_id] = (env.stream_version, leaf.leaf_hash)
        summary.envelopes_checked += 1
    summary.streams_checked = len(last)


def check_receipt(
    client: Client,
    receipt: Mapping[str, Any],
    checkpoint: Checkpoint | TreeHead,
    leaves: Sequence[Leaf] | None = None,
) -> None:
    """A write receipt's leaf is at its position (and, if known, matches the leaf listing)."""
    position = receipt.get("position")
    if not isinstance(position, int) or isinstance(position, bool):
        raise VerificationError(f"receipt: position is not an integer: {receipt!r}")
    expected = _b64_hash(receipt.get("leaf_hash"), f"receipt at position {position}")
    if position >= checkpoint.size:
        raise VerificationError(
            f"receipt: position {position} is not covered by the checkpoint (size"
            f" {checkpoint.size})"
        )
    if leaves is not None:
        if leaves[position].leaf_hash != expected:
            raise VerificationError(f"receipt: leaf {position} in the log is not the receipt's")
        envelope = leaves[position].envelope
        if envelope is not None:
            env = parse_envelope(envelope)
            stream_id = str(receipt.get("stream_id", ""))
            if (
                env.stream_id.hex() != stream_id.replace("-", "").lower()
                or env.stream_version != receipt.get("stream_version")
                or env.topic != receipt.get("topic")
            ):
                raise VerificationError(
                    f"receipt: the envelope at {position} names another stream/version/topic"
                )
    served_leaf, proof = fetch_inclusion_proof(client, position, checkpoint.size)
    if served_leaf != expected:
        raise VerificationError(
            f"receipt: the inclusion proof for {position} is for another leaf hash"
        )
    verify_inclusion(position, checkpoint.size, expected, proof, checkpoint.root)


def _trusted_keys(served: VerifierKey, trusted: Sequence[str] | None) -> list[VerifierKey]:
    if trusted is None:
        return [served]
    keys = [parse_verifier_key(k) for k in trusted]
    if served.text not in {k.text for k in keys}:
        raise VerificationError(
            f"verifier key: the server publishes {served.text}, which is not trusted"
        )
    return keys


def _check_same_checkpoint(
    client: Client, kept: Checkpoint, keys: Sequence[VerifierKey], summary: Summary
) -> None:
    """docs/ledger.md: checkpoints are stored append-only and each stays available (?size=)."""
    served_raw = fetch_checkpoint_bytes(client, kept.size)
    if served_raw == kept.raw:
        return
    served = parse_checkpoint(served_raw, keys)
    if served.root != kept.root:
        raise VerificationError(
            f"checkpoint: the server serves size {kept.size} with root {served.root_b64},"
            f" but the checkpoint held here says {kept.root_b64} (a fork)"
        )
    summary.warnings.append(f"?size={kept.size} returns other bytes for the same root")


def _check_older(
    client: Client, older: Checkpoint | TreeHead, latest: Checkpoint, summary: Summary
) -> None:
    """RFC 9162 §2.1.4.2 between the tree head held here and the latest checkpoint."""
    if isinstance(older, Checkpoint) and older.origin != latest.origin:
        raise VerificationError(
            f"older checkpoint: origin {older.origin!r} is not {latest.origin!r}"
        )
    if older.size > latest.size:
        raise VerificationError(
            f"older checkpoint: size {older.size} is larger than the latest {latest.size}"
            " (the log shrank, or the latest checkpoint is stale)"
        )
    proof = fetch_consistency_proof(client, older.size, latest.size) if older.size > 0 else []
    verify_consistency(older.size, latest.size, older.root, latest.root, proof)
    summary.consistency_proofs_checked += 1
    summary.older_size = older.size


def _check_inclusions(
    client: Client, hashes: Sequence[bytes], size: int, root: bytes, indices: Iterable[int]
) -> int:
    """Fetch and verify (RFC 9162 §2.1.3.2) the inclusion proof of each index at ``size``."""
    count = 0
    for index in indices:
        served_leaf, proof = fetch_inclusion_proof(client, index, size)
        if served_leaf != hashes[index]:
            raise VerificationError(
                f"inclusion proof: the server names leaf {index} differently than /leaves"
            )
        verify_inclusion(index, size, hashes[index], proof, root)
        count += 1
    return count


def verify_server(
    base_url: str,
    older_checkpoint: bytes | None = None,
    *,
    trusted_keys: Sequence[str] | None = None,
    trusted_tree_head: TreeHead | None = None,
    api_key: str | None = None,
    receipts: Sequence[Mapping[str, Any]] = (),
    max_inclusion_proofs: int | None = 512,
    max_extra_consistency: int = 24,
    seed: int = 9162,
) -> Summary:
    """Audit the ledger served at ``base_url``; raise VerificationError on the first failure.

    ``trusted_keys``: verifier key strings obtained out of band. The key the server publishes
    must be one of them. Without them the served key is used (trust on first use), which the
    summary says. ``older_checkpoint``: a signed note you kept earlier; it must verify with a
    trusted key and the latest checkpoint must be consistent with it. ``trusted_tree_head``:
    likewise for a bare (size, root), e.g. copied from a printed document. ``api_key``: a
    supervisor credential, so that envelopes are served and checked too.
    """
    if older_checkpoint is not None and trusted_tree_head is not None:
        raise ValueError("give older_checkpoint or trusted_tree_head, not both")
    client = Client(base_url, api_key=api_key)

    # 1. The verifier key.
    served_key = fetch_verifier_key(client)
    keys = _trusted_keys(served_key, trusted_keys)

    # 2. The latest checkpoint, and the same size fetched by ?size=.
    latest = parse_checkpoint(fetch_checkpoint_bytes(client), keys)
    summary = Summary(
        base_url=base_url,
        verifier_key=served_key.text,
        key_pinned=trusted_keys is not None,
        origin=latest.origin,
        tree_size=latest.size,
        root_b64=latest.root_b64,
    )
    if latest.origin != served_key.name:
        summary.warnings.append(
            f"the key name {served_key.name!r} is not the origin {latest.origin!r}"
            " (docs/ledger.md: the origin is also the key name)"
        )
    _check_same_checkpoint(client, latest, keys, summary)

    # 3. The older checkpoint (or trusted tree head): the log only grew.
    older: Checkpoint | TreeHead | None = trusted_tree_head
    if older_checkpoint is not None:
        older = parse_checkpoint(older_checkpoint, keys)
    if older is not None:
        _check_older(client, older, latest, summary)
    if isinstance(older, Checkpoint):
        _check_same_checkpoint(client, older, keys, summary)

    # 4. Every leaf, recomputed into the root (and the older root from its prefix).
    leaves = fetch_leaves(client, latest.size)
    hashes = [leaf.leaf_hash for leaf in leaves]
    recomputed = merkle_tree_hash(hashes)
    if recomputed != latest.root:
        raise VerificationError(
            f"leaves: the RFC 9162 root of leaves 0..{latest.size - 1} is"
            f" {base64.b64encode(recomputed).decode()}, the checkpoint says {latest.root_b64}"
        )
    summary.leaves_checked = len(leaves)
    if older is not None and merkle_tree_hash(hashes, 0, older.size) != older.root:
        raise VerificationError(
            f"older checkpoint: the first {older.size} leaves of today's log do not hash to it"
        )
    _check_envelopes(leaves, summary)

    # 5. Inclusion proofs for every leaf (or a sample).
    must = [r["position"] for r in receipts if isinstance(r.get("position"), int)]
    indices = _sample_indices(latest.size, max_inclusion_proofs, must, seed)
    summary.inclusion_proofs_checked += _check_inclusions(
        client, hashes, latest.size, latest.root, indices
    )

    # 6. Consistency from a spread of older sizes, against roots computed here; and inclusion
    #    proofs at those sizes (the first and the last leaf of each).
    for first in _sample_sizes(latest.size, max_extra_consistency, seed):
        first_root = merkle_tree_hash(hashes, 0, first)
        proof = fetch_consistency_proof(client, first, latest.size)
        verify_consistency(first, latest.size, first_root, latest.root, proof)
        summary.consistency_proofs_checked += 1
        summary.inclusion_proofs_checked += _check_inclusions(
            client, hashes, first, first_root, sorted({0, first - 1})
        )

    # 7. Receipts the caller kept.
    for receipt in receipts:
        check_receipt(client, receipt, latest, leaves)
        if older is not None and int(receipt["position"]) < older.size:
            check_receipt(client, receipt, older, leaves)
        summary.receipts_checked += 1
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Independently verify a Kaoping ledger (RFC 9162, C2SP checkpoints)."
    )
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument(
        "--trusted-checkpoint",
        type=Path,
        help="a checkpoint (signed note) kept earlier; the log must be consistent with it",
    )
    parser.add_argument(
        "--trusted-key",
        action="append",
        help="the verifier key obtained out of band (repeatable); default: the served key",
    )
    parser.add_argument("--api-key", help="a supervisor API key, to also check envelopes")
    parser.add_argument(
        "--max-inclusion-proofs",
        type=int,
        default=512,
        help="check every leaf up to this tree size, else a sample of this many (0: all)",
    )
    args = parser.parse_args(argv)
    older = args.trusted_checkpoint.read_bytes() if args.trusted_checkpoint else None
    try:
        summary = verify_server(
            args.url,
            older,
            trusted_keys=args.trusted_key,
            api_key=args.api_key,
            max_inclusion_proofs=args.max_inclusion_proofs or None,
        )
    except VerificationError as exc:
        print(f"VERIFICATION FAILED: {exc}", file=sys.stderr)
        return 1
    print(summary.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
