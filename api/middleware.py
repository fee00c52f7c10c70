"""Request ids and the one access-log line per request (method, path, status, duration,
request id, principal). No client address, headers or bodies are logged: ballot casting must
leave no trace that links a ballot to a person, and bodies can hold credentials.

It wraps the whole ASGI app (not Litestar's per-route middleware), so that requests matching no
route (404, 405) get a request id and a log line too.
"""

from __future__ import annotations

import os
import random
import re
import time
from typing import TYPE_CHECKING, Any

import structlog
from litestar.enums import ScopeType

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("kaoping.access")
_RID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Casting a ballot leaves no access-log line: a line's exact time, in the order of the log,
# would match the k-th ballot to its public position (the ledger is public and in order), and
# a ballot's time is kept only rounded to the session's granularity (docs/ballots.md).
_UNLOGGED = re.compile(r"^/api/v1/sessions/[^/]+/ballots/?$")
# Request ids are correlation labels, not secrets: drawn from a per-process generator seeded
# from the OS (re-seeded in a forked worker), not ``uuid4`` — whose ``os.urandom`` call per
# request released the GIL and showed as ~7 % of a ballot's samples under py-spy (issue 15).
_IDS = random.Random(os.urandom(16))  # noqa: S311 -- not used for anything secret
os.register_at_fork(after_in_child=lambda: _IDS.seed(os.urandom(16)))


def new_request_id() -> str:
    return f"{_IDS.getrandbits(128):032x}"


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _RID.match(given) else new_request_id()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if not _UNLOGGED.match(scope.get("path", "")):
                log.info("request", method=scope.get("method"), path=scope.get("path"),
                         status=status,
                         duration_ms=round((time.perf_counter() - started) * 1000, 2),
                         principal=state.get("principal_id"))
