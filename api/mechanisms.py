"""The API mechanisms every endpoint uses, built once: strict bodies, Idempotency-Key, ETag and
If-Match, opaque cursors with ``Link: rel="next"``, receipts, and read-your-writes."""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import anyio
import msgspec
from anyio import to_thread
from litestar.exceptions import HTTPException

from api.problems import BodyValidationError, FieldError
from api.strict import StrictDecoder
from domain.errors import BadArgument, InvalidInput
from projections.follower import head_position, tracked_position
from service.idempotency import Completed, check_key, fingerprint
from service.ledger.reads import read_leaves
from service.writes import Written

if TYPE_CHECKING:
    from litestar import Request

    from service.principals import Principal
    from service.runtime import Services
    from service.store import AfterAppend, Leaf

T = TypeVar("T")
JSON_TYPES = ("application/json",)


# --- strict bodies ---------------------------------------------------------------------------

def strict_body(struct: type[Any]) -> Callable[[Request[Any, Any, Any]], Awaitable[None]]:
    """A before_request hook: decode the body strictly (no "1" -> 1, no duplicate keys, only
    text, only plain decimals: ``api.strict``), so the lax conversion Litestar then does for
    ``data: JSONBody[T]`` can only see values that are already right."""
    decoder = StrictDecoder(struct)

    async def check(request: Request[Any, Any, Any]) -> None:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in JSON_TYPES:
            detail = f"send the body as application/json, not {media or 'nothing'}"
            raise HTTPException(status_code=415, detail=detail)
        error = decoder.check(await request.body())
        if error is not None:
            raise BodyValidationError(error)

    return check


# --- receipts --------------------------------------------------------------------------------

class ReceiptItem(msgspec.Struct, frozen=True):
    """One stored event: its public log position (ledger leaf index) and leaf hash."""

    position: int
    leaf_hash: str  # base64 of the 32-byte RFC 9162 leaf hash
    stream_id: str
    stream_version: int
    topic: str
    leaf_hash_hex: str  # the same bytes in hex, as explain and the evidence bundle write them


def receipt(leaves: list[Leaf]) -> list[ReceiptItem]:
    return [ReceiptItem(lf.position, base64.b64encode(lf.leaf_hash).decode(),
                        str(lf.stream_id), lf.stream_version, lf.topic, lf.leaf_hash.hex())
            for lf in leaves]


# --- ETag / If-Match ------------------------------------------------------------------------

def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(request: Request[Any, Any, Any]) -> int:
    """The version named by If-Match (required on updates: 428 without it, 412 when stale)."""
    header = request.headers.get("if-match")
    if not header:
        msg = "send If-Match with the resource's ETag; updates must name the version they change"
        raise InvalidInput(msg, rule="if-match.required", field="If-Match")
    tags = [t.strip() for t in header.split(",")]
    for tag in tags:
        if tag.startswith('"') and tag.endswith('"') and tag[1:-1].isdigit():
            return int(tag[1:-1])
    msg = f"If-Match {header!r} names no version (expected an ETag such as \"3\")"
    raise BodyValidationError(FieldError(field="If-Match", rule="if-match.format", message=msg))


# --- cursors ---------------------------------------------------------------------------------

class _Cursor(msgspec.Struct, frozen=True):
    after: str
    query: str


def encode_cursor(after: str, query: dict[str, Any]) -> str:
    raw = msgspec.json.encode(_Cursor(after, urlencode(sorted(query.items()))))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, query: dict[str, Any]) -> str | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parsed = msgspec.json.decode(raw, type=_Cursor)
    except (ValueError, msgspec.DecodeError):
        raise BodyValidationError(FieldError(field="cursor", rule="cursor",
                                             message="the cursor is not one this API issued")
                                  ) from None
    if parsed.query != urlencode(sorted(query.items())):
        raise BodyValidationError(FieldError(
            field="cursor", rule="cursor", message="the cursor belongs to a different query"))
    return parsed.after


def next_link(request: Request[Any, Any, Any], cursor: str, limit: int,
              query: dict[str, Any]) -> str:
    params = {**{k: v for k, v in query.items() if v is not None}, "cursor": cursor,
              "limit": limit}
    return f'<{request.url.path}?{urlencode(params)}>; rel="next"'


def next_page(request: Request[Any, Any, Any], fetched: int, limit: int, last_key: str,
              query: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
    """Given ``limit + 1`` rows fetched, the next cursor and its Link header (or none)."""
    if fetched <= limit:
        return None, {}
    cursor = encode_cursor(last_key, query)
    return cursor, {"Link": next_link(request, cursor, limit, query)}


# --- read-your-writes ------------------------------------------------------------------------

async def wait_for_projection(services: Services, name: str, position: int | None,
                              *, timeout: float = 5.0) -> None:
    """Wait until projection ``name`` has applied ``position`` (a write's receipt position)."""
    if position is None:
        return
    deadline = time.monotonic() + timeout

    def current() -> tuple[int, int]:
        with services.db.read() as cur:
            return tracked_position(cur, name), head_position(cur)

    replica = services.settings.read_only
    tracked, head = await to_thread.run_sync(current)
    if position > head and not replica:  # not a position of this log: waiting would not help
        msg = f"min_position {position} is beyond the log's head ({head})"
        raise BadArgument(msg, rule="min-position.beyond-head", field="min_position")
    while tracked < position:
        if time.monotonic() > deadline:
            if replica:  # the primary wrote it; this standby has not replayed it yet
                raise HTTPException(status_code=503, headers={"Retry-After": "1"}, detail=(
                    f"this replica has replayed the log to position {tracked}, not yet to "
                    f"{position}; retry shortly, or read from the primary"),
                    extra={"rule": "replica.behind", "field": "min_position"})
            raise HTTPException(status_code=503, headers={"Retry-After": "1"},
                                detail=f"the {name} read model has not reached position "
                                       f"{position} yet; retry shortly")
        services.written()
        await anyio.sleep(0.01)
        tracked, _ = await to_thread.run_sync(current)


# --- writes with Idempotency-Key -------------------------------------------------------------

# The largest integer both stores hold (SQLite INTEGER, PostgreSQL bigint): the upper bound of
# every integer query parameter, so an absurd value is a 400, never a storage overflow.
INT64 = 2**63 - 1


def idempotency_key(request: Request[Any, Any, Any]) -> str | None:
    """The request's Idempotency-Key, checked; None when it sent none."""
    header = request.headers.get("idempotency-key")
    return None if header is None else check_key(header)


async def is_replay(request: Request[Any, Any, Any], services: Services,
                    principal: Principal) -> bool:
    """Whether this request's Idempotency-Key is done: work before the command (waiting for a
    read model) can be skipped, the answer will be the first one."""
    key = idempotency_key(request)
    return key is not None and await to_thread.run_sync(services.idempotency.done,
                                                        principal.id, key)


async def perform(request: Request[Any, Any, Any], services: Services, principal: Principal,
                  status: int, command: Callable[[AfterAppend | None], Written],
                  ) -> tuple[int, Written, bool]:
    """Run a command once per Idempotency-Key; return (status, what was written, replayed?)."""
    status, written, _, replayed = await perform_keeping(request, services, principal, status,
                                                         command, None)
    return status, written, replayed


async def perform_keeping(request: Request[Any, Any, Any], services: Services,
                          principal: Principal, status: int,
                          command: Callable[[AfterAppend | None], Written], extra: bytes | None,
                          ) -> tuple[int, Written, bytes | None, bool]:
    """``perform``, keeping ``extra`` with the key (in the events' transaction) for a replay;
    return (status, what was written, the first request's extra, replayed?)."""
    key = idempotency_key(request)
    if key is None:
        written = await to_thread.run_sync(command, None)
        services.written()
        return status, written, extra, False
    digest = fingerprint(request.method, request.url.path, await request.body())
    now = services.clock.now()
    idem = services.idempotency
    first = await to_thread.run_sync(idem.reserve, principal.id, key, digest, now)
    if isinstance(first, Completed):
        leaves = await to_thread.run_sync(read_leaves, services.db, first.positions)
        return (first.status, Written(first.stream_id, first.stream_version, leaves),
                first.extra, True)
    try:
        written = await to_thread.run_sync(
            command, idem.completer(principal.id, key, status, first, extra))
    except BaseException:
        await to_thread.run_sync(idem.release, principal.id, key, first)
        raise
    services.written()
    return status, written, extra, False
