"""What the ballot page and its board say, in Chinese first (English for ``Accept-Language: en``).

The rules are worded from the session's frozen definition — the same numbers the tally applies
(domain/ballots.py ``ballot_problem``, ``top_limit``) — so the page cannot promise one rule and
the count apply another. The server's refusals are shown by their rule (``js.refused``), never
by the problem's English title or detail.
"""

from __future__ import annotations

import base64
import html

from domain.ballots import EvaluationSession, SessionDefinition, SessionState, top_limit
from domain.scheme import SubjectKind
from service.session_files import SubjectName

KIND = {"zh": {SubjectKind.TEAM: "领导班子", SubjectKind.PRINCIPAL: "党政正职",
               SubjectKind.DEPUTY: "副职"},
        "en": {SubjectKind.TEAM: "leadership team", SubjectKind.PRINCIPAL: "principal",
               SubjectKind.DEPUTY: "deputy"}}

# Refusals a voter can meet, by rule; the script falls back on the status, then on "other".
REFUSED_ZH = {
    "credential.valid": "凭证无效：请确认扫描的是本次测评的凭条。",
    "credential.revoked": "该凭条已被作废，请联系组织方。",
    "ballot.credential-used": "该凭条已经投过票，不能再次提交。",
    "ballot.session-open": "本次测评当前不接受投票。",
    "ballot.concurrent-revote": "同一凭条同时提交了两次，请稍后重试。",
    "ballot.refusals-per-client": "无效凭证尝试过多，请稍后再试。",
    "ballot.refusals-per-session": "无效凭证尝试过多，请稍后再试。",
    "session.exists": "找不到本次测评。",
    "400": "提交的内容格式有误，请刷新页面后重新填写。",
    "429": "请求过于频繁，请稍后再试。",
    "5xx": "服务器暂时无法处理，请稍后重试。",
    "network": "网络连接失败，请检查网络后重试。",
    "other": "提交未被接受。",
}
REFUSED_EN = {
    "credential.valid": "This credential is not valid for this session.",
    "credential.revoked": "This slip was revoked; ask the organizers.",
    "ballot.credential-used": "This slip has been used already.",
    "ballot.session-open": "Voting is not open now.",
    "ballot.concurrent-revote": "The slip was used twice at once; try again.",
    "ballot.refusals-per-client": "Too many refused credentials; try again later.",
    "ballot.refusals-per-session": "Too many refused credentials; try again later.",
    "session.exists": "No such session.",
    "400": "The ballot was malformed; reload the page and fill it in again.",
    "429": "Too many requests; try again later.",
    "5xx": "The server could not take the ballot now; try again.",
    "network": "No connection; check the network and try again.",
    "other": "The ballot was not accepted.",
}

TEXT: dict[str, dict[str, str]] = {
    "zh": {"title": "测评", "meta": "{year}年度", "submit": "提交", "rules": "填写说明",
           "board": "公告板（测评结束后公布计票结果与追踪码）", "board_title": "公告板",
           "back": "返回测评页", "json": "公告板数据（JSON）"},
    "en": {"title": "Evaluation", "meta": "Year {year}", "submit": "Submit",
           "rules": "How to fill in",
           "board": "The board (counts and trackers, after the session closes)",
           "board_title": "Board", "back": "Back to the ballot", "json": "Board data (JSON)"},
}

# What ballot.js says (handed to it with the session's rules).
JS_TEXT: dict[str, dict[str, object]] = {
    "zh": {
        "missing": "未找到凭证：请扫描纸质凭条上的二维码。",
        "progress": "已选 {done}/{total} 项。", "ready": "已全部填写，可以提交。",
        "unanswered": "还有 {n} 项未选择：{list}。", "more": "等",
        "top": "“{label}”至多 {limit} 名测评对象，当前 {n} 名：{list}。",
        "identical": "所有项目都选择了同一档次“{label}”，此类选票无效；请按实际情况分别评价。",
        "blocked": "尚不能提交：", "sending": "正在提交……",
        "done": "已提交。您的回执（追踪码，即选票在公开日志中的叶哈希）：",
        "position": "日志位置", "copy": "复制回执", "copied": "已复制",
        "copy_failed": "无法自动复制，请手动选中上面的追踪码复制。",
        "receipt": "测评 {session}\n追踪码（叶哈希）：{tracker}\n日志位置：{position}",
        "check": "测评结束后，可在公告板上查找此追踪码，并用包含证明对照签名检查点验证。",
        "board": "打开公告板", "error": "提交失败：",
        "refused": REFUSED_ZH},
    "en": {
        "missing": "No credential found: scan the QR code on your paper slip.",
        "progress": "{done} of {total} answered.", "ready": "All answered: you can submit.",
        "unanswered": "{n} still to answer: {list}.", "more": "and more",
        "top": "At most {limit} subjects may get “{label}”; you gave it to {n}: {list}.",
        "identical": "Every answer is “{label}”: such a ballot is invalid.",
        "blocked": "Not ready: ", "sending": "Sending…",
        "done": "Submitted. Your receipt (tracker: the ballot's leaf hash in the public log):",
        "position": "log position", "copy": "Copy the receipt", "copied": "Copied",
        "copy_failed": "Could not copy; select the tracker above and copy it.",
        "receipt": "Session {session}\nTracker (leaf hash): {tracker}\nLog position: {position}",
        "check": ("After the session closes, find your tracker on the board and verify its "
                  "inclusion proof against a signed checkpoint."),
        "board": "Open the board", "error": "Not accepted: ",
        "refused": REFUSED_EN},
}

STATE = {
    "zh": {SessionState.DEFINED: "本次测评尚未开始投票，请在组织方宣布开始后再打开此页面。",
           SessionState.FROZEN: "本次测评尚未开始投票，请在组织方宣布开始后再打开此页面。",
           SessionState.OPEN: "本次测评正在投票。",
           SessionState.CLOSED: "本次测评已结束，不再接受投票。计票结果与追踪码见公告板。",
           SessionState.VOIDED: "本次测评已作废，不再接受投票。"},
    "en": {SessionState.DEFINED: "This session is not accepting ballots. Voting has not "
                                 "started yet.",
           SessionState.FROZEN: "This session is not accepting ballots. Voting has not "
                                "started yet.",
           SessionState.OPEN: "Voting is open.",
           SessionState.CLOSED: "This session is not accepting ballots. It has closed: see "
                                "the board for the count.",
           SessionState.VOIDED: "This session is not accepting ballots. It was voided."},
}


def state_text(state: SessionState, lang: str) -> str:
    return STATE[lang][state]


def subject_detail(name: SubjectName, lang: str) -> str:
    """领导班子, or 东风镇 · 党政正职: what tells two subjects of one name apart."""
    kind = KIND[lang].get(name.kind) if name.kind else None
    if name.kind == SubjectKind.TEAM or name.unit is None:
        return kind or ""
    return f"{name.unit} · {kind}" if kind else name.unit


def _pick(lang: str, zh: str, en: str) -> str:
    return zh if lang == "zh" else en


def rules_in_words(d: SessionDefinition, lang: str) -> list[str]:
    """The session's rules as a voter needs them, from the definition the tally uses."""
    rules, sep = d.rules, "、" if lang == "zh" else ", "
    items = sep.join(i.label for i in d.items)
    total = len(d.subjects) * len(d.items)
    out = [_pick(lang, f"请对每位测评对象的每个项目（{items}）各选一项，共 {total} 项；"
                       "有漏选的选票无效。",
                 f"Answer every item ({items}) for every subject: {total} answers; a ballot "
                 "with any left out is invalid.")]
    limit = top_limit(rules, len(d.subjects))
    top = next((o.label for o in d.options if o.code == rules.top_option), None)
    if limit is not None and top is not None:
        out.append(_pick(lang, f"“{top}”至多评给 {limit} 名测评对象（任一项目选了“{top}”"
                               "即计一名）；超过的选票无效。",
                         f"At most {limit} subjects may get “{top}” (on any item); a ballot "
                         "over that is invalid."))
    if (rules.identical_invalid and len(d.subjects) >= rules.identical_min_subjects
            and total > 1):
        out.append(_pick(lang, "所有测评对象的所有项目都选同一档次的选票无效。",
                         "A ballot giving one answer to every item of every subject is "
                         "invalid."))
    uncounted = sep.join(o.label for o in d.options if not o.counted)
    if uncounted:
        out.append(_pick(lang, f"选“{uncounted}”的项目不计入得分。",
                         f"Answers “{uncounted}” are not counted in the score."))
    out.append(_pick(lang, "可以重新提交，以最后一次提交为准。", "You may submit again; the "
                     "last ballot counts.") if rules.revote else
               _pick(lang, "每张凭条只能提交一次，提交后不能更改。",
                     "A slip can be used once; a ballot cannot be changed."))
    out.append(_pick(lang, "无效票计入参加人数，但不计分。选票不记录您的姓名、设备或确切时间。",
                     "Invalid ballots count as present but not in the score. Ballots record "
                     "neither your name, your device nor the exact time."))
    return out


BOARD = {
    "zh": {"pending": "公告板在测评结束后公布。", "outcome_counted": "计票有效。",
           "outcome_quorum-failed": "参加人数未达到规定，本次测评无效，不产生结果。",
           "class": "参评人类别", "eligible": "应到",
           "used": "实到", "valid": "有效票", "invalid": "无效票", "late": "逾时",
           "quorum": "达到规定人数", "yes": "是", "no": "否",
           "trackers": "计入的选票追踪码（共 {n} 张，按值排序）",
           "find": "查找我的追踪码", "found": "找到了：您的选票已计入。",
           "not_found": "未找到此追踪码。", "fingerprint": "会话指纹",
           "state_defined": "尚未开始投票。", "state_frozen": "尚未开始投票。",
           "state_open": "正在投票。", "state_closed": "已结束。", "state_voided": "已作废。"},
    "en": {"pending": "The board is published when the session closes.",
           "outcome_counted": "Counted.",
           "outcome_quorum-failed": "Too few raters took part: the session has no result.",
           "class": "rater class",
           "eligible": "eligible", "used": "present", "valid": "valid", "invalid": "invalid",
           "late": "late", "quorum": "quorum met", "yes": "yes", "no": "no",
           "trackers": "Trackers of the counted ballots ({n}, sorted)",
           "find": "Find my tracker", "found": "Found: your ballot was counted.",
           "not_found": "Not found.", "fingerprint": "session fingerprint",
           "state_defined": "Not open yet.", "state_frozen": "Not open yet.",
           "state_open": "Open.", "state_closed": "Closed.", "state_voided": "Voided."},
}


def board_body(session: EvaluationSession, lang: str) -> str:
    """Participation and the trackers: what a voter checks. Subjects' results are not shown
    here (the JSON board carries the tally)."""
    t, e, result = BOARD[lang], html.escape, session.result
    state = f'<p id="state" role="status">{e(t["state_" + session.state.value])}</p>'
    if result is None:
        return f"{state}<p>{e(t['pending'])}</p>"
    labels = {c.code: c.label for c in session.definition.classes}
    rows = "".join(
        f"<tr><th scope='row'>{e(labels.get(c.rater_class, c.rater_class))}</th>"
        f"<td>{c.eligible}</td><td>{c.used}</td><td>{c.valid}</td><td>{c.invalid}</td>"
        f"<td>{c.late}</td><td>{e(t['yes'] if c.quorum_met else t['no'])}</td></tr>"
        for c in result.classes)
    head = "".join(f"<th scope='col'>{e(t[k])}</th>" for k in
                   ("class", "eligible", "used", "valid", "invalid", "late", "quorum"))
    trackers = sorted(base64.b64encode(bytes.fromhex(h)).decode() for h in session.trackers)
    items = "".join(f"<li><code>{e(x)}</code></li>" for x in trackers)
    return f"""{state}<p id="outcome">{e(t['outcome_' + result.outcome.value])}</p>
<p class="meta">{e(t['fingerprint'])}: <code class="code">{e(session.fingerprint or '')}</code></p>
<div class="table"><table id="classes"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>
</table></div>
<form id="find" data-found="{e(t['found'])}" data-not-found="{e(t['not_found'])}">
<label for="tracker-q">{e(t['find'])}</label> <input id="tracker-q" autocomplete="off"
 spellcheck="false"> <p id="find-result" role="status" aria-live="polite"></p></form>
<h2>{e(t['trackers'].format(n=len(trackers)))}</h2><ol id="trackers">{items}</ol>"""
