"""/api/v1/events — the event feed (CloudEvents 1.0), its live stream (SSE), the catalogue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from anyio import to_thread
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.auth import SECURITY, current_principal
from api.mechanisms import INT64
from api.openapi import problems
from domain.errors import NotFound
from projections.follower import head_position
from service.feed import CloudEvent, catalogue, page


class FeedPage(msgspec.Struct, kw_only=True):
    items: list[CloudEvent]
    next_after: int  # pass as ?after= to continue (the position read up to)


class EventController(Controller):
    path = "/events"
    tags = ["events"]  # noqa: RUF012 -- Litestar's own attribute

    @get("/", security=SECURITY, summary="The event feed", responses=problems(400, 401))
    async def feed(self, request: Request[Any, Any, Any], state: State,
                   after: Annotated[int, QueryParameter(ge=-1, le=INT64)] = -1,
                   limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
                   ) -> Response[FeedPage]:
        """Events after log position ``after``, in log order, as CloudEvents 1.0 with their
        ``position`` and ``leafhash``; only those the caller's role may see (never ballots,
        interview notes, cases or reporter identities). ``Link: rel="next"`` continues."""
        principal = current_principal(request)
        services = state.services

        def read() -> tuple[list[CloudEvent], int]:
            with services.db.read() as cur:
                return page(cur, services.store.mapper, principal.role,
                            services.settings.ledger_origin, after, limit)

        items, last = await to_thread.run_sync(read)
        headers = {}
        if len(items) == limit:
            headers["Link"] = f'<{request.url.path}?after={last}&limit={limit}>; rel="next"'
        return Response(FeedPage(items=items, next_after=last), headers=headers)

    @get("/stream", security=SECURITY, summary="The event feed, live (SSE)",
         media_type="text/event-stream", responses=problems(401))
    async def stream(self, request: Request[Any, Any, Any], state: State,
                     last_event_id: Annotated[int | None, HeaderParameter(
                         name="Last-Event-ID")] = None,
                     after: Annotated[int | None, QueryParameter(ge=-1, le=INT64)] = None,
                     limit: Annotated[int | None, QueryParameter(ge=1, le=INT64)] = None,
                     ) -> ServerSentEvent:
        """The same events as Server-Sent Events (``id`` = position, ``event`` = type, ``data``
        = the CloudEvent), from now on: the stream starts at the head of the log unless
        ``Last-Event-ID`` (resume) or ``after`` (``-1``: from the beginning) says where.
        The first line is a comment, ``: after <position>``. ``limit`` closes the stream after
        that many events."""
        principal = current_principal(request)
        services = state.services
        start = last_event_id if last_event_id is not None else after
        if start is None:
            def head() -> int:
                with services.db.read() as cur:
                    return head_position(cur)

            start = await to_thread.run_sync(head)

        async def events() -> AsyncIterator[ServerSentEventMessage]:
            position, sent = start, 0
            while limit is None or sent < limit:
                def read(at: int = position) -> tuple[list[CloudEvent], int]:
                    with services.db.read() as cur:
                        return page(cur, services.store.mapper, principal.role,
                                    services.settings.ledger_origin, at, 100)

                items, position = await to_thread.run_sync(read)
                for item in items:
                    yield ServerSentEventMessage(data=msgspec.json.encode(item).decode(),
                                                 event=item.type, id=str(item.position))
                    sent += 1
                    if limit is not None and sent >= limit:
                        return
                if not items:
                    await asyncio.sleep(0.5)

        # A comment first: the client learns where the stream starts (and the headers flush).
        return ServerSentEvent(events(), comment_message=f"after {start}")

    @get("/catalogue", opt={"public": True}, summary="Every event type and its data schema")
    async def catalogue(self) -> dict[str, dict[str, Any]]:
        """The event types other systems may receive: topic, version, audience (roles), and the
        JSON Schema of ``data``. Versioning: docs/api.md, "Events"."""
        return catalogue()

    @get("/schemas/{type_name:str}", opt={"public": True}, summary="One event type's schema",
         responses=problems(404))
    async def schema(self, type_name: FromPath[str]) -> dict[str, Any]:
        """The JSON Schema of one event type's ``data`` (a CloudEvent's ``dataschema``)."""
        entry = catalogue().get(type_name)
        if entry is None:
            msg = f"no published event type {type_name}"
            raise NotFound(msg, rule="events.type", field="type_name")
        schema: dict[str, Any] = entry["schema"]
        return schema
