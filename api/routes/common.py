"""What every write route returns: the stream written, its new version (ETag) and the receipt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
from litestar import Request, Response

from api.auth import current_principal
from api.mechanisms import ReceiptItem, etag, perform, perform_keeping, receipt
from service.principals import Principal
from service.store import AfterAppend
from service.writes import Written

# A cycle's year: bounded so every layer (read-model columns are 32-bit) can hold it.
Year = Annotated[int, msgspec.Meta(ge=2000, le=2100)]


class WriteOut(msgspec.Struct, kw_only=True):
    """What every write answers, first: the stream written, its version after the write, and
    the receipt (each event's ledger position and leaf hash). A write that has more to say (the
    unit as it now is, credentials shown once, a follow-up code) adds fields after these."""

    stream_id: UUID
    version: int
    receipt: list[ReceiptItem]


async def write(request: Request[Any, Any, Any], status: int,
                command: Callable[[Principal, AfterAppend | None], Written],
                ) -> Response[WriteOut]:
    """Run ``command`` for the caller, once per Idempotency-Key; answer with the receipt."""
    services = request.app.state.services
    principal = current_principal(request)
    status, written, replayed = await perform(
        request, services, principal, status, lambda after: command(principal, after))
    headers = {"ETag": etag(written.version)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(WriteOut(stream_id=written.stream_id, version=written.version,
                             receipt=receipt(written.leaves)), status_code=status,
                    headers=headers)


class CaseOpened(WriteOut, kw_only=True):
    """A write that opened a case (a report, a challenge, an objection): the case, and for an
    anonymous reporter the follow-up code, shown once (a retry replays the first one)."""

    case_id: UUID
    follow_up_code: str | None


Opened = TypeVar("Opened", bound=CaseOpened)


async def write_opening_case(request: Request[Any, Any, Any], out: type[Opened],
                             command: Callable[[AfterAppend | None], Written],
                             code: str | None,
                             case_of: Callable[[Written], UUID] = lambda w: w.stream_id,
                             ) -> Response[Opened]:
    """Run ``command`` once per Idempotency-Key, keeping the follow-up ``code`` with the key
    so a replay answers the first request's code; never cached (the code is a secret)."""
    services = request.app.state.services
    status, written, kept, replayed = await perform_keeping(
        request, services, current_principal(request), 201, command,
        None if code is None else code.encode())
    headers = {"Cache-Control": "no-store"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(out(stream_id=written.stream_id, version=written.version,
                        receipt=receipt(written.leaves), case_id=case_of(written),
                        follow_up_code=None if kept is None else kept.decode()),
                    status_code=status, headers=headers)
