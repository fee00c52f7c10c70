"""Authentication: a guard resolves the principal for every /api/v1 route that is not public.

Systems send ``X-API-Key``; people send ``Authorization: Bearer <token>``. Public routes
(``opt={"public": True}``) still resolve a principal when credentials are sent, so that
supervisors see more on the same URL.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from litestar.exceptions import HTTPException, NotAuthorizedException

from api.ratelimit import client_address
from service.principals import Principal, principal_for_api_key

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler

    from api.ratelimit import Limiter
    from service.runtime import Services

PRINCIPAL_KEY = "principal"


async def _resolve(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    services: Services = connection.app.state.services
    key = connection.headers.get("x-api-key")
    auth = connection.headers.get("authorization")
    if key:
        return await to_thread.run_sync(principal_for_api_key, services.db, key)
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            msg = "Authorization must be 'Bearer <token>'"
            raise NotAuthorizedException(msg)
        return services.tokens.verify(token.strip(), now=services.clock.now())
    return None


# (event loop, limiter, key) -> the round trip in flight
_TAKING: dict[tuple[int, int, str], asyncio.Future[int | None]] = {}


async def _take(limiter: Limiter, key: str) -> int | None:
    """Spend a token: from a lease this process holds, else from the limiter, whose round trip
    to the shared buckets runs in a worker thread, not on the event loop. One round trip per
    key at a time: requests that find the lease spent while another is renewing it wait for
    that renewal and spend from it, instead of each taking (and overwriting) a lease of its
    own — at 32 concurrent casts from one address, a herd of round trips each time a lease
    ran out (issue 15)."""
    if limiter.leased(key):
        return None
    if not limiter.blocking:
        return limiter.take(key)
    loop = asyncio.get_running_loop()
    flight = (id(loop), id(limiter), key)
    while (renewing := _TAKING.get(flight)) is not None:
        refused = await asyncio.shield(renewing)
        if limiter.leased(key):
            return None
        if refused is not None:  # the bucket is empty: refused as the renewal was
            return refused
    done: asyncio.Future[int | None] = loop.create_future()
    _TAKING[flight] = done
    try:
        wait = await to_thread.run_sync(limiter.take, key)
    except BaseException:
        done.set_result(None)
        raise
    finally:
        del _TAKING[flight]
    done.set_result(wait)
    return wait


def client_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The caller's address for throttling (X-Forwarded-For only from trusted proxies)."""
    return client_address(connection.scope, connection.app.state.trusted_proxies)


async def limit_anonymous(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """429 when this client address has spent its anonymous budget (a token bucket), answered
    after a delay (KAOPING_ANONYMOUS_THROTTLE_DELAY_SECONDS, at most Retry-After): a client
    looping on its connections gets one answer per connection per delay, so its refusals stop
    taking the event loop from everyone else. Waiting holds nothing but this request."""
    wait = await _take(connection.app.state.anonymous_limiter, client_of(connection))
    if wait is not None:
        await asyncio.sleep(min(float(wait), connection.app.state.anonymous_delay))
        msg = (f"too many requests without credentials from this address; retry after {wait} s"
               " (KAOPING_ANONYMOUS_RATE_PER_SECOND)")
        raise HTTPException(status_code=429, headers={"Retry-After": str(wait)}, detail=msg,
                            extra={"rule": "rate-limit.anonymous", "field": "client"})


async def anonymous_guard(connection: ASGIConnection[Any, Any, Any, Any],
                          _: BaseRouteHandler) -> None:
    """For public pages outside /api/v1 (the ballot page)."""
    await limit_anonymous(connection)


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any],
                       handler: BaseRouteHandler) -> None:
    if not (connection.headers.get("x-api-key") or connection.headers.get("authorization")):
        await limit_anonymous(connection)
    principal = await _resolve(connection)
    if principal is None and not handler.opt.get("public", False):
        msg = "send an API key (X-API-Key) or a bearer token (Authorization: Bearer ...)"
        raise NotAuthorizedException(msg)
    connection.scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
    if principal is not None:
        connection.scope["state"]["principal_id"] = principal.id
        wait = await _take(connection.app.state.limiter, principal.id)
        if wait is not None:
            msg = (f"{principal.id} is over its request rate; retry after {wait} s "
                   "(KAOPING_RATE_LIMIT_PER_SECOND)")
            raise HTTPException(status_code=429, headers={"Retry-After": str(wait)}, detail=msg,
                                extra={"rule": "rate-limit.principal", "field": "principal"})


def current_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal = connection.scope.get("state", {}).get(PRINCIPAL_KEY)
    if principal is None:  # a public route asked for one: treat as unauthenticated
        msg = "authentication required"
        raise NotAuthorizedException(msg)
    if not isinstance(principal, Principal):
        msg = "authentication required"
        raise NotAuthorizedException(msg)
    return principal


def optional_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    principal = connection.scope.get("state", {}).get(PRINCIPAL_KEY)
    return principal if isinstance(principal, Principal) else None


SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"BearerToken": []}]
