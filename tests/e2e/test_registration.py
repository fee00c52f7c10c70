"""Issue 13: a cadre's 考核登记表 as a PDF for the 干部档案 — parses, says who, which year, the
grade, and the results version, fingerprint and ledger leaf it rests on; for the cadre and the
evaluators only; the same bytes for the same published results."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC
from typing import Any

from litestar.testing import TestClient
from pypdf import PdfReader

from domain.cycle import Cycle
from service.runtime import Services
from tests.conftest import bearer
from tests.e2e.test_cycle_scenario import (
    BASE,
    People,
    Y,
    approve,
    ok,
    refused,
    score_everything,
    setup_cycle,
)

Client = TestClient[Any]
PDF = f"{BASE}/cadres/P1/registration.pdf"


def _text(body: bytes) -> str:
    reader = PdfReader(io.BytesIO(body))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text()


def test_the_registration_form_of_a_published_cadre(client: Client, services: Services) -> None:
    from service.principals import IdentityKind, Role  # noqa: PLC0415

    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)
    # 本人总结: the cadre's 自我评价 as submitted; the form names it by its SHA-256.
    summary = "2025年度个人自我评价：履职尽责".encode()
    ok(client.post(f"{BASE}/subjects/cadre:P1/documents/self-evaluation/自我评价.txt",
                   content=summary, headers={**who.org, "Content-Type": "text/plain"}))
    ok(client.post(f"{BASE}/seal", json={}, headers=who.org))
    # Before publication there is no grade to record: refused, naming the rule.
    refused(client.get(PDF, headers=who.org), 409, "registration.published")
    approve(client, who)
    ok(client.post(f"{BASE}/publication", json={
        "notified_on": services.clock.now().date().isoformat()}, headers=who.org))
    services.follower.catch_up()
    services.signer.sign(services.db, services.clock.now())  # a checkpoint covers the leaf

    own = client.get(PDF, headers=who.p1)
    assert own.status_code == 200, own.text
    assert own.headers["content-type"] == "application/pdf"
    assert own.content.startswith(b"%PDF-")
    text = _text(own.content)
    card = ok(client.get(f"{BASE}/subjects/cadre:P1/result", headers=who.p1), 200)
    published = services.evaluation.published(Y)
    assert published is not None
    assert card["final_grade"] and card["final_grade"] in text
    for fact in ("张一", "发改局", f"{Y}年度干部考核登记表", "党政正职",
                 published.fingerprint[:30], f"第{published.version}版"):
        assert fact in text.replace("\n", ""), (fact, text)
    leaf = services.ledger.leaves(published.position, published.position + 1,
                                  envelopes=False)[0]
    assert f"位置 {published.position}" in text
    flat = text.replace("\n", "")
    assert "自我评价《自我评价.txt》" in flat
    assert hashlib.sha256(summary).hexdigest()[:30] in flat
    assert leaf.leaf_hash.hex()[:30] in text.replace("\n", "")

    # The same published results give the same bytes, to every reader allowed; the document's
    # dates are the publication's time.
    assert client.get(PDF, headers=who.org).content == own.content
    assert client.get(PDF, headers=who.committee).content == own.content
    info = PdfReader(io.BytesIO(own.content)).metadata
    assert info is not None and info.creation_date is not None
    event = next(e for e in services.store.events.get(Cycle.id_for(Y))
                 if isinstance(e, Cycle.Published))
    assert info.creation_date.replace(tzinfo=UTC) == event.timestamp.astimezone(UTC).replace(
        microsecond=0)

    # Not for another cadre, a leader, a department or the public.
    assert refused(client.get(PDF, headers=who.p3), 403, "card.readers")["rule"]
    refused(client.get(PDF, headers=who.l1), 403, "card.readers")
    refused(client.get(PDF, headers=who.f1), 403, "card.readers")
    assert client.get(PDF).status_code == 401
    intake = bearer(services, Role.INTAKE, IdentityKind.STAFF, "xf-1")
    refused(client.get(PDF, headers=intake), 403, "card.readers")
    refused(client.get(f"{BASE}/cadres/NOPE/registration.pdf", headers=who.org), 404,
            "registration.cadre")
