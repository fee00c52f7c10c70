"""What the generated OpenAPI document cannot know by itself, added after Litestar builds it:

- the ``Idempotency-Key`` header on every POST that honours it (all but the exemptions:
  casting a ballot — the credential is its key — and issuing credentials or taking a report,
  whose codes are shown once);
- the ``Idempotency-Key`` header on every PATCH (each honours it, api/mechanisms.py);
- the ``If-Match`` header on every update (PUT, PATCH, DELETE);
- the ``webhooks`` section: every event type other systems may receive, with its schema.

Written by hand because the headers are read by shared mechanisms (api/mechanisms.py), not by
each handler's signature, so Litestar cannot see them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIType

from service.feed import catalogue

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.openapi.spec import OpenAPI

EXEMPT_FROM_IDEMPOTENCY = (
    ("/api/v1/sessions/{code}/ballots", "the credential is the ballot's key"),
    ("/api/v1/sessions/{code}/credentials", "codes are shown once"),
    ("/api/v1/cases", "the follow-up code is shown once"),
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
        for op in (item.get, item.post, item.put, item.patch, item.delete):
            if isinstance(op, Operation):
                if path.startswith("/api/v1/") and "429" not in (op.responses or {}):
                    op.responses = {**(op.responses or {}), "429": OpenAPIResponse(
                        description="Over the caller's request rate (see Retry-After)")}
                _problems_only(op)
        for operation, header in ((item.post, IDEMPOTENCY), (item.patch, IDEMPOTENCY),
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
            request_body=RequestBody(content={"application/cloudevents+json": OpenAPIMediaType(
                schema=_schema(entry["schema"]))}, required=True),
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


def _schema(json_schema: dict[str, Any]) -> Schema:
    """The event's data schema, as an opaque JSON Schema object (OpenAPI 3.1 is JSON Schema)."""
    definitions = json_schema.get("$defs", {})
    ref = json_schema.get("$ref", "")
    body = definitions.get(ref.rsplit("/", 1)[-1], json_schema) if ref else json_schema
    props: dict[str, Schema | Any] = {
        str(k): Schema(description=str(v.get("type", v.get("anyOf", ""))))
        for k, v in body.get("properties", {}).items()}
    return Schema(type=OpenAPIType.OBJECT, properties=props, required=body.get("required"))


def install(app: Litestar) -> None:
    """Build the app's OpenAPI document now and annotate it; Litestar caches that object (it
    offers no post-build hook, and its plugin's methods cannot be wrapped)."""
    from litestar._openapi.plugin import OpenAPIPlugin  # noqa: PLC0415

    annotate(app.plugins.get(OpenAPIPlugin).provide_openapi())
