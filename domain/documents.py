"""Documents of a subject (考核材料): 工作总结, 述职述廉报告, 自我评价 — stored by content.

The seed method sends each unit's 工作总结 and each principal's 述职述廉报告 to the reviewing city
leaders, and the assessment team's 议 analyses 工作总结, 述职报告 and 自我评价 together. A
document is identified by the SHA-256 of its bytes; the subject's file records the hash, kind,
size, media type and name; the bytes are stored once, by hash, never changed.
"""

from __future__ import annotations

import hashlib
import re

from domain.errors import InvalidInput
from domain.scheme import SubjectKind
from domain.text import first_non_text

_CADRES = frozenset({SubjectKind.PRINCIPAL, SubjectKind.DEPUTY})
# kind -> (name, the subject kinds it belongs to)
DOCUMENT_KINDS: dict[str, tuple[str, frozenset[SubjectKind]]] = {
    "work-summary": ("工作总结", frozenset({SubjectKind.TEAM})),
    "duty-report": ("述职述廉报告", _CADRES),
    "self-evaluation": ("自我评价", _CADRES),
}
# What a reviewer can open without conversion: PDF, OFD (GB/T 33190, the national format for
# official documents), Word (.docx) and plain UTF-8 text.
MEDIA_TYPES = (
    "application/pdf",
    "application/ofd",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "text/plain",
)
SHA256 = re.compile(r"^[0-9a-f]{64}$")
NAME_MAX = 200


def content_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def check_kind(kind: str, subject_kind: SubjectKind) -> str:
    if kind not in DOCUMENT_KINDS:
        msg = f"kind must be one of {', '.join(DOCUMENT_KINDS)}"
        raise InvalidInput(msg, rule="document.kind", field="kind")
    name, kinds = DOCUMENT_KINDS[kind]
    if subject_kind not in kinds:
        msg = f"a {subject_kind.value} has no {kind} ({name})"
        raise InvalidInput(msg, rule="document.kind", field="kind")
    return kind


def check_media_type(content_type: str) -> str:
    """The media type of the upload; text must be UTF-8 (no other charset is accepted)."""
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    charset = params.strip().lower().replace(" ", "")
    if media not in MEDIA_TYPES or (charset and charset not in {"charset=utf-8", "charset=utf8"}):
        msg = f"the media type must be one of {', '.join(MEDIA_TYPES)}, not {content_type!r}"
        raise InvalidInput(msg, rule="document.media-type", field="content-type")
    return media


def check_name(name: str) -> str:
    bad = first_non_text(name)
    if not name.strip() or len(name) > NAME_MAX or bad is not None or "/" in name:
        msg = f"the document's name must be 1 to {NAME_MAX} characters of text, without '/'"
        raise InvalidInput(msg, rule="document.name", field="name")
    return name


def check_content(content: bytes, media: str, max_bytes: int) -> None:
    if not content:
        msg = "the document is empty"
        raise InvalidInput(msg, rule="document.size", field="body")
    if len(content) > max_bytes:
        msg = f"the document is larger than {max_bytes} bytes"
        raise InvalidInput(msg, rule="document.size", field="body")
    if media == "text/plain":
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            msg = "a text/plain document must be UTF-8"
            raise InvalidInput(msg, rule="document.media-type", field="content-type") from None
    if media == "application/pdf" and not content.startswith(b"%PDF-"):
        msg = "the body is not a PDF (it does not begin with %PDF-)"
        raise InvalidInput(msg, rule="document.media-type", field="content-type")
