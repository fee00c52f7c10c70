"""考核登记表: a cadre's annual appraisal registration form, as a PDF for the 干部档案.

The form states the cadre's name, unit, post and year, the published grade, and what ties the
paper to the evidence: the results version in force and its fingerprint, the ledger leaf of the
event that made that version, and the first signed checkpoint that covers it (anyone can check
the leaf's inclusion with ``GET /api/v1/ledger/proofs/inclusion``). 本人总结 and 评语 are
printed when the cycle holds them; otherwise the form says they are not recorded here.

Rendering is pure: the same form gives the same bytes. reportlab writes with its built-in CID
font ``STSong-Light`` (no font file needed), in invariant mode (no random document id), with the
document's dates set from the publication time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from domain.cycle import Cycle, Phase
from domain.errors import Conflict, NotFound
from domain.scheme import SubjectKind
from service.ledger.reads import read_leaves

if TYPE_CHECKING:
    from service.runtime import Services

FONT = "STSong-Light"  # reportlab's built-in CID font (Adobe-GB1): nothing to install
POSTS = {SubjectKind.PRINCIPAL: "党政正职", SubjectKind.DEPUTY: "副职"}


@dataclass(frozen=True)
class RegistrationForm:
    year: int
    code: str
    name: str
    unit: str
    post: str
    grade: str | None
    no_grade_reason: str | None
    decided_by_committee: bool
    summary: str | None  # 本人总结, when the cycle holds one
    appraisal: str | None  # 评语, when the cycle holds one
    results_version: int
    results_fingerprint: str
    score_version: str
    notified_on: str
    leaf_position: int
    leaf_hash: str
    checkpoint_size: int | None
    checkpoint_root: str | None
    published_at: datetime


def _summary(file: object) -> str | None:
    """本人总结: the cadre's own documents in the file (自我评价, 述职述廉报告), named with
    their SHA-256 so the paper points at the exact bytes the assessment team read."""
    documents: dict[str, dict[str, object]] = getattr(file, "documents", {})
    lines = [f"{label}《{doc['name']}》SHA-256 {doc['sha256']}"
             for kind, label in (("self-evaluation", "自我评价"), ("duty-report", "述职述廉报告"))
             if (doc := documents.get(kind))]
    return "；".join(lines) or None


def registration_form(services: Services, year: int, code: str) -> RegistrationForm:
    """The form of cadre ``code`` for ``year`` from the published results in force (409
    ``registration.published`` before publication; 404 for a cadre not on the roster)."""
    cycle = services.evaluation.cycle(year)
    subject = f"cadre:{code}"
    entry = next((e for e in cycle.roster if e.subject == subject), None)
    if entry is None:
        msg = f"cadre {code} is not on the roster of cycle {year}"
        raise NotFound(msg, rule="registration.cadre", field="code")
    published = services.evaluation.published(year)
    if cycle.phase != Phase.PUBLISHED or published is None:
        msg = (f"cycle {year} is not published: the 考核登记表 records the published grade, "
               "so it exists from publication on")
        raise Conflict(msg, rule="registration.published", field="year")
    result = published.result_of(subject)
    if result is None:  # pragma: no cover -- every roster subject is in the results
        msg = f"{subject} has no published result"
        raise NotFound(msg, rule="registration.published", field="code")
    leaf = read_leaves(services.db, [published.position])[0]
    with services.db.read() as cur:
        cur.execute("SELECT size, root FROM kaoping_checkpoints WHERE size > %s "
                    "ORDER BY size LIMIT 1", (published.position,))
        row = cur.fetchone()
    published_at = next(e.timestamp for e in services.store.events.get(cycle.id)
                        if isinstance(e, Cycle.Published))
    unit = services.reference.unit(entry.unit_code).name
    file = services.evaluation.file(year, subject)
    return RegistrationForm(
        year=year, code=entry.code, name=entry.name, unit=unit,
        post=POSTS.get(entry.kind, ""),
        grade=result.final_grade, no_grade_reason=result.no_grade_reason,
        decided_by_committee=result.decided_by_committee,
        summary=_summary(file), appraisal=getattr(file, "remark", None),
        results_version=published.version, results_fingerprint=published.fingerprint,
        score_version=published.score_version, notified_on=published.notified_on,
        leaf_position=leaf.position, leaf_hash=leaf.leaf_hash.hex(),
        checkpoint_size=int(row[0]) if row else None,
        checkpoint_root=bytes(row[1]).hex() if row else None,
        published_at=published_at.astimezone(UTC))


def render(form: RegistrationForm) -> bytes:
    """The form as a one-page A4 PDF; the same form always gives the same bytes."""
    from reportlab.lib.pagesizes import A4  # noqa: PLC0415 -- only this read needs it
    from reportlab.pdfbase import pdfmetrics  # noqa: PLC0415
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont  # noqa: PLC0415
    from reportlab.pdfgen.canvas import Canvas  # noqa: PLC0415

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    out = io.BytesIO()
    pdf = Canvas(out, pagesize=A4, invariant=1, pageCompression=0)
    stamp = form.published_at.strftime("D:%Y%m%d%H%M%S+00'00'")
    pdf.setDateFormatter(lambda *_: stamp)
    pdf.setTitle(f"{form.year}年度干部考核登记表 {form.name}")
    pdf.setAuthor("Kaoping 考评")
    pdf.setSubject(f"cadre:{form.code} {form.year} results v{form.results_version}")
    pdf.setCreator("Kaoping 考评")
    width, height = A4
    y = height - 72
    pdf.setFont(FONT, 18)
    pdf.drawCentredString(width / 2, y, f"{form.year}年度干部考核登记表")
    y -= 40

    def line(label: str, value: str, size: int = 12) -> None:
        nonlocal y
        pdf.setFont(FONT, size)
        pdf.drawString(72, y, f"{label}：")
        for i, chunk in enumerate(_wrap(value, 34 if size >= 11 else 60)):
            pdf.drawString(160, y - i * (size + 6), chunk)
        y -= max(1, len(_wrap(value, 34 if size >= 11 else 60))) * (size + 6) + 8

    grade = form.grade or f"不确定等次（{form.no_grade_reason or '—'}）"
    line("姓名", form.name)
    line("单位", form.unit)
    line("职务", form.post or "—")
    line("考核年度", f"{form.year}年度")
    line("本人总结", form.summary or "（本系统未收到本人总结，以纸质材料为准）")
    line("评语", form.appraisal or "（本系统未记录评语）")
    line("考核等次", grade + ("（经市委审定）" if form.decided_by_committee else ""))
    line("结果通报", f"{form.notified_on} 书面通知")
    y -= 12
    pdf.setFont(FONT, 10)
    pdf.drawString(72, y, "证据链（可在公开账本中核验）")
    y -= 20
    line("结果版本", f"第{form.results_version}版（{form.score_version}）", 9)
    line("结果指纹", form.results_fingerprint, 9)
    line("账本叶子", f"位置 {form.leaf_position}，哈希 {form.leaf_hash}", 9)
    checkpoint = (f"树大小 {form.checkpoint_size}，根 {form.checkpoint_root}"
                  if form.checkpoint_size is not None else "尚无覆盖该叶子的签名检查点")
    line("签名检查点", checkpoint, 9)
    line("核验方法", f"GET /api/v1/ledger/proofs/inclusion?index={form.leaf_position}"
         f"&size={form.checkpoint_size or '…'}", 9)
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def _wrap(text: str, width: int) -> list[str]:
    """Hard-wrap at ``width`` characters (Chinese text has no spaces to break at)."""
    return [text[i:i + width] for i in range(0, len(text), width)] or [""]
