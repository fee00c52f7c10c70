"""Issue 12: one text type for every string a request may carry, and strict bodies everywhere.

The meta-tests walk every write route of the real app (and its OpenAPI document), so a new
request schema with a bare ``str``, or a new write route without the strict decoder, fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from litestar import Litestar

from api import create_app
from api.strict import MAX_PLACES, PLAIN_DECIMAL, StrictDecoder
from domain.text import GUARD, INVISIBLE, NOT_TEXT, Text, first_non_text, name_text
from service.settings import Settings

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
BAD = re.compile(f"[{NOT_TEXT}]")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Litestar:
    tmp: Path = tmp_path_factory.mktemp("text")
    return create_app(Settings(database_url=f"sqlite:///{tmp / 'unused.db'}"))


def _write_handlers(app: Litestar) -> Iterator[tuple[str, Any]]:
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if WRITES & set(getattr(handler, "http_methods", ())):
                yield route.path, handler


def _strings(info: mi.Type, path: str) -> Iterator[tuple[str, mi.StrType]]:
    while isinstance(info, mi.Metadata):
        info = info.type
    if isinstance(info, mi.StrType):
        yield path, info
    elif isinstance(info, mi.StructType):
        for f in info.fields:
            yield from _strings(f.type, f"{info.cls.__name__}.{f.encode_name}")
    elif isinstance(info, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        yield from _strings(info.item_type, f"{path}[]")
    elif isinstance(info, mi.DictType):
        yield from _strings(info.key_type, f"{path}{{key}}")
        yield from _strings(info.value_type, f"{path}{{value}}")
    elif isinstance(info, mi.UnionType):
        for t in info.types:
            yield from _strings(t, path)


def test_every_string_of_every_request_schema_is_text(app: Litestar) -> None:
    bare: list[str] = []
    seen = 0
    for path, handler in _write_handlers(app):
        data = handler.parsed_fn_signature.parameters.get("data")
        if data is None:
            continue
        for where, info in _strings(mi.type_info(data.annotation), ""):
            seen += 1
            if not (info.pattern or "").startswith(GUARD):
                bare.append(f"{path}: {where}")
    assert seen > 100  # the walk reached the schemas (scheme, sessions, imports ...)
    assert bare == []


def test_every_write_route_with_a_body_decodes_it_strictly(app: Litestar) -> None:
    lax = [f"{sorted(h.http_methods)} {path}" for path, h in _write_handlers(app)
           if "data" in h.parsed_fn_signature.parameters
           and getattr(h.before_request, "__qualname__", "") != "strict_body.<locals>.check"]
    assert lax == []


def test_the_openapi_document_publishes_the_text_rule(app: Litestar) -> None:
    """Top-level required strings carry the pattern in the published document. (Litestar leaves
    msgspec's constraints off list items, dict values and optional fields in OpenAPI; msgspec
    still enforces them, as the walk above proves.)"""
    doc = app.openapi_schema.to_schema()
    unit = doc["components"]["schemas"]["RegisterUnit"]["properties"]
    # a name is not only white space, and has nothing no one sees
    assert unit["name"]["pattern"] == GUARD + rf"(?!\s*$)(?!.*[{INVISIBLE}])"
    assert not re.fullmatch(unit["name"]["pattern"] + ".*", "   ")
    assert not re.fullmatch(unit["name"]["pattern"] + ".*", "东城\u200b街道")
    assert re.fullmatch(unit["name"]["pattern"] + ".*", "东城街道 \u200d👨\u200d👩")
    assert unit["code"]["pattern"].startswith(GUARD)
    assert re.fullmatch(unit["code"]["pattern"], "XZ-01")
    assert not re.fullmatch(unit["code"]["pattern"], "xz-01")
    score = doc["components"]["schemas"]["ScoreIn"]["properties"]["score"]
    assert {s["type"] for s in score["oneOf"]} == {"number", "string"}
    assert [s["pattern"] for s in score["oneOf"] if s["type"] == "string"] == [
        f"^{PLAIN_DECIMAL.pattern}$"]


class Named(msgspec.Struct, forbid_unknown_fields=True):
    name: Text
    score: Decimal | None = None


NAMED = StrictDecoder(Named)


SPECIAL = st.sampled_from(["\x00", "\t", "\x1f", "\x7f", "\x85", "\ud800", "\udfff", "\ufdd0",
                           "\ufffe", "\uffff", "中", "😀", "８", "\u3000",
                           # bidi overrides and isolates are refused; the marks are text
                           "\u202a", "\u202e", "\u2066", "\u2069", "\u200e", "\u200f"])


@given(st.text(alphabet=st.one_of(st.characters(), SPECIAL), max_size=30), st.booleans())
def test_a_string_is_accepted_exactly_when_all_of_it_is_text(value: str, escaped: bool) -> None:
    # Escaped (\\uXXXX: lone surrogates survive) or written as UTF-8 (api/strict.py's quick
    # filter looks for both forms before the exact walk).
    assume(escaped or not re.search("[\ud800-\udfff]", value))
    body = json.dumps({"name": value}, ensure_ascii=escaped).encode()
    error = NAMED.check(body)
    if BAD.search(value):
        assert error is not None
        assert (error.field, error.rule) == ("name", "text.characters")
        bad = first_non_text(value)
        assert bad is not None
        assert bad in error.message
    else:
        assert error is None
        assert msgspec.json.decode(body, type=Named).name == value


@given(st.decimals(allow_nan=False, allow_infinity=False, places=MAX_PLACES,
                   min_value=-10**9, max_value=10**9), st.booleans())
def test_a_plainly_written_decimal_is_accepted_as_number_or_string(value: Decimal,
                                                                  as_string: bool) -> None:
    written = format(value, "f")
    if "." in written:
        written = written.rstrip("0").rstrip(".") or "0"
    literal = json.dumps(written) if as_string else written
    assert NAMED.check(f'{{"name": "x", "score": {literal}}}'.encode()) is None


@given(st.integers(min_value=0, max_value=999), st.sampled_from(
    ["{}e0", "{}E2", "{}_0", " {}", "{} ", "+{}", "0{}", "{}.", ".{}", "{}.1234567"]))
def test_other_spellings_of_a_number_are_refused(n: int, spelling: str) -> None:
    for literal in (json.dumps(spelling.format(n)), spelling.format(n)):
        if literal != literal.strip():
            continue  # white space around a bare number is JSON's, not the number's
        try:
            json.loads(literal)
        except ValueError:
            continue  # not even JSON as a bare number: msgspec refuses it as syntax
        error = NAMED.check(f'{{"name": "x", "score": {literal}}}'.encode())
        assert error is not None
        assert (error.field, error.rule) == ("score", "decimal.plain")


def test_a_name_is_not_only_white_space() -> None:
    class Unit(msgspec.Struct):
        name: Annotated[str, name_text(max_length=20)]

    decoder = StrictDecoder(Unit)
    for blank in ("", "   ", "\u3000", " \u3000 "):
        error = decoder.check(json.dumps({"name": blank}).encode())
        assert error is not None and error.field == "name", blank
    for name in ("城关镇", " 城关镇 ", "A"):
        assert decoder.check(json.dumps({"name": name}).encode()) is None, name
    # The spoofing case from a review: a right-to-left override in a unit's name.
    error = decoder.check(json.dumps({"name": "城关\u202e镇"}).encode())
    assert error is not None and (error.rule, error.field) == ("text.characters", "name")


def test_rules_added_later_refuse_requests_but_never_a_stored_event() -> None:
    """The types' patterns also apply when the mapper decodes a stored event. A rule added
    after events were stored (line separators, invisible characters in names) is a request
    rule only: an event stored before it must still read."""
    class Stored(msgspec.Struct):
        title: Annotated[str, name_text(max_length=40)]
        label: Text

    stored = json.dumps({"title": "城关\u200b镇\u2028", "label": "甲\u2029乙"},
                        ensure_ascii=False).encode()
    assert msgspec.json.decode(stored, type=Stored).title == "城关\u200b镇\u2028"
    error = StrictDecoder(Stored).check(stored)
    assert error is not None and (error.rule, error.field) == ("text.characters", "title")
