"""What every write route returns: the stream written, its new version (ETag) and the receipt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response

from api.auth import current_principal
from api.mechanisms import ReceiptItem, etag, perform, receipt
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
