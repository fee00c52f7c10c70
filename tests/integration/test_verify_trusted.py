"""``kaoping verify BUNDLE --trusted CHECKPOINT``: any earlier (or the same) checkpoint the
investigator holds works; a forged one fails with NOT VERIFIED and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient

from api import create_app
from service.demo import DemoCity
from service.evidence import build_bundle, encode_bundle
from service.keys import load_or_create_ed25519
from service.ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from service.runtime import Services
from service.settings import Settings
from service.verify import main

SUBJECT = "team:T02"


@pytest.fixture
def city(services: Services) -> Services:
    DemoCity(services, units=16, cadres=16, seed=5).run()
    return services


def _write(tmp: Path, name: str, data: bytes) -> str:
    path = tmp / name
    path.write_bytes(data)
    return str(path)


def _verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _grow_and_sign(services: Services, client: TestClient, headers: dict[str, str]) -> bytes:  # type: ignore[type-arg]
    """Sign the head, then write one more event: a checkpoint older than the next bundle's."""
    note = services.signer.sign(services.db, services.clock.now()).note
    done = client.post("/api/v1/units", headers=headers,
                       json={"code": "ZZ-99", "name": "A late unit", "kind": "department",
                             "category": "party-government"})
    assert done.status_code == 201, done.text
    return note


def test_trusted_checkpoints_equal_smaller_and_forged(
        city: Services, settings: Settings, tmp_path: Path, organizer: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    vkey = city.signer.vkey
    with TestClient(app=create_app(settings, services=city)) as client:
        earlier = _grow_and_sign(city, client, organizer)
        bundle = build_bundle(city, 2025, SUBJECT, None)
        path = _write(tmp_path, "bundle.json", encode_bundle(bundle))
        size = open_checkpoint(bundle.checkpoint.encode(), [vkey]).size
        old = open_checkpoint(earlier, [vkey])
        assert old.size < size
        assert bundle.consistency is not None
        assert bundle.consistency.from_size != old.size  # carried from the announcement

        # Equal sizes: the bundle's own checkpoint, held from before (a false alarm on main).
        same = _write(tmp_path, "same.txt", bundle.checkpoint.encode())
        code, out, err = _verify(capsys, path, "--key", vkey, "--trusted", same)
        assert (code, err) == (0, "")
        assert f"trusted checkpoint: size {size}, the same tree as the bundle's" in out

        # Smaller, and the bundle carries no proof from it: told exactly how to get one …
        held = _write(tmp_path, "held.txt", earlier)
        code, out, err = _verify(capsys, path, "--key", vkey, "--trusted", held)
        assert code == 1
        assert err.startswith("NOT VERIFIED: the bundle has no consistency proof from the "
                              f"trusted size {old.size}")
        url = f"/api/v1/ledger/proofs/consistency?from={old.size}&to={size}"
        assert url.removeprefix("/api/v1/ledger/proofs") in err
        # … and with the proof the log serves, it verifies.
        served = client.get(url)
        assert served.status_code == 200
        proof = _write(tmp_path, "proof.json", served.content)
        code, out, err = _verify(capsys, path, "--key", vkey, "--trusted", held,
                                 "--consistency", proof)
        assert (code, err) == (0, "")
        assert (f"trusted checkpoint: size {old.size} (root {old.root.hex()[:16]}…); the "
                f"bundle's log of size {size} extends it (RFC 9162 consistency proof from "
                "the --consistency file)") in out

        # Smaller, carried in the bundle (the announcement's).
        announced = city.evaluation.cycle(2025).announcement
        assert announced is not None
        note = str(announced["checkpoint"]).encode()
        code, out, _ = _verify(capsys, path, "--key", vkey, "--trusted",
                               _write(tmp_path, "announced.txt", note))
        assert code == 0
        assert "consistency proof carried in the bundle" in out

    # Forged with the right key (a rewritten log re-signed): same size, another root …
    key = load_or_create_ed25519(settings.signing_key_path)
    origin = bundle.origin
    bogus = bytes(32 - len(b"x")) + b"x"
    forged_same = sign_checkpoint(Checkpoint(origin, size, bogus), origin, key)
    code, _, err = _verify(capsys, path, "--key", vkey, "--trusted",
                           _write(tmp_path, "forged-same.txt", forged_same))
    assert code == 1
    assert err.startswith(f"NOT VERIFIED: the bundle's checkpoint and the trusted one are both "
                          f"of size {size} but have different roots")
    # … or an earlier size whose root the bundle's log does not extend.
    forged_old = sign_checkpoint(Checkpoint(origin, old.size, bogus), origin, key)
    code, _, err = _verify(capsys, path, "--key", vkey, "--trusted",
                           _write(tmp_path, "forged-old.txt", forged_old),
                           "--consistency", proof)
    assert code == 1
    assert err.startswith(f"NOT VERIFIED: the log at size {size} is not an extension of the "
                          f"trusted checkpoint at size {old.size}")
