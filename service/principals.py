"""Principals: people (short-lived signed bearer tokens, service/tokens.py) and systems (API keys).

A person's principal is linked to who they are in the domain (``acts_as``: a cadre, a city
leader, a department, an assessment-team member), which is what assignment rules check.
API keys are stored as SHA-256 hashes: a key carries 256 bits of entropy, so a fast hash is
as good as a slow one and keeps every request's lookup cheap.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

import msgspec

from service.db import db_time

if TYPE_CHECKING:
    from service.db import Database


class Role(StrEnum):
    ORGANIZER = "organizer"  # 组织部门
    LEADER = "leader"  # 领导评分人 (city leaders, principals scoring deputies)
    DEPARTMENT = "department"  # 职能部门
    ASSESSMENT_TEAM = "assessment-team"  # 考核组
    COMMITTEE = "committee"  # 党委 / 评定委员会
    # 申诉受理机关: decides appeals (申诉) after a review (复核) by the committee — a higher
    # body than the one that decided the review (公务员法 Art. 95: 同级公务员主管部门 or the
    # organ one level up).
    APPEAL_BODY = "appeal-body"
    INTAKE = "intake"  # 举报受理
    INVESTIGATOR = "investigator"
    SUPERVISOR = "supervisor"  # 监督


class IdentityKind(StrEnum):
    CADRE = "cadre"
    LEADER = "leader"
    DEPARTMENT = "department"
    TEAM_MEMBER = "team-member"
    UNIT = "unit"
    STAFF = "staff"


class Identity(msgspec.Struct, frozen=True):
    kind: IdentityKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


_IDENTITY = re.compile(r"^([a-z-]+):([A-Za-z0-9._-]{1,64})$")


class PrincipalError(ValueError):
    """A credential or identity is malformed, unknown, expired or revoked."""


def parse_identity(text: str) -> Identity:
    match = _IDENTITY.match(text)
    kinds = ", ".join(k.value for k in IdentityKind)
    if not match or match.group(1) not in IdentityKind.__members__.values():
        msg = f"identity {text!r} must be KIND:ID with KIND one of {kinds}"
        raise PrincipalError(msg)
    return Identity(IdentityKind(match.group(1)), match.group(2))


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: ``id`` is stable and scopes idempotency keys and audit records."""

    id: str
    name: str
    role: Role
    acts_as: Identity | None = None
    via: str  # "api-key" | "token"


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def create_api_key(db: Database, *, role: Role, name: str, acts_as: Identity | None,
                   now: datetime, principal_key_id: str | None = None) -> tuple[str, str]:
    """Create a key; return (key id, the key itself — shown once, never stored)."""
    key_id = secrets.token_hex(6)
    key = f"kp_{key_id}_{secrets.token_urlsafe(32)}"
    with db.write() as cur:
        cur.execute(
            "INSERT INTO kaoping_api_keys (key_id, key_hash, name, role, acts_as, created_at, "
            "principal_key_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (key_id, _hash(key), name, role.value, str(acts_as) if acts_as else None,
             db_time(db.engine, now), principal_key_id),
        )
    return key_id, key


class ApiKeyInfo(msgspec.Struct, kw_only=True):
    key_id: str
    principal: str
    name: str
    role: str
    acts_as: str | None
    created_at: str
    revoked_at: str | None


def list_api_keys(db: Database) -> list[ApiKeyInfo]:
    with db.read() as cur:
        cur.execute("SELECT key_id, COALESCE(principal_key_id, key_id), name, role, acts_as, "
                    "created_at, revoked_at FROM kaoping_api_keys ORDER BY created_at, key_id")
        return [ApiKeyInfo(key_id=r[0], principal=f"key:{r[1]}", name=r[2], role=r[3],
                           acts_as=r[4], created_at=str(r[5]),
                           revoked_at=None if r[6] is None else str(r[6]))
                for r in cur.fetchall()]


def rotate_api_key(db: Database, key_id: str, now: datetime) -> tuple[str, str]:
    """A new key acting as the same principal (same name, role, identity); the old key keeps
    working until it is revoked, so a system can switch without downtime."""
    old = next((k for k in list_api_keys(db) if k.key_id == key_id), None)
    if old is None or old.revoked_at is not None:
        msg = f"no active API key {key_id}"
        raise PrincipalError(msg)
    return create_api_key(db, role=Role(old.role), name=old.name,
                          acts_as=parse_identity(old.acts_as) if old.acts_as else None, now=now,
                          principal_key_id=old.principal.removeprefix("key:"))


def revoke_api_key(db: Database, key_id: str, now: datetime) -> None:
    """Refuse the key from now on (the row stays: who held it is part of the audit trail)."""
    with db.write() as cur:
        cur.execute("UPDATE kaoping_api_keys SET revoked_at = %s WHERE key_id = %s AND "
                    "revoked_at IS NULL RETURNING 1",
                    (db_time(db.engine, now), key_id))
        if not cur.fetchall():
            msg = f"no active API key {key_id}"
            raise PrincipalError(msg)


def principal_for_api_key(db: Database, key: str) -> Principal:
    with db.read() as cur:
        cur.execute(
            "SELECT COALESCE(principal_key_id, key_id), name, role, acts_as, revoked_at "
            "FROM kaoping_api_keys WHERE key_hash = %s",
            (_hash(key),),
        )
        row = cur.fetchone()
    if row is None:
        msg = "unknown API key"
        raise PrincipalError(msg)
    key_id, name, role, acts_as, revoked_at = row
    if revoked_at is not None:
        msg = "API key revoked"
        raise PrincipalError(msg)
    return Principal(id=f"key:{key_id}", name=name, role=Role(role),
                     acts_as=parse_identity(acts_as) if acts_as else None, via="api-key")
