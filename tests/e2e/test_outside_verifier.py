"""Run Kaoping as a user would, then audit its ledger from outside.

The auditor is ``independent_verifier.py`` beside this file: written from RFC 9162 §2.1, C2SP
``signed-note`` / ``tlog-checkpoint`` and ``docs/ledger.md`` only, importing nothing from the
project. The server is started as a subprocess (``kaoping migrate``, ``kaoping serve``) on
127.0.0.1; writes go through the public HTTP API with an API key made by ``kaoping keys create``.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.e2e.independent_verifier import (
    EMPTY_ROOT,
    Checkpoint,
    Client,
    TreeHead,
    VerificationError,
    check_receipt,
    fetch_consistency_proof,
    fetch_inclusion_proof,
    fetch_leaves,
    key_id_for,
    leaf_hash,
    merkle_tree_hash,
    node_hash,
    parse_checkpoint,
    parse_verifier_key,
    verify_consistency,
    verify_inclusion,
    verify_server,
)
from tests.e2e.live_server import Server, http, kaoping, serve

VERIFIER_SCRIPT = Path(__file__).with_name("independent_verifier.py")
CHECKPOINT_TIMEOUT = 20.0
# More than one page of /ledger/leaves (1000), so that the Link: rel="next" walk is exercised.
BULK_UNITS = 1000

Receipt = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# The product, run as a user runs it
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # The outside verifier asks, without credentials, for one proof per event it checks (about a
    # thousand here): a deployment that serves verifiers sizes its anonymous limits for that
    # (docs/operations.md). The anonymous throttle has tests of its own.
    with serve(tmp_path_factory.mktemp("kaoping-outside"), KAOPING_ANONYMOUS_BURST="100000",
               KAOPING_ANONYMOUS_RATE_PER_SECOND="100000") as srv:
        yield srv


# ---------------------------------------------------------------------------------------------
# A scenario: some writes, an older checkpoint kept, more writes, a newer checkpoint
# ---------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    server: Server
    verifier_key: str
    supervisor_key: str
    older: Checkpoint
    newer: Checkpoint
    receipts: list[Receipt]  # the few named writes
    bulk_receipts: list[Receipt]  # the bulk writes (only their leaf hashes are checked)


def _api_key(server: Server, role: str, name: str) -> str:
    out = kaoping(server.env, server.workdir, "keys", "create", "--role", role, "--name", name)
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "kaoping keys create printed nothing"
    return lines[-1].strip()


def _register(server: Server, key: str, code: str, name: str, kind: str, cat: str) -> Receipt:
    body = {"code": code, "name": name, "kind": kind, "category": cat}
    status, answer = http(
        "POST",
        f"{server.url}/api/v1/units",
        body,
        {"X-API-Key": key, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert status == 201, f"POST /units {body}: {status} {answer}\n{server.log_tail()}"
    receipts: list[Receipt] = answer["receipt"]
    assert len(receipts) == 1
    return {**receipts[0], "unit_id": answer["unit"]["id"]}


def _rename(server: Server, key: str, unit_id: str, version: int, name: str) -> Receipt:
    status, answer = http(
        "PATCH",
        f"{server.url}/api/v1/units/{unit_id}",
        {"name": name, "reason": "auditor test: a second event in the stream"},
        {"X-API-Key": key, "If-Match": f'"{version}"'},
    )
    assert status == 200, f"PATCH /units/{unit_id}: {status} {answer}"
    receipts: list[Receipt] = answer["receipt"]
    assert len(receipts) == 1
    return receipts[0]


def _wait_for_checkpoint(server: Server, vkey: str, size: int) -> Checkpoint:
    """Poll the latest checkpoint until it covers ``size`` leaves (bounded)."""
    client = Client(server.url)
    keys = [parse_verifier_key(vkey)]
    deadline = time.monotonic() + CHECKPOINT_TIMEOUT
    while True:
        checkpoint = parse_checkpoint(
            client.get(client.url("/api/v1/ledger/checkpoint")).body, keys
        )
        if checkpoint.size >= size:
            return checkpoint
        if time.monotonic() > deadline:
            pytest.fail(
                f"no checkpoint covering {size} leaves after {CHECKPOINT_TIMEOUT}s (latest"
                f" {checkpoint.size}); KAOPING_CHECKPOINT_INTERVAL_SECONDS=0.5\n"
                + server.log_tail()
            )
        time.sleep(0.1)


@pytest.fixture(scope="module")
def scenario(server: Server) -> Scenario:
    organizer = _api_key(server, "organizer", "auditor-test")
    supervisor = _api_key(server, "supervisor", "auditor-supervisor")
    # The key, fetched once and then pinned, as if published out of band.
    status, vkey_raw = http("GET", f"{server.url}/api/v1/ledger/key")
    assert status == 200
    vkey = (vkey_raw.decode() if isinstance(vkey_raw, bytes) else str(vkey_raw)).strip()
    parse_verifier_key(vkey)

    receipts = [
        _register(server, organizer, "XZ-01", "城关镇", "township", "platform-1"),
        _register(server, organizer, "XZ-02", "河口镇", "township", "platform-2"),
        _register(server, organizer, "BM-01", "组织部", "department", "party-government"),
        _register(server, organizer, "BM-02", "税务局", "department", "vertical"),
    ]
    receipts.append(_rename(server, organizer, receipts[0]["unit_id"], 1, "城关镇（新）"))
    older = _wait_for_checkpoint(server, vkey, 1 + max(r["position"] for r in receipts))

    def bulk(i: int) -> Receipt:
        return _register(server, organizer, f"BULK-{i:04d}", f"单位{i}", "township", "platform-2")

    with ThreadPoolExecutor(max_workers=8) as pool:  # concurrent writers, as in production
        bulk_receipts = list(pool.map(bulk, range(BULK_UNITS)))
    receipts.append(_register(server, organizer, "BM-03", "宣传部", "department", "vertical"))
    receipts.append(_rename(server, organizer, receipts[1]["unit_id"], 1, "河口镇（新）"))
    all_positions = [r["position"] for r in receipts + bulk_receipts]
    assert sorted(all_positions) == list(range(len(all_positions))), "positions not dense"
    newer = _wait_for_checkpoint(server, vkey, 1 + max(all_positions))
    assert older.size < newer.size
    return Scenario(
        server=server,
        verifier_key=vkey,
        supervisor_key=supervisor,
        older=older,
        newer=newer,
        receipts=receipts,
        bulk_receipts=bulk_receipts,
    )


# ---------------------------------------------------------------------------------------------
# Helpers for forged material
# ---------------------------------------------------------------------------------------------


def _flip_bit(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[(bit // 8) % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def _replace_root(note: bytes, root: bytes) -> bytes:
    lines = note.decode().split("\n")
    lines[2] = base64.b64encode(root).decode()
    return "\n".join(lines).encode()


@dataclass
class OwnSigner:
    """A signing key the auditor generates: a stand-in for a forger, or a second trusted key."""

    name: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def vkey(self) -> str:
        key_id = key_id_for(self.name, self.public).hex()
        encoded = base64.b64encode(b"\x01" + self.public).decode()
        return f"{self.name}+{key_id}+{encoded}"

    def checkpoint(self, size: int, root: bytes) -> bytes:
        text = f"{self.name}\n{size}\n{base64.b64encode(root).decode()}\n".encode()
        sig = key_id_for(self.name, self.public) + self.private.sign(text)
        return text + f"\n\u2014 {self.name} {base64.b64encode(sig).decode()}\n".encode()


# ---------------------------------------------------------------------------------------------
# The verifier's RFC 9162 code against reference proofs built here from §2.1.3.1 / §2.1.4.1
# ---------------------------------------------------------------------------------------------


def _path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]) over leaf hashes."""
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k << 1 < n:
        k <<= 1
    if m < k:
        return [*_path(m, d[:k]), merkle_tree_hash(d[k:])]
    return [*_path(m - k, d[k:]), merkle_tree_hash(d[:k])]


def _subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b) over leaf hashes."""
    n = len(d)
    if m == n:
        return [] if b else [merkle_tree_hash(d)]
    k = 1
    while k << 1 < n:
        k <<= 1
    if m <= k:
        return [*_subproof(m, d[:k], b), merkle_tree_hash(d[k:])]
    return [*_subproof(m - k, d[k:], False), merkle_tree_hash(d[:k])]


def test_rfc9162_algorithms_against_reference_proofs() -> None:
    assert merkle_tree_hash([]) == EMPTY_ROOT
    hashes = [leaf_hash(f"entry {i}".encode()) for i in range(33)]
    assert merkle_tree_hash(hashes[:2]) == node_hash(hashes[0], hashes[1])
    for n in range(1, len(hashes) + 1):
        tree = hashes[:n]
        root = merkle_tree_hash(tree)
        for m in range(n):
            proof = _path(m, tree)
            verify_inclusion(m, n, tree[m], proof, root)
            with pytest.raises(VerificationError):
                verify_inclusion(m, n, _flip_bit(tree[m], m), proof, root)
            for i in range(len(proof)):
                bad = [*proof[:i], _flip_bit(proof[i], i + m), *proof[i + 1 :]]
                with pytest.raises(VerificationError):
                    verify_inclusion(m, n, tree[m], bad, root)
            if proof:
                with pytest.raises(VerificationError):
                    verify_inclusion(m, n, tree[m], proof[:-1], root)
            with pytest.raises(VerificationError):
                verify_inclusion(m, n, tree[m], [*proof, root], root)
        for m in range(1, n):
            old_root = merkle_tree_hash(tree[:m])
            proof = _subproof(m, tree, True)
            verify_consistency(m, n, old_root, root, proof)
            for i in range(len(proof)):
                bad = [*proof[:i], _flip_bit(proof[i], i), *proof[i + 1 :]]
                with pytest.raises(VerificationError):
                    verify_consistency(m, n, old_root, root, bad)
            with pytest.raises(VerificationError):
                verify_consistency(m, n, _flip_bit(old_root, m), root, proof)
            with pytest.raises(VerificationError):
                verify_consistency(m, n, old_root, _flip_bit(root, m), proof)
        verify_consistency(n, n, root, root, [])
        verify_consistency(0, n, EMPTY_ROOT, root, [])


def test_verifier_key_parsing_follows_c2sp() -> None:
    own = OwnSigner("auditor.example/test", Ed25519PrivateKey.generate())
    key = parse_verifier_key(own.vkey + "\n")
    assert key.public_key == own.public
    name, key_id, b64 = own.vkey.split("+", 2)
    wrong_id = f"{int(key_id, 16) ^ 1:08x}"
    with pytest.raises(VerificationError, match="key id"):
        parse_verifier_key(f"{name}+{wrong_id}+{b64}")
    ecdsa_like = base64.b64encode(b"\x02" + own.public).decode()
    with pytest.raises(VerificationError, match="algorithm byte"):
        parse_verifier_key(f"{name}+{key_id}+{ecdsa_like}")
    short = base64.b64encode(b"\x01" + own.public[:31]).decode()
    with pytest.raises(VerificationError, match="33 bytes"):
        parse_verifier_key(f"{name}+{key_id}+{short}")
    checkpoint = parse_checkpoint(own.checkpoint(7, EMPTY_ROOT), [key])
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (own.name, 7, EMPTY_ROOT)


# ---------------------------------------------------------------------------------------------
# The running product, audited from outside
# ---------------------------------------------------------------------------------------------


def test_independent_verifier_accepts_the_log(scenario: Scenario) -> None:
    summary = verify_server(
        scenario.server.url,
        scenario.older.raw,
        trusted_keys=[scenario.verifier_key],
        api_key=scenario.supervisor_key,
        receipts=scenario.receipts + scenario.bulk_receipts[::97],
        max_inclusion_proofs=None,  # every leaf of the tree
    )
    assert summary.tree_size == scenario.newer.size > 1000
    assert summary.older_size == scenario.older.size
    assert summary.leaves_checked == scenario.newer.size
    assert summary.envelopes_checked == scenario.newer.size
    assert summary.inclusion_proofs_checked >= scenario.newer.size
    assert summary.consistency_proofs_checked > 1
    assert summary.key_pinned
    assert summary.warnings == [], summary.warnings


def test_every_receipt_is_at_its_position(scenario: Scenario) -> None:
    client = Client(scenario.server.url, api_key=scenario.supervisor_key)
    leaves = fetch_leaves(client, scenario.newer.size)
    for receipt in scenario.receipts + scenario.bulk_receipts:
        position = receipt["position"]
        assert leaves[position].leaf_hash == base64.b64decode(receipt["leaf_hash"]), receipt
    for receipt in scenario.receipts:
        check_receipt(client, receipt, scenario.newer, leaves)
        if receipt["position"] < scenario.older.size:
            check_receipt(client, receipt, scenario.older, leaves)
    # A receipt naming another position than the one it was written at does not verify.
    moved = {**scenario.receipts[1], "position": scenario.receipts[0]["position"]}
    with pytest.raises(VerificationError):
        check_receipt(client, moved, scenario.newer, leaves)


def test_cli_passes_and_fails(scenario: Scenario, tmp_path: Path) -> None:
    good = tmp_path / "older.checkpoint"
    good.write_bytes(scenario.older.raw)
    base = [sys.executable, str(VERIFIER_SCRIPT), "--url", scenario.server.url]
    pin = ["--trusted-key", scenario.verifier_key]
    ok = subprocess.run(
        [*base, "--trusted-checkpoint", str(good), *pin],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"size={scenario.older.size}, consistent" in ok.stdout

    bad = tmp_path / "tampered.checkpoint"
    bad.write_bytes(_replace_root(scenario.older.raw, _flip_bit(scenario.older.root, 0)))
    failed = subprocess.run(
        [*base, "--trusted-checkpoint", str(bad), *pin],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "VERIFICATION FAILED" in failed.stderr
    assert "does not verify" in failed.stderr


def test_checkpoint_with_one_root_byte_changed_is_rejected(scenario: Scenario) -> None:
    key = parse_verifier_key(scenario.verifier_key)
    for checkpoint in (scenario.older, scenario.newer):
        for byte in (0, 17, 31):
            root = bytearray(checkpoint.root)
            root[byte] ^= 0x40
            tampered = _replace_root(checkpoint.raw, bytes(root))
            assert tampered != checkpoint.raw
            with pytest.raises(VerificationError, match="does not verify"):
                parse_checkpoint(tampered, [key])
    # Through the whole audit, as an "older checkpoint" the auditor was handed.
    tampered_older = _replace_root(scenario.older.raw, _flip_bit(scenario.older.root, 77))
    with pytest.raises(VerificationError, match="does not verify"):
        verify_server(scenario.server.url, tampered_older, trusted_keys=[scenario.verifier_key])
    # The size line is signed too.
    lines = scenario.older.raw.decode().split("\n")
    lines[1] = str(scenario.older.size + 1)
    with pytest.raises(VerificationError, match="does not verify"):
        parse_checkpoint("\n".join(lines).encode(), [key])


def test_proofs_with_a_flipped_bit_are_rejected(scenario: Scenario) -> None:
    client = Client(scenario.server.url)
    newer = scenario.newer
    for index in (0, scenario.older.size - 1, newer.size // 2, newer.size - 1):
        served_leaf, proof = fetch_inclusion_proof(client, index, newer.size)
        verify_inclusion(index, newer.size, served_leaf, proof, newer.root)
        assert proof
        for i in range(len(proof)):
            bad = [*proof[:i], _flip_bit(proof[i], 8 * i + 3), *proof[i + 1 :]]
            with pytest.raises(VerificationError, match="does not match"):
                verify_inclusion(index, newer.size, served_leaf, bad, newer.root)
        with pytest.raises(VerificationError):
            verify_inclusion(index, newer.size, _flip_bit(served_leaf, 5), proof, newer.root)
        with pytest.raises(VerificationError):
            verify_inclusion(index ^ 1, newer.size, served_leaf, proof, newer.root)

    older = scenario.older
    proof = fetch_consistency_proof(client, older.size, newer.size)
    verify_consistency(older.size, newer.size, older.root, newer.root, proof)
    assert proof
    for i in range(len(proof)):
        bad = [*proof[:i], _flip_bit(proof[i], 8 * i + 1), *proof[i + 1 :]]
        with pytest.raises(VerificationError, match="consistency proof"):
            verify_consistency(older.size, newer.size, older.root, newer.root, bad)


def test_forged_older_checkpoint_from_an_untrusted_key_is_rejected(scenario: Scenario) -> None:
    forger = OwnSigner(scenario.older.origin, Ed25519PrivateKey.generate())
    forged = forger.checkpoint(scenario.older.size, _flip_bit(scenario.older.root, 200))
    # Same key name as the log, another key: per signed-note that signature is from an unknown
    # key, so it is ignored and nothing trusted signed the note.
    with pytest.raises(VerificationError, match="not signed by any trusted key"):
        verify_server(scenario.server.url, forged, trusted_keys=[scenario.verifier_key])
    # Without a pinned key (trust on first use of the served key) it is refused all the same.
    with pytest.raises(VerificationError, match="not signed by any trusted key"):
        verify_server(scenario.server.url, forged)


def test_trusted_older_root_that_does_not_match_fails_consistency(scenario: Scenario) -> None:
    url, older = scenario.server.url, scenario.older
    wrong_root = _flip_bit(older.root, 9)
    # A (size, root) copied from a "printed" document, well formed but not this log's.
    with pytest.raises(VerificationError, match="consistency proof"):
        verify_server(
            url,
            trusted_tree_head=TreeHead(older.size, wrong_root),
            trusted_keys=[scenario.verifier_key],
        )
    # The right root at the wrong size is just as inconsistent.
    with pytest.raises(VerificationError, match="consistency proof"):
        verify_server(
            url,
            trusted_tree_head=TreeHead(older.size + 1, older.root),
            trusted_keys=[scenario.verifier_key],
        )
    # A signed note from a second key the auditor trusts (say, a witness), with another root.
    witness = OwnSigner(older.origin, Ed25519PrivateKey.generate())
    with pytest.raises(VerificationError, match="consistency proof"):
        verify_server(
            url,
            witness.checkpoint(older.size, wrong_root),
            trusted_keys=[scenario.verifier_key, witness.vkey],
        )
    # And the genuine older tree head passes, in both forms.
    verify_server(url, trusted_tree_head=TreeHead(older.size, older.root), max_inclusion_proofs=8)
    verify_server(
        url,
        witness.checkpoint(older.size, older.root),
        trusted_keys=[scenario.verifier_key, witness.vkey],
        max_inclusion_proofs=8,
    )
