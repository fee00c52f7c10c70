"""Evidence bundles across a ledger key rotation, verified offline as an investigator would."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from domain.units import UnitKind, register_unit
from service.ledger.checkpoint import Checkpoint, sign_checkpoint, verifier_key
from service.ledger.rotation import rotate_ledger_key
from service.runtime import Services
from service.settings import Settings
from service.verify import VerifyError, main, verify_bundle
from tests.e2e.test_cli import _kaoping
from tests.integration.test_evidence import _announcement_checkpoint, _bundle, city

__all__ = ["city"]  # the fixture, shared


def _ok(bundle: dict[str, Any], keys: list[str], trusted: bytes | None = None) -> list[str]:
    return verify_bundle(json.dumps(bundle).encode(), keys, trusted)


def _fails(bundle: dict[str, Any], keys: list[str], trusted: bytes | None = None) -> str:
    with pytest.raises(VerifyError) as err:
        _ok(bundle, keys, trusted)
    return str(err.value)


@pytest.fixture
def rotated(city: Services) -> tuple[Services, dict[str, Any], str, str]:
    """A bundle made before the rotation, then the rotation and more of the log after it."""
    before = _bundle(city)
    old = city.signer.vkey
    handover = rotate_ledger_key(city.signer, city.store, city.db, city.clock.now(),
                                 reason="annual rotation", authority="minutes 2026-07",
                                 actor="operator:test")
    city.store.save(register_unit("AFTER1", "n", UnitKind.DEPARTMENT, "vertical", "t"))
    city.signer.sign(city.db, city.clock.now())
    return city, before, old, handover.successor


def test_a_bundle_made_before_the_rotation_verifies_with_the_retired_key(
        rotated: tuple[Services, dict[str, Any], str, str]) -> None:
    city, before, old, new = rotated
    assert before["handovers"] == []
    assert _ok(before, [old], _announcement_checkpoint(city))[0].startswith("checkpoint: ")
    assert "no signature from a trusted key" in _fails(before, [new])


def test_a_bundle_after_the_rotation_links_the_keys_through_the_handover(
        rotated: tuple[Services, dict[str, Any], str, str]) -> None:
    city, _, old, new = rotated
    after = _bundle(city)
    [handover] = after["handovers"]
    assert handover["checkpoint"].count("\u2014 ") == 2
    announced = _announcement_checkpoint(city)  # printed before the rotation: the old key's
    # The successor's key and a checkpoint the investigator holds, signed by the retired key.
    assert _ok(after, [new], announced)[-1].startswith("team:T02: composite ")
    # Only the retired key: it vouched, in a tree it signed, for its successor.
    assert _ok(after, [old], announced)
    stranger = verifier_key(city.settings.ledger_origin, Ed25519PrivateKey.generate()
                            .public_key())
    assert "no signature from a trusted key" in _fails(after, [stranger])

    without = {**after, "handovers": []}
    assert "trusted checkpoint: note has no signature" in _fails(without, [new], announced)
    assert "no signature from a trusted key" in _fails(without, [old])


def test_drills_on_the_handover(rotated: tuple[Services, dict[str, Any], str, str]) -> None:
    city, _, old, _ = rotated
    after = _bundle(city)
    origin = city.settings.ledger_origin
    # The rotation event rewritten to name another successor: its leaf is no longer in the tree.
    forged = json.loads(json.dumps(after))
    event = forged["handovers"][0]["event"]
    doc = json.loads(base64.b64decode(event["payload"]))
    doc["successor_key"] = verifier_key(origin, Ed25519PrivateKey.generate().public_key())
    event["payload"] = base64.b64encode(json.dumps(doc, sort_keys=True).encode()).decode()
    message = _fails(forged, [old])
    assert f"key handover at position {event['position']}" in message
    # The successor's signature line removed: the handover is not co-signed.
    single = json.loads(json.dumps(after))
    note = single["handovers"][0]["checkpoint"]
    single["handovers"][0]["checkpoint"] = note[:note.rindex("\u2014 ")]
    assert "no signature from a trusted key" in _fails(single, [old])
    # A handover from another tree than the bundle's log.
    detached = json.loads(json.dumps(after))
    detached["handovers"][0]["consistency"] = detached["handovers"][0]["consistency"][1:]
    assert "is not in the log" in _fails(detached, [old])


def _resigned(note: str, key: Ed25519PrivateKey, origin: str) -> str:
    """The checkpoint of ``note`` signed by ``key`` alone."""
    cp = Checkpoint.parse_body(note.split("\n\n", maxsplit=1)[0].encode() + b"\n")
    return sign_checkpoint(cp, origin, key).decode()


def _leaked_rotation(city: Services) -> tuple[Ed25519PrivateKey, str, str, int]:
    """A rotation away from a key a copy of which is kept (leaked); more log after it."""
    leaked = load_pem_private_key(Path(city.signer.key_path).read_bytes(), None)
    assert isinstance(leaked, Ed25519PrivateKey)
    old = city.signer.vkey
    handover = rotate_ledger_key(city.signer, city.store, city.db, city.clock.now(),
                                 reason="key leaked", authority="minutes 2026-07",
                                 actor="operator:test")
    city.store.save(register_unit("AFTER1", "n", UnitKind.DEPARTMENT, "vertical", "t"))
    city.signer.sign(city.db, city.clock.now())
    return leaked, old, handover.successor, handover.checkpoint.size


def test_a_retired_key_alone_signs_no_checkpoint_past_its_handover(city: Services) -> None:
    origin = city.settings.ledger_origin
    leaked, old, new, at = _leaked_rotation(city)
    honest = _bundle(city)
    forged = {**honest, "checkpoint": _resigned(honest["checkpoint"], leaked, origin)}
    assert forged["checkpoint"].count("\u2014 ") == 1  # the retired key's line only
    for keys in ([new], [old], [old, new]):
        message = _fails(forged, keys)
        assert message.startswith("checkpoint: "), message
        assert f"handover at size {at}" in message
    assert _ok(honest, [new])[-1].startswith("team:T02: composite ")
    # A --trusted checkpoint past the handover signed by the retired key alone is refused too.
    trusted = _resigned(honest["checkpoint"], leaked, origin).encode()
    message = _fails(honest, [new], trusted)
    assert message.startswith("trusted checkpoint: "), message
    # At or below the handover the retired key still vouches for its trees.
    assert _ok(honest, [new], _announcement_checkpoint(city))


def test_a_retired_key_cannot_hand_over_a_second_time(city: Services) -> None:
    origin = city.settings.ledger_origin
    leaked, _, new, at = _leaked_rotation(city)
    after = _bundle(city)
    [handover] = after["handovers"]
    cp = Checkpoint.parse_body(after["checkpoint"].split("\n\n")[0].encode() + b"\n")
    size = cp.size
    assert size > at
    # The same rotation "handed over" again in a later tree, co-signed by the leaked key (and,
    # for the drill, the successor): the retired key vouches for nothing past its handover.
    successor = load_pem_private_key(Path(city.signer.key_path).read_bytes(), None)
    assert isinstance(successor, Ed25519PrivateKey)
    note = sign_checkpoint(cp, origin, leaked, successor).decode()
    _, proof = city.ledger.inclusion(handover["event"]["position"], size)
    again = {**handover, "checkpoint": note, "consistency": [],
             "event": {**handover["event"], "proof": [h.hex() for h in proof]}}
    message = _fails({**after, "handovers": [handover, again]}, [new])
    assert f"was already handed over at size {at}" in message
    assert _ok(after, [new])


def test_the_cli_rotates_and_the_offline_verifier_follows(
        city: Services, settings: Settings, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    old = city.signer.vkey
    extra = {"KAOPING_SIGNING_KEY_PATH": settings.signing_key_path}
    refused = _kaoping(settings, "keys", "rotate-ledger-key", "--reason", "", "--authority",
                       "x", extra=extra)
    assert refused.returncode == 1
    assert "ledger-key.reason" in refused.stderr
    out = _kaoping(settings, "keys", "rotate-ledger-key", "--reason", "annual",
                   "--authority", "minutes 2026-07", extra=extra)
    assert out.returncode == 0, out.stderr
    new = out.stdout.strip()
    assert new != old and new == city.signer.vkey
    listed = [json.loads(line) for line in
              _kaoping(settings, "keys", "ledger-keys", extra=extra).stdout.splitlines()]
    assert [(k["vkey"], k["status"]) for k in listed] == [(new, "current"), (old, "retired")]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(_bundle(city)))
    trusted = tmp_path / "announced.txt"
    trusted.write_bytes(_announcement_checkpoint(city))
    assert main([str(path), "--key", new, "--trusted", str(trusted)]) == 0
    assert main([str(path), "--key", old]) == 0
    capsys.readouterr()
