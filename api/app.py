"""The composition root: ``create_app(settings)`` wires services, auth, errors, logs and routes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from litestar import Litestar, Response, Router
from litestar.exceptions import HTTPException

from api.auth import authenticate
from api.console import console_router
from api.contract import install as install_contract
from api.middleware import RequestContext
from api.openapi import PlainDecimals, openapi_config
from api.pages import PAGE_CSP, assets_router
from api.problems import exception_handlers
from api.ratelimit import FailureLimiter, Limiter, PrincipalLimiter, parse_networks
from api.readers import declared_audience
from api.routes.auth import jwks
from api.routes.cases import (
    CaseController,
    audit_access,
    register_investigator,
    report_status,
)
from api.routes.commitments import CommitmentController
from api.routes.cycles import CycleController
from api.routes.events import EventController
from api.routes.exports import export_results
from api.routes.health import health, ready
from api.routes.home import home, home_css
from api.routes.inputs import InputController
from api.routes.ledger import LedgerController
from api.routes.operations import rebuild_check
from api.routes.people import CadreController, ImportController, LeaderController
from api.routes.publication import PublicationController
from api.routes.registration import registration_pdf
from api.routes.sessions import SessionController
from api.routes.team import team_controller
from api.routes.units import UnitController
from api.routes.uses import UseController
from api.routes.vote import ballot_page, board_page
from api.routes.webhooks import WebhookController
from service.logging import configure_logging
from service.published import Kept
from service.runtime import Services
from service.session_files import RosterNames
from service.settings import Settings, SettingsError, load_settings
from service.throttle import SharedLimiter, SharedRefusals, pseudonym_key

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers import BaseRouteHandler
    from litestar.types import ASGIApp

    from service.clock import Clock


class KaopingApp(Litestar):
    def _create_asgi_handler(self) -> ASGIApp:
        # Outermost: every request, routed or not, gets a request id and one access-log line.
        return RequestContext(super()._create_asgi_handler())


_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


async def _read_only(request: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A replica's API process (KAOPING_READ_ONLY) refuses every write before it starts."""
    settings: Settings = request.app.state.services.settings
    if settings.read_only and request.scope.get("method", "GET") not in _SAFE:
        where = f" at {settings.primary_url}" if settings.primary_url else ""
        raise HTTPException(status_code=503, detail=(
            f"this server reads from a replica and writes nothing; send "
            f"{request.scope.get('method')} requests to the primary{where} (KAOPING_READ_ONLY)"),
            headers={"Retry-After": "3600"},
            extra={"rule": "replica.read-only", "field": "method"})


async def _guards(connection: ASGIConnection[Any, Any, Any, Any],
                  handler: BaseRouteHandler) -> None:
    """Every route's guards, as one: Litestar copies the route handler for each guard it runs,
    on every request (three copies per ballot cast when these were three guards). In order:
    a replica refuses writes; under /api/v1, authentication (and the request budgets), then the
    declared audience of a GET."""
    await _read_only(connection, handler)
    if handler.opt.get("api_v1"):
        await authenticate(connection, handler)
        await declared_audience(connection, handler)


async def _page_policy(response: Response[Any]) -> Response[Any]:
    """Every HTML page (the docs, the ballot page) gets a CSP without 'unsafe-inline'."""
    if str(getattr(response, "media_type", "")).startswith("text/html"):  # not a file's
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
    return response


def request_limiters(settings: Settings, svc: Services) -> tuple[Limiter, Limiter]:
    """The per-principal and per-anonymous-client buckets: shared through PostgreSQL by every
    API process (KAOPING_RATE_LIMIT_STORE), or this process's own."""
    if settings.shared_rate_limit:
        if svc.db.engine != "postgres":
            msg = "KAOPING_RATE_LIMIT_STORE=database needs PostgreSQL (SQLite is one process)"
            raise SettingsError(msg)
        key = pseudonym_key(settings.console_key_path)
        return (SharedLimiter(svc.db, "principal", rate=settings.rate_limit_per_second,
                              burst=settings.rate_limit_burst, key=key),
                SharedLimiter(svc.db, "anonymous", rate=settings.anonymous_rate_per_second,
                              burst=settings.anonymous_burst, key=key))
    return (PrincipalLimiter(rate=settings.rate_limit_per_second,
                             burst=settings.rate_limit_burst),
            PrincipalLimiter(rate=settings.anonymous_rate_per_second,
                             burst=settings.anonymous_burst))


def refusal_limiter(settings: Settings, svc: Services) -> FailureLimiter | SharedRefusals:
    """The refused-ballot budgets: shared through PostgreSQL by every API process (with the
    request budgets, KAOPING_RATE_LIMIT_STORE), or this process's own."""
    own = FailureLimiter(per_client=settings.ballot_refusals_per_client,
                         per_session=settings.ballot_refusals_per_session,
                         window=settings.ballot_refusal_window_seconds)
    if not settings.shared_rate_limit or svc.db.engine != "postgres":
        return own
    return SharedRefusals(svc.db, per_client=settings.ballot_refusals_per_client,
                          per_session=settings.ballot_refusals_per_session,
                          window=settings.ballot_refusal_window_seconds,
                          key=pseudonym_key(settings.console_key_path), fallback=own)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None,
               services: Services | None = None) -> Litestar:
    """Build the app. Without arguments, settings come from the environment (uvicorn --factory)."""
    settings = settings or load_settings(os.environ)
    configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        own = services is None
        svc = services or Services(settings, clock=clock)
        app.state.services = svc
        app.state.limiter, app.state.anonymous_limiter = request_limiters(settings, svc)
        app.state.anonymous_delay = settings.anonymous_throttle_delay_seconds
        app.state.trusted_proxies = parse_networks(settings.trusted_proxies)
        app.state.subject_names = RosterNames(svc.evaluation)
        app.state.public_base_url = settings.public_base_url
        app.state.ballot_refusals = refusal_limiter(settings, svc)
        app.state.notice_views = Kept(size=16)  # public notices by (year, date, log head)
        if settings.projections == "inprocess" and not settings.read_only:
            svc.start(demo=settings.demo_on_serve)
        try:
            yield
        finally:
            if own:
                svc.close()

    api_v1 = Router(path="/api/v1", opt={"api_v1": True}, route_handlers=[
        CycleController, InputController, UnitController, CadreController, LeaderController,
        ImportController, LedgerController, SessionController, rebuild_check, CaseController,
        audit_access, report_status, register_investigator, EventController, export_results,
        WebhookController, jwks, UseController, CommitmentController, PublicationController,
        team_controller(settings.document_max_bytes), registration_pdf])
    app = KaopingApp(
        route_handlers=[home, home_css, health, ready, ballot_page, board_page, assets_router(),
                        api_v1, console_router()],
        guards=[_guards],
        after_request=_page_policy,
        lifespan=[lifespan],
        exception_handlers=exception_handlers(),
        openapi_config=openapi_config(version("kaoping")),
        debug=False,
        request_max_body_size=settings.max_body_bytes,
        plugins=[PlainDecimals()],
        logging_config=None,  # service.logging owns logging; Litestar must not reconfigure it
    )
    install_contract(app)
    return app
