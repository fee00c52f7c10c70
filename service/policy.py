"""Authorisation: by role here; by assignment in each use case (who may score whom)."""

from __future__ import annotations

from domain.errors import Forbidden
from service.principals import Principal, Role


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        msg = f"role {principal.role.value!r} may not do this; allowed: {allowed}"
        raise Forbidden(msg, rule="role")
