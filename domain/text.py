"""Text (文本) as the system accepts it: the one string type of every request schema.

A name or reason is text a person wrote: never a control character (C0 U+0000-U+001F, DEL,
C1 U+0080-U+009F), a bidirectional embedding, override or isolate (U+202A-U+202E,
U+2066-U+2069: they reorder what a reader sees, so a name on a public page could pose as
another -- "Trojan Source", CVE-2021-42574; the marks U+200E/U+200F stay, as mixed-direction
text needs them), a lone surrogate or a noncharacter (U+FDD0-U+FDEF, U+FFFE, U+FFFF).
A name (``name_text``) also has at least one character that is not white space. A NUL
cannot even be stored in a PostgreSQL ``text`` column: accepted once into the append-only log,
it would stop the read models that copy it for ever. Ordinary CJK, emoji and full-width forms
are text. Every request schema declares its strings as ``Annotated[str, text(...)]``; the
pattern below is then checked by msgspec at decode time and documented in OpenAPI.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

# Written with escapes so the pattern itself is printable ASCII (it is published in OpenAPI).
_CONTROLS_AND_NONCHARACTERS = (r"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
                               r"\ufdd0-\ufdef\ufffe\uffff")
NOT_TEXT = _CONTROLS_AND_NONCHARACTERS + r"\ud800-\udfff"
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


def name_text(*, max_length: int, **meta: Any) -> msgspec.Meta:
    """A name or title: text, not empty and not only white space (``"   "`` names nothing)."""
    return text(min_length=1, max_length=max_length, pattern=r"^(?!\s*$)", **meta)


def first_non_text(value: str) -> str | None:
    """The first character that is not text, as ``U+XXXX``; None when all of it is text."""
    found = _FIRST_BAD.search(value)
    return None if found is None else f"U+{ord(found.group()):04X}"


Text = Annotated[str, text()]
