"""/api/v1/operations — supervisors' view of the system's own checks."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from litestar import Request, get
from litestar.datastructures import State

from api.auth import SECURITY, current_principal
from api.openapi import problems
from domain.errors import Forbidden, NotFound
from service.principals import Role
from service.rebuild import LastCheck, last_check


@get("/operations/rebuild-check", security=SECURITY, tags=["operations"],
     summary="The last read-model rebuild check", responses=problems(401, 403, 404))
async def rebuild_check(request: Request[Any, Any, Any], state: State) -> LastCheck:
    """The latest ``kaoping rebuild --check``: every read model rebuilt from the log beside the
    live one and compared by content digest, with the checkpoint it was made at."""
    if current_principal(request).role != Role.SUPERVISOR:
        msg = "the rebuild check is for supervisors"
        raise Forbidden(msg, rule="role")
    found = await to_thread.run_sync(last_check, state.services)
    if found is None:
        msg = "no rebuild check has been run yet (kaoping rebuild --check)"
        raise NotFound(msg, rule="rebuild-check.exists")
    return found
