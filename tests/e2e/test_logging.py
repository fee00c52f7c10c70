"""One structured access-log line per request; no credentials or bodies in the logs."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

UNIT = {"code": "LOG-1", "name": "Secretive", "kind": "department", "category": "vertical"}


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.msg for r in caplog.records
            if r.name == "kaoping.access" and isinstance(r.msg, dict)]


def test_each_request_logs_one_line_with_its_outcome(client: TestClient[Any],
                                                     organizer: dict[str, str],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    resp = client.post("/api/v1/units", json=UNIT, headers={**organizer, "X-Request-Id": "r-42"})
    assert resp.status_code == 201
    client.get("/api/v1/units/not-a-uuid")
    lines = _access_lines(caplog)
    assert len(lines) == 2
    first = lines[0]
    assert {k: first[k] for k in ("method", "path", "status", "request_id", "principal")} == {
        "method": "POST", "path": "/api/v1/units", "status": 201, "request_id": "r-42",
        "principal": "person:staff:org-1"}
    assert isinstance(first["duration_ms"], float)
    assert lines[1]["status"] == 404
    assert lines[1]["principal"] is None
    assert resp.headers["x-request-id"] == "r-42"
    everything = caplog.text + repr([r.msg for r in caplog.records])
    assert organizer["Authorization"][7:] not in everything
    assert "Secretive" not in everything


def test_casting_a_ballot_leaves_no_access_line(client: TestClient[Any],
                                                caplog: pytest.LogCaptureFixture) -> None:
    """Its time, in the log's order, would name the ballot's public position."""
    caplog.set_level("INFO")
    cast = client.post("/api/v1/sessions/mzcp-x/ballots",
                       json={"credential": "Q7RM-2KXD", "answers": {}})
    assert cast.status_code in (400, 404, 409, 422)
    assert client.get("/api/v1/sessions/mzcp-x").status_code == 404
    lines = _access_lines(caplog)
    assert [line["path"] for line in lines] == ["/api/v1/sessions/mzcp-x"]
    assert "Q7RM-2KXD" not in caplog.text
