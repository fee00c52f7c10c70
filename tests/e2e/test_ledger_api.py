"""The public ledger over HTTP and the ledger commands of the CLI."""

from __future__ import annotations

import base64
from typing import Any

from litestar.testing import TestClient

from domain.units import UnitKind, register_unit
from service.ledger import merkle
from service.ledger.checkpoint import open_checkpoint
from service.ledger.envelope import Envelope, leaf_hash
from service.principals import IdentityKind, Role
from service.runtime import Services
from service.settings import Settings
from tests.conftest import bearer
from tests.e2e.test_cli import _kaoping

Client = TestClient[Any]


def _fill(services: Services, n: int) -> None:
    units = [register_unit(f"B{i:05d}", "n", UnitKind.DEPARTMENT, "vertical", "t")
             for i in range(n)]
    services.store.save(*units)
    services.signer.sign(services.db, services.clock.now())


def test_key_and_checkpoint_are_plain_text_and_verify(client: Client,
                                                      services: Services) -> None:
    _fill(services, 5)
    key = client.get("/api/v1/ledger/key")
    assert key.headers["content-type"].startswith("text/plain")
    vkey = key.text.strip()
    note = client.get("/api/v1/ledger/checkpoint")
    assert note.headers["content-type"].startswith("text/plain")
    cp = open_checkpoint(note.content, [vkey], origin=services.settings.ledger_origin)
    assert cp.size == 5
    assert client.get("/api/v1/ledger/checkpoint?size=5").content == note.content
    missing = client.get("/api/v1/ledger/checkpoint?size=4")
    assert missing.status_code == 404
    assert missing.json()["rule"] == "ledger.checkpoint-exists"


def test_receipts_proofs_and_explain_give_a_leaf_hash_in_both_encodings(
        client: Client, services: Services) -> None:
    organizer = bearer(services, Role.ORGANIZER)
    written = client.post("/api/v1/units", json={
        "code": "HX-1", "name": "环城街道", "kind": "township", "category": "platform-1"},
        headers=organizer)
    assert written.status_code == 201, written.text
    item = written.json()["receipt"][0]
    raw = base64.b64decode(item["leaf_hash"])
    assert raw.hex() == item["leaf_hash_hex"] and len(raw) == 32
    services.signer.sign(services.db, services.clock.now())
    size = open_checkpoint(client.get("/api/v1/ledger/checkpoint").content,
                           [services.signer.vkey]).size
    proof = client.get(f"/api/v1/ledger/proofs/inclusion?index={item['position']}&size={size}")
    assert (proof.json()["leaf_hash"], proof.json()["leaf_hash_hex"]) == (
        item["leaf_hash"], item["leaf_hash_hex"])
    leaf = client.get(f"/api/v1/ledger/leaves?start={item['position']}"
                      f"&end={item['position'] + 1}").json()[0]
    assert (leaf["leaf_hash"], leaf["leaf_hash_hex"]) == (item["leaf_hash"],
                                                           item["leaf_hash_hex"])


def test_leaves_are_paged_and_envelopes_are_for_supervisors(client: Client,
                                                            services: Services) -> None:
    _fill(services, 1003)
    url: str | None = "/api/v1/ledger/leaves?start=0&end=1003"
    leaves: list[dict[str, Any]] = []
    while url:
        resp = client.get(url)
        assert resp.status_code == 200
        leaves += resp.json()
        link = resp.headers.get("link")
        url = link[1:link.index(">")] if link else None
    assert [item["index"] for item in leaves] == list(range(1003))
    assert all(set(item) == {"index", "leaf_hash", "leaf_hash_hex"} for item in leaves)
    # One hash, two encodings: base64 (as C2SP notes write hashes) and hex (as sha256sum does).
    assert all(base64.b64decode(i["leaf_hash"]).hex() == i["leaf_hash_hex"] for i in leaves)
    cp = open_checkpoint(client.get("/api/v1/ledger/checkpoint").content,
                         [services.signer.vkey])
    assert merkle.root_of([base64.b64decode(i["leaf_hash"]) for i in leaves]) == cp.root

    supervisor = bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup-1")
    items = client.get("/api/v1/ledger/leaves?start=10&end=12", headers=supervisor).json()
    for item in items:
        raw = base64.b64decode(item["envelope"])
        assert leaf_hash(raw) == base64.b64decode(item["leaf_hash"])
        envelope = Envelope.decode(raw)
        assert (envelope.position, envelope.stream_version) == (item["index"], 1)
        assert envelope.topic == "kaoping/Unit.Registered.v1"
    organizer = bearer(services, Role.ORGANIZER)
    assert "envelope" not in client.get("/api/v1/ledger/leaves?start=10&end=12",
                                        headers=organizer).json()[0]


def test_bad_arguments_are_problems_not_errors(client: Client, services: Services) -> None:
    _fill(services, 4)
    cases = {
        "/api/v1/ledger/proofs/inclusion?index=4&size=4": (400, "ledger.index-in-tree"),
        "/api/v1/ledger/proofs/inclusion?index=0&size=5": (404, "ledger.size-covered"),
        "/api/v1/ledger/proofs/inclusion?index=-1&size=4": (400, None),
        "/api/v1/ledger/proofs/inclusion?index=a&size=4": (400, "type"),
        "/api/v1/ledger/proofs/consistency?from=3&to=2": (400, "ledger.consistency-sizes"),
        "/api/v1/ledger/proofs/consistency?from=0&to=2": (400, None),
        "/api/v1/ledger/proofs/consistency?from=2&to=9": (404, "ledger.size-covered"),
        "/api/v1/ledger/leaves?start=5&end=5": (400, "ledger.range"),
        "/api/v1/ledger/leaves?start=0": (400, "required"),
    }
    for url, (status, rule) in cases.items():
        resp = client.get(url)
        assert resp.status_code == status, (url, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
        if rule:
            assert resp.json()["rule"] == rule, url


def test_cli_ledger_commands(settings: Settings, services: Services) -> None:
    _fill(services, 3)
    public = _kaoping(settings, "keys", "ledger-public",
                      extra={"KAOPING_SIGNING_KEY_PATH": settings.signing_key_path})
    assert public.stdout.strip() == services.signer.vkey
    signed = _kaoping(settings, "ledger", "checkpoint",
                      extra={"KAOPING_SIGNING_KEY_PATH": settings.signing_key_path})
    assert signed.returncode == 0, signed.stderr
    assert open_checkpoint(signed.stdout.encode(), [services.signer.vkey]).size == 3
    ok = _kaoping(settings, "verify-log",
                  extra={"KAOPING_SIGNING_KEY_PATH": settings.signing_key_path})
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: 3 events, 1 checkpoints verified")
    other = _kaoping(settings, "verify-log", "--key",
                     "other+00000000+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                     extra={"KAOPING_SIGNING_KEY_PATH": settings.signing_key_path})
    assert other.returncode == 1
    assert "checkpoint at size 3" in other.stderr


def test_an_absurd_size_is_a_clear_400_not_a_storage_overflow(client: Client) -> None:
    resp = client.get("/api/v1/ledger/checkpoint?size=1052272391840375373824")
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "size" in resp.text


def test_the_checkpoints_are_listed_newest_first_and_each_opens(client: Client,
                                                                services: Services) -> None:
    vkey = services.signer.vkey
    sizes = []
    for batch, n in enumerate((2, 3, 1)):
        services.store.save(*[register_unit(f"CP{batch}-{i}", "n", UnitKind.DEPARTMENT,
                                            "vertical", "t") for i in range(n)])
        sizes.append(services.signer.sign(services.db, services.clock.now()).size)
    first = client.get("/api/v1/ledger/checkpoints?limit=2")
    assert first.status_code == 200
    page = first.json()
    assert [c["size"] for c in page["items"]] == sorted(sizes, reverse=True)[:2]
    assert page["next_cursor"]
    assert 'rel="next"' in first.headers["link"]
    rest = client.get(f"/api/v1/ledger/checkpoints?limit=2&cursor={page['next_cursor']}").json()
    assert [c["size"] for c in rest["items"]] == sorted(sizes, reverse=True)[2:]
    for item in page["items"] + rest["items"]:
        note = client.get(item["note"])
        assert note.status_code == 200
        assert open_checkpoint(note.content, [vkey]).size == item["size"]
        assert item["key_id"]
    assert rest["next_cursor"] is None
    bad = client.get("/api/v1/ledger/checkpoints?cursor=not-ours")
    assert bad.status_code == 400
    assert bad.json()["field"] == "cursor"
