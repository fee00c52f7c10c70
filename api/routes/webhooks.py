"""/api/v1/webhooks — subscriptions, their delivery log, redelivery (service/webhooks.py)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from anyio import to_thread
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from api.auth import SECURITY, current_principal
from api.mechanisms import (
    INT64,
    decode_cursor,
    etag,
    expected_version,
    idempotency_key,
    next_page,
    strict_body,
)
from api.openapi import problems
from domain.text import text
from service.idempotency import fingerprint
from service.webhooks import Delivery, Subscription

Url = Annotated[str, text(min_length=8, max_length=2000)]
EventType = Annotated[str, text(max_length=200)]


class SubscribeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: Url
    event_types: Annotated[list[EventType], msgspec.Meta(max_length=200)] = []
    # Deliver events after this log position (to catch up on history); default: from now on.
    after: Annotated[int, msgspec.Meta(ge=-1)] | None = None


class SubscriptionChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # true: events keep being queued but nothing is sent; false: the backlog goes out in order
    paused: bool


class SubscriptionCreated(msgspec.Struct, kw_only=True):
    subscription: Subscription
    secret: str  # whsec_...: verify each delivery's webhook-signature with it; shown to you only


class SubscriptionPage(msgspec.Struct, kw_only=True):
    items: list[Subscription]
    next_cursor: str | None


class DeliveryPage(msgspec.Struct, kw_only=True):
    items: list[Delivery]
    next_after: int | None  # pass as ?after= for the next page


class WebhookController(Controller):
    path = "/webhooks/subscriptions"
    tags = ["webhooks"]  # noqa: RUF012 -- Litestar's own attribute

    @post("/", status_code=201, security=SECURITY, before_request=strict_body(SubscribeIn),
          summary="Subscribe to events", responses=problems(400, 401, 422))
    async def subscribe(self, request: Request[Any, Any, Any], state: State,
                        data: JSONBody[SubscribeIn]) -> Response[SubscriptionCreated]:
        """Deliver the events your role may see (all, or ``event_types`` from the catalogue) to
        ``url``, signed per Standard Webhooks with the returned secret. The URL must be public
        https. ``after`` replays history from a log position."""
        principal = current_principal(request)
        key = idempotency_key(request)
        digest = fingerprint(request.method, request.url.path, await request.body()).hex()
        sub, secret, replayed = await to_thread.run_sync(
            state.services.webhooks.subscribe, principal, data.url, data.event_types, data.after,
            key, digest)
        headers = {"Cache-Control": "no-store"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(SubscriptionCreated(subscription=sub, secret=secret), status_code=201,
                        headers=headers)

    @get("/", security=SECURITY, summary="Your subscriptions", responses=problems(400, 401))
    async def list_(self, request: Request[Any, Any, Any], state: State,
                    cursor: Annotated[str | None, QueryParameter()] = None,
                    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
                    ) -> Response[SubscriptionPage]:
        """The caller's subscriptions, cursor-paginated."""
        principal = current_principal(request)
        after = decode_cursor(cursor, {})
        rows = await to_thread.run_sync(state.services.webhooks.subscriptions, principal.id,
                                        after, limit + 1)
        next_cursor, headers = next_page(request, len(rows), limit,
                                         rows[limit - 1].id if len(rows) > limit else "", {})
        return Response(SubscriptionPage(items=rows[:limit], next_cursor=next_cursor),
                        headers=headers)

    @get("/{subscription_id:str}/deliveries", security=SECURITY, summary="A delivery log",
         responses=problems(400, 401, 404))
    async def deliveries(self, request: Request[Any, Any, Any], state: State,
                         subscription_id: FromPath[str],
                         after: Annotated[int, QueryParameter(ge=0, le=INT64)] = 0,
                         limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
                         ) -> Response[DeliveryPage]:
        """Every delivery of the subscription: state, attempts, last status and error."""
        principal = current_principal(request)
        rows = await to_thread.run_sync(state.services.webhooks.deliveries, principal.id,
                                        subscription_id, after, limit + 1)
        headers, nxt = {}, None
        if len(rows) > limit:
            nxt = rows[limit - 1].id
            headers["Link"] = (f'<{request.url.path}?after={nxt}&limit={limit}>; '
                               'rel="next"')
        return Response(DeliveryPage(items=rows[:limit], next_after=nxt), headers=headers)

    @post("/{subscription_id:str}/deliveries/{delivery_id:int}/redelivery", status_code=202,
          security=SECURITY, summary="Deliver again", responses=problems(400, 401, 404, 409))
    async def redeliver(self, request: Request[Any, Any, Any], state: State,
                        subscription_id: FromPath[str],
                        delivery_id: FromPath[int]) -> Response[Delivery]:
        """Queue the delivery again now, whatever its state (for example after it was parked
        as failed). Retrying with the same Idempotency-Key queues it once; the key used for
        another delivery is refused."""
        principal = current_principal(request)
        key = idempotency_key(request)
        delivery, replayed = await to_thread.run_sync(
            state.services.webhooks.redeliver, principal.id, subscription_id, delivery_id, key)
        return Response(delivery, status_code=202,
                        headers={"Idempotent-Replayed": "true"} if replayed else None)

    @get("/{subscription_id:str}", security=SECURITY, summary="Read a subscription",
         responses=problems(401, 404))
    async def read(self, request: Request[Any, Any, Any], state: State,
                   subscription_id: FromPath[str]) -> Response[Subscription]:
        """One of your subscriptions (never its secret); the ETag guards changes."""
        principal = current_principal(request)
        sub = await to_thread.run_sync(state.services.webhooks.subscription, principal.id,
                                       subscription_id)
        return _with_etag(sub)

    @patch("/{subscription_id:str}", security=SECURITY,
           before_request=strict_body(SubscriptionChange), summary="Pause or resume",
           responses=problems(400, 401, 404, 409, 412, 415, 422, 428))
    async def change(self, request: Request[Any, Any, Any], state: State,
                     subscription_id: FromPath[str],
                     data: JSONBody[SubscriptionChange]) -> Response[Subscription]:
        """``{"paused": true}``: events keep being queued, nothing is sent. ``{"paused":
        false}``: the queued deliveries go out in log order, with their stable webhook-id.
        Requires If-Match; a retry with the same Idempotency-Key replays the answer."""
        principal = current_principal(request)
        version = expected_version(request)
        key = idempotency_key(request)
        digest = fingerprint(request.method, request.url.path, await request.body()).hex()
        sub, replayed = await to_thread.run_sync(
            lambda: state.services.webhooks.set_paused(
                principal.id, subscription_id, paused=data.paused, expected_version=version,
                key=key, fingerprint=digest))
        return _with_etag(sub, replayed=replayed)

    @delete("/{subscription_id:str}", status_code=200, security=SECURITY,
            summary="Delete (deactivate) a subscription",
            responses=problems(400, 401, 404, 412, 428))
    async def remove(self, request: Request[Any, Any, Any], state: State,
                     subscription_id: FromPath[str]) -> Response[Subscription]:
        """Nothing more is queued or sent; pending deliveries are cancelled. The subscription
        and its delivery log stay readable. Requires If-Match; deleting a deleted subscription
        at its current ETag answers the same again."""
        principal = current_principal(request)
        version = expected_version(request)
        key = idempotency_key(request)
        # No body: the request is the path and the version it deletes.
        digest = fingerprint(request.method, f"{request.url.path} @{version}", b"").hex()
        sub, replayed = await to_thread.run_sync(
            lambda: state.services.webhooks.delete(principal.id, subscription_id,
                                                   expected_version=version, key=key,
                                                   fingerprint=digest))
        return _with_etag(sub, replayed=replayed)


def _with_etag(sub: Subscription, *, replayed: bool = False) -> Response[Subscription]:
    headers = {"ETag": etag(sub.version)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(sub, headers=headers)
