"""RFC 9457 problem documents: every error the API returns, mapped in one table.

Litestar's ProblemDetailsPlugin swaps title and detail for HTTP errors and leaves unhandled
errors as plain JSON (stack-notes §1.4), so the handlers here are our own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import msgspec.inspect as mi
import psycopg.errors
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException

from domain.errors import (
    BadArgument,
    Busy,
    Conflict,
    DomainError,
    Forbidden,
    IntegrityFailure,
    InvalidInput,
    NotFound,
    StaleVersion,
    Unavailable,
)
from service.principals import PrincipalError

if TYPE_CHECKING:
    from litestar.types import ExceptionHandlersMap

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://kaoping.example/problems/"
log = structlog.get_logger("kaoping.api")

class FieldError(msgspec.Struct, frozen=True, omit_defaults=True):
    field: str
    rule: str
    message: str
    allowed: list[str] | None = None  # rule "enum": the values the field takes

class Problem(msgspec.Struct, frozen=True, omit_defaults=True, kw_only=True):
    """An RFC 9457 problem document, plus ``rule``/``field``/``errors`` naming what was refused."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    rule: str | None = None
    field: str | None = None
    errors: list[FieldError] | None = None
    allowed: list[str] | None = None  # rule "enum": the values ``field`` takes
    current_version: int | None = None

# kind -> (status, English title, Chinese title)
KINDS: dict[str, tuple[int, str, str]] = {
    "validation": (400, "The request is malformed", "请求格式错误"),
    "bad-request": (400, "Bad request", "请求无效"),
    "unauthorized": (401, "Authentication required", "需要身份认证"),
    "forbidden": (403, "Not allowed", "无权执行此操作"),
    "not-found": (404, "Not found", "资源不存在"),
    "method-not-allowed": (405, "Method not allowed", "不支持该请求方法"),
    "conflict": (409, "Conflict", "请求冲突"),
    "stale-version": (412, "The resource has changed", "资源已被修改"),
    "payload-too-large": (413, "Request body too large", "请求体过大"),
    "unsupported-media-type": (415, "Unsupported media type", "不支持的媒体类型"),
    "invalid-input": (422, "The request was refused by a rule", "请求违反业务规则"),
    "precondition-required": (428, "A precondition is required", "需要前置条件"),
    "rate-limited": (429, "Too many requests", "请求过于频繁"),
    "internal": (500, "Internal error", "服务器内部错误"),
    "integrity": (500, "Stored facts fail their integrity check", "存储数据未通过完整性校验"),
    "unavailable": (503, "Service unavailable", "服务暂不可用"),
}
_STATUS_KIND = {status: kind for kind, (status, _, _) in KINDS.items()}

def wants_chinese(request: Request[Any, Any, Any]) -> bool:
    header = request.headers.get("accept-language", "")
    return bool(header) and header.lower().lstrip().startswith("zh")

def problem_response(request: Request[Any, Any, Any], kind: str, detail: str, *,
                     headers: dict[str, str] | None = None, **extra: Any) -> Response[Problem]:
    status, en, zh = KINDS[kind]
    problem = Problem(
        type=TYPE_BASE + kind, title=zh if wants_chinese(request) else en, status=status,
        detail=detail, instance=request.url.path,
        request_id=request.scope.get("state", {}).get("request_id"), **extra)
    return Response(problem, status_code=status, media_type=PROBLEM_JSON, headers=headers)

_MSGSPEC_PATH = re.compile(r"^(?P<msg>.*?)(?: - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`)?$")

def msgspec_field_error(exc: msgspec.DecodeError, where: str = "body") -> FieldError:
    """Turn msgspec's ``Expected `int`, got `str` - at `$.score``` into field and rule."""
    text = str(exc)
    match = _MSGSPEC_PATH.match(text)
    msg = match.group("msg") if match else text
    path = (match.group("path") if match else "") or ""
    field = path.lstrip(".") or where
    missing = re.search(r"missing required field `(\w+)`", msg)
    unknown = re.search(r"unknown field `(\w+)`", msg)
    if missing:
        field = f"{path.lstrip('.')}.{missing.group(1)}".lstrip(".")
    elif unknown:
        field = f"{path.lstrip('.')}.{unknown.group(1)}".lstrip(".")
    return FieldError(field=field, rule=_rule_for(msg), message=msg)


def msgspec_path(exc: msgspec.DecodeError) -> str:
    """msgspec's path of an error (``.scores[0].grade``; a dict's key ends in ``{key}``)."""
    match = _MSGSPEC_PATH.match(str(exc))
    if not match:
        return ""
    return (match.group("path") or "") + ("{key}" if match.group("key") else "")


def with_allowed(error: FieldError, declared: Any, path: str = "") -> FieldError:
    """An ``enum`` refusal lists the values the field takes: msgspec's message names only the
    value refused, and a client should not have to read the OpenAPI document to fix a typo.
    A pattern refusal of a field that names its rule (``extra={"rule", "form"}``: a code)
    gives that rule and the form in words, not the regular expression."""
    if error.rule not in ("enum", "constraint") or declared is None:
        return error
    try:
        info = mi.type_info(declared) if not isinstance(declared, mi.Type) else declared
    except (TypeError, ValueError, NameError):  # a string annotation msgspec cannot resolve
        return error
    if error.rule == "constraint":
        extra = _extra_at(info, _steps(path)) if "matching regex" in error.message else None
        if not extra or "rule" not in extra:
            return error
        return FieldError(field=error.field, rule=str(extra["rule"]),
                          message=f"{error.field}: {extra['form']}")
    values = _enum_at(info, path)
    if not values:
        return error
    return FieldError(field=error.field, rule=error.rule, allowed=values,
                      message=f"{error.message}; allowed: {', '.join(values)}")


_PATH_STEP = re.compile(r"\.(\w[\w-]*)|\[(\d+)\]|(\{key\})")


def _steps(path: str) -> list[str | int]:
    return [m.group(1) or m.group(3) or int(m.group(2)) for m in _PATH_STEP.finditer(path)]


T = TypeVar("T")


def _enum_at(info: mi.Type, path: str) -> list[str] | None:
    """The enum or literal values at ``path`` (``.scores[0].grade``) of a type, if any."""
    return _walk(info, _steps(path), _values)


def _extra_at(info: mi.Type, steps: list[str | int]) -> dict[str, Any] | None:
    """The ``extra`` of the field's own constraints at ``steps``, if it has any."""
    return _walk(info, steps, _extra)


def _values(info: mi.Type) -> list[str] | None:
    while isinstance(info, mi.Metadata):
        info = info.type
    values: Any = (info.cls if isinstance(info, mi.EnumType) else
                   info.values if isinstance(info, mi.LiteralType) else ())
    return [str(getattr(v, "value", v)) for v in values] or None


def _extra(info: mi.Type) -> dict[str, Any] | None:
    while isinstance(info, mi.Metadata):
        if info.extra:
            return info.extra
        info = info.type
    return None


def _walk(info: mi.Type, steps: list[str | int], leaf: Callable[[mi.Type], T | None],
          ) -> T | None:
    """``leaf`` of the type at ``steps`` (it sees the field's constraints); a union (an
    optional field) answers with its first option that gives one."""
    if not steps and (found := leaf(info)) is not None:
        return found
    while isinstance(info, mi.Metadata):
        info = info.type
    if isinstance(info, mi.UnionType):
        return next(filter(None, (_walk(option, steps, leaf) for option in info.types)), None)
    if not steps:
        return None
    step, rest = steps[0], steps[1:]
    inner: mi.Type | None = None
    if isinstance(info, mi.StructType) and isinstance(step, str):
        inner = next((f.type for f in info.fields if f.encode_name == step), None)
    elif isinstance(info, mi.DictType):
        inner = info.key_type if step == "{key}" else info.value_type
    elif isinstance(info, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        inner = info.item_type
    return _walk(inner, rest, leaf) if inner is not None else None


_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (  # first match wins
    (lambda m: "missing required" in m, "required"),
    (lambda m: "unknown field" in m, "unknown-field"),
    (lambda m: m.startswith("Expected `") and "got" in m, "type"),
    (lambda m: m.startswith("Expected"), "constraint"),
    (lambda m: m.startswith("Invalid enum value"), "enum"),
    (lambda m: m.startswith("Invalid "), "format"),  # decimal string, UUID, RFC 3339 …
)


def _rule_for(message: str) -> str:
    """The rule a msgspec (or Litestar parameter) message names, as a stable word."""
    return next((rule for test, rule in _RULES if test(message)), "syntax")


class BodyValidationError(Exception):
    def __init__(self, error: FieldError) -> None:
        super().__init__(error.message)
        self.error = error

def _domain(request: Request[Any, Any, Any], exc: DomainError) -> Response[Problem]:
    kind = {InvalidInput: "invalid-input", NotFound: "not-found", Conflict: "conflict",
            Forbidden: "forbidden", StaleVersion: "stale-version",
            BadArgument: "validation", IntegrityFailure: "integrity",
            Unavailable: "unavailable", Busy: "conflict"}.get(type(exc),
                                                                         "invalid-input")
    if exc.rule == "idempotency-key.format":
        kind = "bad-request"
    if exc.rule == "if-match.required":
        kind = "precondition-required"
    if isinstance(exc, Unavailable):
        kind = "unavailable"
    if isinstance(exc, IntegrityFailure | Unavailable):
        structlog.get_logger("kaoping.integrity").critical("integrity.failed", rule=exc.rule,
                                                             detail=exc.detail)
    extra: dict[str, Any] = {"rule": exc.rule, "field": exc.field}
    if exc.errors:
        extra["errors"] = [FieldError(field=f, rule=r, message=m) for f, r, m in exc.errors]
    headers = None
    if isinstance(exc, StaleVersion):
        extra["current_version"] = exc.current
        headers = {"ETag": f'"{exc.current}"'}
    if isinstance(exc, Busy):
        headers = {"Retry-After": str(exc.retry_after)}
    return problem_response(request, kind, exc.detail, headers=headers, **extra)

def _body(request: Request[Any, Any, Any], exc: BodyValidationError) -> Response[Problem]:
    e = exc.error
    return problem_response(request, "validation", f"{e.field}: {e.message}", rule=e.rule,
                            field=e.field, errors=[e], allowed=e.allowed)

def _principal(request: Request[Any, Any, Any], exc: PrincipalError) -> Response[Problem]:
    return problem_response(request, "unauthorized", str(exc), rule="authentication",
                            headers={"WWW-Authenticate": 'Bearer realm="kaoping"'})

def _litestar_validation(request: Request[Any, Any, Any],
                         exc: ValidationException) -> Response[Problem]:
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            message = str(item.get("message", ""))
            source = item.get("source", "request")
            # A parameter named after a Python keyword is declared with a trailing "_"
            # (``from_`` for ``?from=``); clients know it by its wire name.
            key = str(item.get("key", getattr(source, "value", source)))
            field = key.removesuffix("_")
            error = FieldError(field=field, rule=_rule_for(message), message=message)
            errors.append(with_allowed(error, _parameter_type(request, key)))
    missing = re.match(r"Missing required (\w+) parameter '([^']+)'", str(exc.detail))
    if not errors and missing:
        errors.append(FieldError(field=missing.group(2), rule="required",
                                 message=f"the {missing.group(1)} parameter is required"))
    first = errors[0] if errors else None
    detail = f"{first.field}: {first.message}" if first else str(exc.detail)
    return problem_response(request, "validation", detail, errors=errors or None,
                            field=first.field if first else None,
                            rule=first.rule if first else None,
                            allowed=first.allowed if first else None)


def _parameter_type(request: Request[Any, Any, Any], key: str) -> Any:
    """The declared type of a route handler's query or path parameter, if it has one."""
    try:
        handler = request.route_handler
    except (AttributeError, KeyError):  # refused before routing
        return None
    parameters = handler.parsed_fn_signature.parameters
    for name in (key, key + "_"):
        if name in parameters:
            return parameters[name].annotation
    return None

def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    if isinstance(exc, NotAuthorizedException):
        return problem_response(request, "unauthorized", exc.detail, rule="authentication",
                                headers={"WWW-Authenticate": 'Bearer realm="kaoping"'})
    kind = _STATUS_KIND.get(exc.status_code)
    if kind is None:
        kind = "bad-request" if exc.status_code < 500 else "internal"
    detail = exc.detail or HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    named = {k: v for k, v in exc.extra.items() if k in ("rule", "field")} if isinstance(
        exc.extra, dict) else {}  # a throttle names its rule and what it counts
    return problem_response(request, kind, detail, headers=headers or None, **named)

def _on_standby(exc: BaseException | None) -> bool:
    """Whether a store error (psycopg's own, or the event store's wrapping it) says the
    database is a hot standby: SQLSTATE 25006, or PostgreSQL's "during recovery"."""
    while exc is not None:
        if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction) or "during recovery" in str(
                exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _standby(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    # A read with a side effect (a recorded access, a counted refusal) reached a hot standby.
    log.warning("request.read_only_store", error=str(exc).splitlines()[0])
    return problem_response(request, "unavailable", "this read records something, and this "
                            "server's database is a read-only replica; ask the primary",
                            rule="replica.read-only", field="method",
                            headers={"Retry-After": "3600"})


def _unhandled(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    if _on_standby(exc):
        return _standby(request, exc)
    # Logged with its traceback (no locals); the client gets the request id, never the details.
    log.error("request.unhandled", exc_info=exc)
    return problem_response(request, "internal",
                            "An unexpected error occurred; quote the request id when reporting it.")

def exception_handlers() -> ExceptionHandlersMap:
    return {
        DomainError: _domain,
        BodyValidationError: _body,
        PrincipalError: _principal,
        ValidationException: _litestar_validation,
        HTTPException: _http,
        psycopg.errors.ReadOnlySqlTransaction: _standby,
        Exception: _unhandled,
    }
