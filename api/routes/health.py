"""Liveness (/health) and readiness (/ready)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from anyio import to_thread
from litestar import Response, get
from litestar.datastructures import State

from projections.follower import head_position, lag, stopped
from service.migrate import MigrationError, pending_in

if TYPE_CHECKING:
    from service.runtime import Services


class Health(msgspec.Struct, frozen=True):
    status: str


class DemoStatus(msgspec.Struct, frozen=True, kw_only=True):
    state: str  # idle | loading | done | failed
    step: str
    done: int
    total: int


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    ready: bool
    store: str
    migrations_pending: list[str]
    head_position: int
    projection_lag: dict[str, int]
    problems: list[str]
    demo: DemoStatus
    ledger: str = "ok"  # or the guard's rule: ledger.rolled-back, ledger.forked, ...


@get("/health", opt={"public": True}, tags=["operations"], summary="Process is alive")
async def health() -> Health:
    """Liveness: the process answers. Says nothing about the store (see /ready)."""
    return Health(status="ok")


def _readiness(services: Services) -> Readiness:
    problems: list[str] = []
    pending: list[str] = []
    head, lags, store, ledger = -1, {}, "ok", "ok"
    try:
        with services.db.read() as cur:  # the pool's connection: no new one per probe
            pending = [m.name for m in pending_in(cur)]
            head = head_position(cur)
        if pending:
            problems.append(f"migrations not applied: {', '.join(pending)}")
        lags = lag(services.db, services.projections)
        with services.db.read() as cur:
            halted = stopped(cur)
        problems.extend(f"read model {name} stopped after position {position}: {error}"
                        for name, (position, error) in halted.items())
        broken = services.guard.check(services.db)
        if broken is not None:
            ledger = broken.rule
            problems.append(f"{broken.rule}: {broken.detail}; writes are refused")
    except MigrationError as exc:
        problems.append(str(exc))
    except Exception as exc:  # noqa: BLE001 -- readiness reports any store failure, never raises
        store = "unreachable"
        problems.append(f"store: {type(exc).__name__}")
    p = services.demo_progress
    demo = DemoStatus(state=p.state, step=p.step, done=p.done, total=p.total)
    if p.state == "incomplete":
        problems.append(f"demo: {p.step}")
    return Readiness(ready=not problems, store=store, migrations_pending=pending,
                     head_position=head, projection_lag=lags, problems=problems, demo=demo,
                     ledger=ledger)


@get("/ready", opt={"public": True}, tags=["operations"], summary="Ready to serve")
async def ready(state: State) -> Response[Readiness]:
    """Readiness: store reachable, migrations current, no read model stopped on an event it
    cannot apply (named with the error), the ledger an extension of the last checkpoint signed
    (else ``ledger`` names the guard's finding and writes are refused); reports each read
    model's lag in events."""
    result: Readiness = await to_thread.run_sync(_readiness, state.services)
    return Response(result, status_code=200 if result.ready else 503)
