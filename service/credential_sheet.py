"""The printable credential sheet (测评凭条): one QR code per credential, ready to cut and hand out.

A standalone HTML page (its style inside it: it is saved from the issuing response and printed,
never served by us), A4, three slips a row. The title names the cycle's year, the session and
the units its subjects belong to; the instructions say how to hand the slips out (at random,
no register of who took which) and how to vote. The sheet lists credentials only: no name, no
number that a register could pair with a person. It is in the response once, like the codes.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import segno

if TYPE_CHECKING:
    from domain.ballots import SessionDefinition
    from service.session_files import SubjectNames

QR_ERROR = "m"  # 15 % of the code may be damaged (a fold, a smudge) and still read
QR_SCALE = 3  # px per module: a version-5 code is 123 px, ~33 mm printed at 96 dpi

STYLE = """@page{size:A4;margin:12mm}
body{font:11pt/1.5 "Noto Sans CJK SC","Noto Serif CJK SC",sans-serif;margin:0;color:#000}
h1{font-size:16pt;margin:0 0 2mm}header p{margin:0 0 1mm}
ol{margin:2mm 0 4mm;padding-left:6mm}
.slips{display:grid;grid-template-columns:repeat(3,1fr)}
.slip{border:1px dashed #777;padding:3mm;text-align:center;break-inside:avoid}
.slip p{margin:1mm 0}.slip svg{display:block;margin:1mm auto}
.code{font:10pt monospace;word-break:break-all}.url{font-size:7pt;word-break:break-all}"""


def vote_url(base: str, session: str, code: str) -> str:
    """What a slip's QR code opens: the code rides in the #fragment, never sent to a server."""
    return f"{base.rstrip('/')}/vote/{session}#c={code}"


def qr_svg(url: str) -> str:
    return str(segno.make(url, error=QR_ERROR).svg_inline(scale=QR_SCALE, border=2,
                                                          title="投票二维码"))


def _instructions(d: SessionDefinition) -> list[str]:
    once = ("同一凭条可重新提交，以最后一次提交为准。" if d.rules.revote
            else "每张凭条只能提交一次，提交后不能更改。")
    return [
        "沿虚线裁开，由参评人当场随机抽取，每人一张；不登记谁领取了哪一张，凭条与姓名不作任何对应。",
        "用手机扫描二维码，在打开的页面上对每位测评对象逐项选择后提交。" + once,
        "提交后页面显示追踪码（回执），请复制或记下；测评结束后可在公告板核对。",
        "凭条遗失或损坏，请告知组织方作废后另发；请勿拍照或转交他人。",
        "打印后请删除本文件：凭证码只在签发时出现这一次，系统不保存。",
    ]


def credential_sheet(d: SessionDefinition, class_label: str, codes: list[str], base: str,
                     names: SubjectNames) -> str:
    """The sheet for one batch of credentials of one rater class."""
    e = html.escape
    units = names.units(d.subjects)
    shown = "、".join(units[:6]) + (f" 等 {len(units)} 个单位" if len(units) > 6 else "")
    slips = "".join(
        f'<div class="slip"><p>{e(d.title)}</p>{qr_svg(vote_url(base, d.code, c))}'
        f'<p>手机扫码投票</p><p class="code">凭证码 {e(c)}</p>'
        f'<p class="url">{e(vote_url(base, d.code, c))}</p></div>' for c in codes)
    steps = "".join(f"<li>{e(s)}</li>" for s in _instructions(d))
    unit_line = f"<p>被测评单位：{e(shown)}</p>" if units else ""
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{e(d.title)} · 测评凭条（{e(class_label)}）</title><style>{STYLE}</style></head>
<body><header><h1>{d.year}年度 · {e(d.title)}</h1>
<p>测评会话：{e(d.code)} · 参评人类别：{e(class_label)} · 本页 {len(codes)} 张凭条</p>
{unit_line}<h2>发放与使用说明</h2><ol>{steps}</ol></header>
<main class="slips">{slips}</main></body></html>"""
