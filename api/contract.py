"""What the generated OpenAPI document cannot know by itself, added after Litestar builds it:

- the ``Idempotency-Key`` header on every POST, PUT, PATCH and DELETE (each honours it,
  api/mechanisms.py), but for the two exemptions: casting a ballot (the credential is its
  key) and issuing credentials (codes are shown once: a retry answers 409, issues nothing);
- the ``If-Match`` header on every update (PUT, PATCH, DELETE);
- the ``webhooks`` section: every event type other systems may receive, with its schema;
- the examples of every operation (api/examples.py): request body, success response, and an
  RFC 9457 problem for each refusal, with the ``type`` URIs the API really sends.

Written by hand because the headers are read by shared mechanisms (api/mechanisms.py), not by
each handler's signature, so Litestar cannot see them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.openapi.spec import (
    Example,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from api.examples import CODES, OPERATIONS, PATH_VALUES, PROBLEMS, SPECIFIC_PROBLEMS
from api.problems import KINDS, PROBLEM_JSON, TYPE_BASE
from service.feed import catalogue

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.openapi.spec import OpenAPI

EXEMPT_FROM_IDEMPOTENCY = (
    ("/api/v1/sessions/{code}/ballots", "the credential is the ballot's key"),
    ("/api/v1/sessions/{code}/credentials", "codes are shown once"),
    # The audit console's forms write nothing: they set or clear the session cookie only.
    ("/console/sign-in", "sets the console's session cookie; stores nothing"),
    ("/console/sign-out", "clears the console's session cookie; stores nothing"),
)
IDEMPOTENCY = Parameter(
    name="Idempotency-Key", param_in="header", required=False,
    schema=Schema(type=OpenAPIType.STRING, max_length=255),
    description="Makes a retry safe: the same key and body return the first response "
                "(kept 24 h; docs/api.md).")
IF_MATCH = Parameter(
    name="If-Match", param_in="header", required=True,
    schema=Schema(type=OpenAPIType.STRING),
    description="The ETag (version) of the resource this update was made against.")


def _exempt(path: str) -> bool:
    return any(path == p for p, _ in EXEMPT_FROM_IDEMPOTENCY)


def annotate(openapi: OpenAPI) -> OpenAPI:
    for path, item in (openapi.paths or {}).items():
        for method, op in (("GET", item.get), ("POST", item.post), ("PUT", item.put),
                           ("PATCH", item.patch), ("DELETE", item.delete)):
            if isinstance(op, Operation):
                if path.startswith("/api/v1/") and "429" not in (op.responses or {}):
                    op.responses = {**(op.responses or {}), "429": OpenAPIResponse(
                        description="Over the caller's request rate (see Retry-After)")}
                _problems_only(op)
                _examples(f"{method} {path}", path, op)
        for operation, header in ((item.post, IDEMPOTENCY), (item.patch, IDEMPOTENCY),
                                  (item.put, IDEMPOTENCY), (item.delete, IDEMPOTENCY),
                                  (item.put, IF_MATCH), (item.patch, IF_MATCH),
                                  (item.delete, IF_MATCH)):
            if not isinstance(operation, Operation):
                continue
            if header is IDEMPOTENCY and _exempt(path):
                continue
            names = {getattr(p, "name", None) for p in operation.parameters or []}
            if header.name not in names:
                operation.parameters = [*(operation.parameters or []), header]
    openapi.webhooks = {
        name: PathItem(post=Operation(
            summary=f"{entry['topic']} (CloudEvent)", operation_id=f"event-{name}",
            tags=["events"],
            request_body=RequestBody(content={"application/json": OpenAPIMediaType(
                schema=_cloudevent(name, entry["schema"]))}, required=True),
            responses={"2XX": OpenAPIResponse(description="delivered")}))
        for name, entry in catalogue().items()
    }
    return openapi


def _problems_only(operation: Operation) -> None:
    """Litestar documents its own 400 (``{status_code, detail, extra}``, application/json);
    every refusal here is an RFC 9457 problem, so say that instead."""
    for status, response in (operation.responses or {}).items():
        if status.startswith(("4", "5")) and isinstance(response, OpenAPIResponse):
            content = response.content or {}
            if "application/problem+json" not in content:
                response.content = {"application/problem+json": OpenAPIMediaType(
                    schema=Reference(ref="#/components/schemas/Problem"))}


def _examples(key: str, path: str, operation: Operation) -> None:
    """Attach the operation's examples from api/examples.py (each media type object is
    replaced, never edited, in case Litestar shares one between operations)."""
    found = OPERATIONS.get(key)
    body = operation.request_body
    if found is not None and found.request is not None and isinstance(body, RequestBody):
        body.content = {media: OpenAPIMediaType(schema=m.schema, examples={"example": Example(
            summary=found.summary or operation.summary, value=_verbatim(found.request))})
            for media, m in body.content.items()}
    for status, response in (operation.responses or {}).items():
        if not isinstance(response, OpenAPIResponse):
            continue
        if status.startswith("2") and found is not None:
            response.content = {media: OpenAPIMediaType(schema=m.schema, examples={
                "ok": Example(summary=found.summary or operation.summary,
                              value=_verbatim(found.response))})
                for media, m in (response.content or {}).items()}
        elif status.startswith(("4", "5")) and status.isdigit():
            problem = _problem(key, path, int(status), found.request if found else None,
                               operation)
            media = (response.content or {}).get(PROBLEM_JSON)
            if problem is not None and media is not None:
                example = Example(summary=problem["title"], value=_verbatim(problem))
                response.content = {PROBLEM_JSON: OpenAPIMediaType(
                    schema=media.schema, examples={problem.get("rule", "problem"): example})}


def _verbatim(value: Any) -> msgspec.Raw:
    """The example as JSON, kept as it is: Litestar drops every ``None`` inside a dict when it
    renders the document, which would make ``"next_cursor": null`` vanish and the example
    contradict its schema."""
    return msgspec.Raw(msgspec.json.encode(value))


def _problem(key: str, path: str, status: int, request: Any,
             operation: Operation) -> dict[str, Any] | None:
    """The problem document the refusal typically carries, for this operation's URL."""
    known = SPECIFIC_PROBLEMS.get(key, {}).get(status) or PROBLEMS.get(status)
    if known is None:
        return None
    kind, detail, rule, field = known
    errors = None
    if status == 400:  # name a field this operation really has
        rule, field, message = _malformed(request, operation)
        detail = f"{field}: {message}"
        errors = [{"field": field, "rule": rule, "message": message}]
    problem: dict[str, Any] = {
        "type": TYPE_BASE + kind, "title": KINDS[kind][1], "status": status, "detail": detail,
        "instance": _concrete(path), "request_id": "4f6c0e1d9a2b4c7e8d3f5a6b7c8d9e0f"}
    extra = {"rule": rule, "field": field, "errors": errors,
             "current_version": 2 if status == 412 else None}
    problem.update({k: v for k, v in extra.items() if v is not None})
    return problem


def _malformed(request: Any, operation: Operation) -> tuple[str, str, str]:
    if isinstance(request, dict) and request:
        name, value = next(iter(request.items()))
        wrong = "int" if isinstance(value, str) else "str"
        right = {str: "str", bool: "bool", int: "int"}.get(type(value), "object")
        return "type", name, f"Expected `{right}`, got `{wrong}`"
    if isinstance(request, dict):
        return "unknown-field", "reason", "Object contains unknown field `reason`"
    for parameter in operation.parameters or []:
        schema = getattr(parameter, "schema", None)
        if isinstance(parameter, Parameter) and isinstance(schema, Schema) and (
                schema.type == OpenAPIType.INTEGER):
            return "type", parameter.name, "Expected `int`, got `str`"
    return "syntax", "body", "JSON is malformed: invalid character (byte 0)"


def _concrete(path: str) -> str:
    """The template with the examples' values, as a problem's ``instance`` names it."""
    code = next((v for marker, v in CODES.items() if marker in path), "XZ01-001")
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), code), path)


def _schema(json_schema: dict[str, Any]) -> Schema:
    """The event's data schema as an OpenAPI 3.1 Schema object, every type kept: its ``$defs``
    are inlined, so that the ``webhooks`` section stands on its own."""
    definitions: dict[str, Any] = json_schema.get("$defs", {})

    def convert(node: Any, seen: tuple[str, ...] = ()) -> Any:
        if isinstance(node, list):
            return [convert(n, seen) for n in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.rsplit("/", 1)[-1]
            if name in seen:  # a recursive type: stop at an open object
                return Schema(type=OpenAPIType.OBJECT, title=name)
            return convert(definitions[name], (*seen, name))
        fields: dict[str, Any] = {}
        for key, value in node.items():
            attr = _SCHEMA_KEYS.get(key)
            if attr is None:
                continue
            if key == "type":
                fields[attr] = ([OpenAPIType(v) for v in value] if isinstance(value, list)
                                else OpenAPIType(value))
            elif key == "properties":
                fields[attr] = {k: convert(v, seen) for k, v in value.items()}
            else:
                fields[attr] = convert(value, seen) if key in _SUBSCHEMAS else value
        return Schema(**fields)

    schema: Schema = convert(json_schema)
    return schema


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_SCHEMA_FIELDS = {f for f in Schema.__dataclass_fields__ if not f.startswith("schema_")}
_SCHEMA_KEYS = {key: _snake(key) for key in (
    "type", "enum", "const", "format", "title", "description", "default", "pattern",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
    "maxLength", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties",
    "required", "properties", "additionalProperties", "items", "prefixItems", "anyOf",
    "oneOf", "allOf") if _snake(key) in _SCHEMA_FIELDS}
_SUBSCHEMAS = {"additionalProperties", "items", "prefixItems", "anyOf", "oneOf", "allOf"}


def _cloudevent(name: str, data: dict[str, Any]) -> Schema:
    """A delivery's body: the CloudEvent (api/routes/events.py, ``CloudEvent``) carrying
    ``data`` of this type."""
    string = Schema(type=OpenAPIType.STRING)
    envelope: dict[str, Schema | Reference] = {
        "specversion": Schema(type=OpenAPIType.STRING, const="1.0"),
        "id": string, "source": string, "type": Schema(type=OpenAPIType.STRING, const=name),
        "time": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME),
        "subject": string, "datacontenttype": string, "dataschema": string,
        "data": _schema(data), "position": Schema(type=OpenAPIType.INTEGER, minimum=0),
        "leafhash": Schema(type=OpenAPIType.STRING, pattern="^[0-9a-f]{64}$")}
    return Schema(type=OpenAPIType.OBJECT, properties=envelope, required=sorted(envelope))


def install(app: Litestar) -> None:
    """Build the app's OpenAPI document now and annotate it; Litestar caches that object (it
    offers no post-build hook, and its plugin's methods cannot be wrapped)."""
    from litestar._openapi.plugin import OpenAPIPlugin  # noqa: PLC0415

    annotate(app.plugins.get(OpenAPIPlugin).provide_openapi())
