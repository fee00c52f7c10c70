"""Text (文本) as the system accepts it: the one string type of every request schema.

A name or reason is text a person wrote: never a control character (C0 U+0000-U+001F, DEL,
C1 U+0080-U+009F; in requests, nor the line and paragraph separators U+2028, U+2029, since
no line break is), a bidirectional embedding, override or isolate (U+202A-U+202E,
U+2066-U+2069: they reorder what a reader sees, so a name on a public page could pose as
another -- "Trojan Source", CVE-2021-42574; the marks U+200E/U+200F stay, as mixed-direction
text needs them), a lone surrogate or a noncharacter (U+FDD0-U+FDEF, U+FFFE, U+FFFF).
A name (``name_text``) also has at least one character that is not white space; a unit's,
cadre's or leader's name in a request (``visible_name_text``) none that no one sees either. A NUL
cannot even be stored in a PostgreSQL ``text`` column: accepted once into the append-only log,
it would stop the read models that copy it for ever. Ordinary CJK, emoji and full-width forms
are text. Every request schema declares its strings as ``Annotated[str, text(...)]``; the
pattern below is then checked by msgspec at decode time and documented in OpenAPI.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

from domain.errors import InvalidInput

# Written with escapes so the pattern itself is printable ASCII (it is published in OpenAPI).
_CONTROLS_AND_NONCHARACTERS = (r"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
                               r"\ufdd0-\ufdef\ufffe\uffff")
# The line and paragraph separators are refused in every request (api/strict.py's walk and the
# imports use NOT_TEXT) but are not in GUARD: the types' patterns are also applied when stored
# events are decoded (service/mapper.py), and an event stored before this rule must still read.
_SEPARATORS = r"\u2028\u2029"
NOT_TEXT = _CONTROLS_AND_NONCHARACTERS + _SEPARATORS + r"\ud800-\udfff"
# Every text pattern begins with this look-ahead; a field's own pattern (a code's shape)
# follows it, so both hold. Lone surrogates are left out of it: a regex engine over Unicode
# scalar values (most JSON Schema validators) cannot even name them, and a request body with
# one is refused before any schema is applied (api/strict.py; msgspec cannot decode one).
GUARD = rf"^(?=[^{_CONTROLS_AND_NONCHARACTERS}]*$)"
_FIRST_BAD = re.compile(rf"[{NOT_TEXT}]")


def text(*, min_length: int | None = None, max_length: int | None = None,
         pattern: str | None = None, **meta: Any) -> msgspec.Meta:
    """The constraints of a text field: ``Annotated[str, text(max_length=100)]``."""
    own = (pattern or "").removeprefix("^")
    return msgspec.Meta(pattern=GUARD + own, min_length=min_length, max_length=max_length,
                        **meta)


# Characters no one sees, which would let one name pose as another on a list: the soft
# hyphen, the zero-width space, the word joiner and invisible operators, the BOM. (ZWJ and
# ZWNJ join emoji and some scripts; the direction marks U+200E, U+200F and U+061C are
# needed by mixed-direction names: they stay.)
INVISIBLE = r"\u00ad\u200b\u2060-\u2064\ufeff"
NAME_FORM = ("at least one visible character, and none that no one sees (soft hyphen U+00AD, "
             "zero-width space U+200B, word joiner and invisible operators U+2060-U+2064, "
             "BOM U+FEFF)")


_VISIBLE_NAME = rf"^(?!\s*$)(?!.*[{INVISIBLE}])"  # the schema's pattern and check_name's


def name_text(*, max_length: int, **meta: Any) -> msgspec.Meta:
    """A name or title: text, not empty and not only white space (``"   "`` names nothing)."""
    return text(min_length=1, max_length=max_length, pattern=r"^(?!\s*$)", **meta)


def visible_name_text(*, max_length: int, **meta: Any) -> msgspec.Meta:
    """A unit's, cadre's or leader's name in a request schema: ``name_text`` without invisible
    characters (``INVISIBLE``), refused as ``name.visible``. Only for request types: a stored
    event's type keeps ``name_text``, so what was stored before this rule still decodes."""
    return text(min_length=1, max_length=max_length, pattern=_VISIBLE_NAME,
                extra={"rule": "name.visible", "form": NAME_FORM}, **meta)


def first_non_text(value: str) -> str | None:
    """The first character that is not text, as ``U+XXXX``; None when all of it is text."""
    found = _FIRST_BAD.search(value)
    return None if found is None else f"U+{ord(found.group()):04X}"


Text = Annotated[str, text()]


# A unit's, cadre's or leader's code: its stream id is derived from it, so two spellings of one
# code would be two units. Capital letters only: "t02" beside "T02" would be another unit
# posing as the first (same name, another id).
CODE_PATTERN = r"^[A-Z0-9][A-Z0-9-]{0,31}$"
CODE_FORM = ("1 to 32 capital letters A-Z, digits 0-9 and '-', not starting with '-' (no "
             "lower case, spaces, full-width or invisible characters)")
_CODE = re.compile(CODE_PATTERN)


def code_text(**meta: Any) -> msgspec.Meta:
    """A new unit's, cadre's or leader's code in a request schema; refused as ``code.format``.
    (A reference to an existing unit keeps the older, wider form: units registered before
    this rule may have lower-case codes.)"""
    return text(pattern=CODE_PATTERN, extra={"rule": "code.format", "form": CODE_FORM}, **meta)


def check_code(value: str, field: str = "code") -> str:
    """The same rule where no request schema applies (imports, the command line)."""
    if not _CODE.fullmatch(value):
        msg = f"{value[:40]!r} is not a code: {CODE_FORM}"
        raise InvalidInput(msg, rule="code.format", field=field)
    return value


NAME_MAX = 100  # a unit's, cadre's or leader's name, as the request schemas hold it


def check_name(value: str, field: str = "name") -> str:
    """A name where no request schema applies (imports): as ``visible_name_text``."""
    if not re.search(_VISIBLE_NAME, value, re.DOTALL):
        msg = f"{field}: {NAME_FORM}"
        raise InvalidInput(msg, rule="name.visible", field=field)
    if len(value) > NAME_MAX:
        msg = f"{field}: at most {NAME_MAX} characters, not {len(value)}"
        raise InvalidInput(msg, rule="name.length", field=field)
    return value
