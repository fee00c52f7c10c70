"""Strict request bodies, decoded in one place (``api.mechanisms.strict_body`` uses this).

msgspec checks types and constraints; it cannot see what a body *said* before conversion, so a
second, lexical pass over the same bytes refuses what msgspec would quietly accept:

* a key twice in one object (``{"score": 60, "score": 90}``: which did the rater mean?);
* a string that is not text (``domain.text``), wherever it is, with its path;
* a decimal that is not written plainly: ``Decimal()`` accepts ``"8_0"``, ``"８０"``,
  ``" 80 "``, ``1e-400`` and ``"1e999999999"``, none of which a rater writes for a score.
  A decimal is digits 0-9 with an optional ``-`` and at most MAX_PLACES decimal places,
  as a JSON number or string. Range and the scheme's places are the domain's rules.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import msgspec.inspect as mi

from api.problems import FieldError, msgspec_field_error, msgspec_path, with_allowed
from domain.text import first_non_text

# The most decimal places any number of the method has (a scheme's composite_places, le=6).
MAX_PLACES = 6
PLAIN_DECIMAL = re.compile(rf"-?(0|[1-9][0-9]{{0,14}})(\.[0-9]{{1,{MAX_PLACES}}})?")


class _Number(str):
    """A JSON number kept as written."""

    __slots__ = ()


class _Object(dict[str, Any]):
    """A JSON object that had a key twice (which ones: ``twice``)."""

    __slots__ = ("twice",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.twice: list[str] = []
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                self.twice.append(key)
            seen.add(key)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    made = dict(pairs)
    return made if len(made) == len(pairs) else _Object(pairs)


class _NotJson(ValueError):
    pass


def _constant(name: str) -> Any:
    raise _NotJson(name)


def _parse(raw: bytes) -> Any:
    return json.loads(raw, object_pairs_hook=_object, parse_int=_Number, parse_float=_Number,
                      parse_constant=_constant)


# What a body holding anything but text must contain (a superset: a match only means the exact
# walk runs): a JSON escape of a control character, surrogate or noncharacter, or such a
# character written as itself.
_MAYBE_NOT_TEXT = re.compile(
    rb"\\[bfnrt]|\\u(?:00[0-1]|007[fF]|00[89]|[dD][89a-fA-F]|[fF][dD][dDeE]|[fF]{3}[eEfF]"
    rb"|202[89a-eA-E]|206[6-9])"
    rb"|[\x00-\x1f\x7f]|\xc2[\x80-\x9f]|\xef\xb7[\x90-\xaf]|\xef\xbf[\xbe\xbf]"
    rb"|\xe2\x80[\xa8-\xae]|\xe2\x81[\xa6-\xa9]")


def _join(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}".lstrip(".")


def _lexical(value: Any, path: str, text: bool) -> FieldError | None:
    """Duplicate keys, and (``text``) non-text strings, anywhere in the body (keys included)."""
    if isinstance(value, dict):
        if isinstance(value, _Object):
            name = value.twice[0]
            return FieldError(field=_join(path, name), rule="json.duplicate-key",
                              message=f"the key {name!r} appears more than once in one object")
        for key, item in value.items():
            found = (text and _text_error(key, path, "key")) or _lexical(
                item, _join(path, key), text)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _lexical(item, _join(path, i), text)
            if found:
                return found
    elif text and isinstance(value, str) and not isinstance(value, _Number):
        return _text_error(value, path, "value")
    return None


def _text_error(value: str, path: str, what: str) -> FieldError | None:
    bad = first_non_text(value)
    if bad is None:
        return None
    return FieldError(field=path or "body", rule="text.characters",
                      message=f"the {what} holds {bad}, which is not text (no control "
                              "characters, lone surrogates or noncharacters)")


def _decimals(value: Any, info: mi.Type, path: str) -> FieldError | None:
    """Every value at a Decimal position of the schema must be written as a plain decimal."""
    while isinstance(info, mi.Metadata):
        info = info.type
    if isinstance(info, mi.DecimalType):
        if isinstance(value, str) and not PLAIN_DECIMAL.fullmatch(value):
            return FieldError(field=path or "body", rule="decimal.plain", message=(
                f"{str(value)[:40]!r} is not a plain decimal: write digits 0-9 with an "
                f"optional '-' and at most {MAX_PLACES} decimal places (no exponent, "
                "spaces, '_' or full-width digits)"))
        return None
    children: list[tuple[Any, mi.Type, str]] = []
    if isinstance(info, mi.UnionType):
        children = [(value, t, path) for t in info.types if not isinstance(t, mi.NoneType)]
    elif isinstance(info, mi.StructType) and isinstance(value, dict):
        children = [(value[f.encode_name], f.type, _join(path, f.encode_name))
                    for f in info.fields if f.encode_name in value]
    elif isinstance(info, mi.DictType) and isinstance(value, dict):
        children = [(v, info.value_type, _join(path, k)) for k, v in value.items()]
    elif isinstance(info, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)) and (
            isinstance(value, list)):
        children = [(v, info.item_type, _join(path, i)) for i, v in enumerate(value)]
    for child, child_info, child_path in children:
        found = _decimals(child, child_info, child_path)
        if found:
            return found
    return None


class StrictDecoder:
    """Decodes one request type strictly; ``check`` returns the first error, or None."""

    def __init__(self, struct: type[Any]) -> None:
        self.decoder = msgspec.json.Decoder(struct)
        self.info = mi.type_info(struct)
        self.has_decimals = "DecimalType" in repr(self.info)  # else that walk finds nothing

    def check(self, raw: bytes) -> FieldError | None:
        try:
            tree = _parse(raw)
        except (ValueError, RecursionError):  # not JSON: msgspec words the error better
            tree = None
        else:
            found = _lexical(tree, "", _MAYBE_NOT_TEXT.search(raw) is not None) or (
                _decimals(tree, self.info, "") if self.has_decimals else None)
            if found:
                return found
        try:
            self.decoder.decode(raw)
        except msgspec.DecodeError as exc:
            error = msgspec_field_error(exc)
            return with_allowed(error, self.info, msgspec_path(exc))
        return None
