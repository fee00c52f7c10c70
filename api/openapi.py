"""OpenAPI 3.1: error responses documented as RFC 9457 problems, security schemes, UI pages.

The documentation page (/schema, also /schema/swagger) is Swagger UI served from this package
(api/pages.py, pinned and vendored): it works offline, like /schema/openapi.json.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, Schema, SecurityScheme, Server, Tag
from litestar.plugins import OpenAPISchemaPlugin

from api.pages import DocsPage
from api.problems import KINDS, PROBLEM_JSON, Problem
from api.strict import MAX_PLACES, PLAIN_DECIMAL

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

_DESCRIPTIONS = {status: title for status, title, _ in KINDS.values()}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """Response specs for a handler's refusals, each an application/problem+json document."""
    return {
        status: ResponseSpec(Problem, media_type=PROBLEM_JSON,
                             description=_DESCRIPTIONS.get(status, "Problem"),
                             generate_examples=False)
        for status in statuses
    }


class PlainDecimals(OpenAPISchemaPlugin):
    """Documents a Decimal as ``api.strict`` accepts it: a JSON number or string, written as
    a plain decimal (Litestar's default says only "string")."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is Decimal

    def to_openapi_schema(self, field_definition: FieldDefinition,
                          schema_creator: SchemaCreator) -> Schema:
        rule = f"a plain decimal: digits 0-9, optional '-', at most {MAX_PLACES} places"
        return Schema(one_of=[Schema(type="number", description=rule),  # type: ignore[arg-type]
                              Schema(type="string", pattern=f"^{PLAIN_DECIMAL.pattern}$",  # type: ignore[arg-type]
                                     description=rule)])


TAGS = [
    Tag(name="cycles", description="考核周期: the year's cycle, its scheme, roster and phases"),
    Tag(name="units", description="Units (单位): townships and city departments; bulk import"),
    Tag(name="cadres", description="领导干部 in their posts, and city leaders (市领导)"),
    Tag(name="commitments", description="责任承诺考实: committed targets and their achievement"),
    Tag(name="leader-reviews", description="领导把关考评: leaders' 0–100 scores"),
    Tag(name="evaluations", description="民主测评 / 民意调查: sessions, credentials, board"),
    Tag(name="ballots", description="Casting a ballot with a one-time credential (no login)"),
    Tag(name="indicators", description="部门核对考证: department-verified indicators"),
    Tag(name="inspections", description="组织系统考核: the assessment team's score and notes"),
    Tag(name="analysis", description="实绩分析评估: performance dimensions"),
    Tag(name="assessment-team",
        description="考核组: assignment to subjects, 听谈看议 findings, 评语"),
    Tag(name="documents",
        description="工作总结, 述职述廉报告, 自我评价: stored by SHA-256, reads recorded"),
    Tag(name="sanctions", description="Sanctions and open cases that cap or suppress grades"),
    Tag(name="adjustments", description="加减分: proposed and approved score adjustments"),
    Tag(name="grading", description="综合确认评档: seal, committee decisions, publication"),
    Tag(name="appeals", description="复核 and 申诉 within their deadlines"),
    Tag(name="results", description="Composites, ranks, rank change and grades"),
    Tag(name="cases", description="举报: report-line cases, and the record of restricted reads"),
    Tag(name="use of results", description="考核结果运用: decisions resting on a published grade"),
    Tag(name="ledger", description="The public tamper-evident log: checkpoints, proofs"),
    Tag(name="events", description="The event feed (CloudEvents), its SSE stream, the catalogue"),
    Tag(name="webhooks", description="Signed deliveries of the feed's events (Standard Webhooks)"),
    Tag(name="operations", description="Liveness and readiness"),
    Tag(name="auth", description="Keys that verify people's bearer tokens (JWKS)"),
]


def openapi_config(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Kaoping 考评 API",
        version=version,
        description=(
            "Event-sourced, tamper-evident backend for the annual comprehensive evaluation of "
            "leadership teams and cadres (五考两评). Every write returns a receipt: the log "
            "positions and ledger leaf hashes of the events it stored. Errors are RFC 9457 "
            "problem documents naming the field and the rule. See docs/api.md."
        ),
        path="/schema",
        servers=[Server(url="/")],
        tags=TAGS,
        components=Components(security_schemes={
            "ApiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header",
                                     description="A system's API key (kaoping keys create)"),
            "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT",
                                          description="A person's short-lived EdDSA JWT"),
        }),
        render_plugins=[DocsPage(path=["/", "/swagger"])],
    )
