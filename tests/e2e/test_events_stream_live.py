"""``GET /api/v1/events/stream`` on a real server (uvicorn, a real TCP connection): without
``after`` or ``Last-Event-ID`` the stream starts at the head — events written before connecting
are not sent, the first event received is one written after; ``after=-1`` starts at position 0
and ``Last-Event-ID`` resumes after the given position. (tests/e2e/test_events.py covers the
explicit starts in-process; the test client cannot close an idle stream, so the head start is
tested here.)"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.client import HTTPConnection, HTTPResponse
from pathlib import Path
from typing import Any

from tests.e2e.live_server import Server, kaoping, serve
from tests.e2e.live_server import http as call


def _api_key(server: Server) -> str:
    out = kaoping(server.env, server.workdir, "keys", "create", "--role", "organizer",
                  "--name", "stream-test")
    return out.strip().splitlines()[-1].strip()


def _register(server: Server, key: str, code: str) -> int:
    """A unit registered over HTTP; its event's log position."""
    body = {"code": code, "name": f"单位{code}", "kind": "department",
            "category": "economic-management"}
    status, answer = call("POST", f"{server.url}/api/v1/units", body,
                          {"X-API-Key": key, "Idempotency-Key": str(uuid.uuid4())})
    assert status == 201, f"{status} {answer}\n{server.log_tail()}"
    position: int = answer["receipt"][0]["position"]
    return position


class Stream:
    def __init__(self, resp: HTTPResponse) -> None:
        self.resp = resp

    def start(self) -> int:
        """The first line, ``: after <position>``: where the stream starts."""
        line = self.resp.readline().decode().strip()
        assert line.startswith(": after "), line
        return int(line.removeprefix(": after "))

    def next_event(self) -> dict[str, Any]:
        fields: dict[str, str] = {}
        while True:
            line = self.resp.readline().decode()
            assert line, "the stream ended"
            line = line.rstrip("\r\n")
            if not line:
                if "data" in fields:
                    return {"id": int(fields["id"]), "event": fields["event"],
                            "data": json.loads(fields["data"])}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


@contextmanager
def stream(server: Server, key: str, query: str = "",
           headers: dict[str, str] | None = None) -> Iterator[Stream]:
    conn = HTTPConnection(server.netloc, timeout=15)
    try:
        conn.request("GET", f"/api/v1/events/stream{query}",
                     headers={"X-API-Key": key, "Accept": "text/event-stream", **(headers or {})})
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        yield Stream(resp)
    finally:
        conn.close()


def test_the_stream_starts_at_the_head_unless_told_otherwise(tmp_path: Path) -> None:
    with serve(tmp_path) as srv:
        key = _api_key(srv)
        before = [_register(srv, key, f"B{i}") for i in range(3)]

        with stream(srv, key) as live:  # no after, no Last-Event-ID: from the head
            head = live.start()
            assert head == max(before)
            written = _register(srv, key, "A1")  # written after connecting
            first = live.next_event()
            assert first["id"] == written > max(before)
            assert first["data"]["position"] == written
            assert first["event"] == "kaoping.unit.registered.v1"
            assert first["data"]["subject"] == "unit:A1"

        with stream(srv, key, "?after=-1") as history:  # from the beginning
            assert history.start() == -1
            assert history.next_event()["id"] == 0

        with stream(srv, key, headers={"Last-Event-ID": str(before[0])}) as resumed:
            assert resumed.start() == before[0]
            assert resumed.next_event()["id"] == before[0] + 1
