"""Examples for the OpenAPI document: for every operation its request body (when it takes one)
and its success response, from the demo city (示范市: 城关镇 XZ-01, cycle 2025).

A table keyed by ``"METHOD /path"`` as the document spells it; api/contract.py attaches each
entry, and every refusal's RFC 9457 example (see ``PROBLEMS``). tests/e2e/test_contract.py fails
on an operation without its examples, and checks every example against its schema in the
document and every request example against the handler's strict decoder — so an example that
stops being true, or a new endpoint without one, fails the build.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, NamedTuple
from uuid import NAMESPACE_URL, uuid5

YEAR = 2025
ORIGIN = "kaoping.example/demo-city"


class Example(NamedTuple):
    request: Any  # the body, or None for an operation without one
    response: Any  # the success response's body
    summary: str = ""


def _hash(label: str) -> str:
    """A base64 SHA-256, shaped like a leaf hash (the demo's values differ run to run)."""
    return base64.b64encode(hashlib.sha256(label.encode()).digest()).decode()


def _hex(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def _id(label: str) -> str:
    return str(uuid5(NAMESPACE_URL, f"https://{ORIGIN}/{label}"))


UNIT_ID = _id("unit/XZ-01")
CYCLE_ID = _id(f"cycle/{YEAR}")
TEAM = "team:XZ-01"
CADRE = "cadre:XZ01-001"
FILE_ID = _id(f"file/{YEAR}/{TEAM}")
SESSION = "mzcp-2025-xz"
SESSION_ID = _id(f"session/{SESSION}")
CASE_ID = _id("case/2025-0007")
SUB_ID = "wh_5f0c2a9e41d7b3c8"
SECRET = "whsec_" + _hash("demo webhook secret")


def _receipt(position: int, stream: str, version: int, topic: str) -> dict[str, Any]:
    return {"position": position, "leaf_hash": _hash(f"leaf {position}"), "stream_id": stream,
            "stream_version": version, "topic": f"kaoping/{topic}.v1",
            "leaf_hash_hex": _hex(f"leaf {position}")}


def _written(position: int, stream: str, version: int, topic: str) -> dict[str, Any]:
    return {"stream_id": stream, "version": version,
            "receipt": [_receipt(position, stream, version, topic)]}


def _cycle(position: int, version: int, topic: str) -> dict[str, Any]:
    return _written(position, CYCLE_ID, version, f"Cycle.{topic}")


def _file(position: int, version: int, topic: str) -> dict[str, Any]:
    return _written(position, FILE_ID, version, f"SubjectFile.{topic}")


def _session(position: int, version: int, topic: str) -> dict[str, Any]:
    return _written(position, SESSION_ID, version, f"EvaluationSession.{topic}")


def _case(position: int, version: int, topic: str) -> dict[str, Any]:
    return _written(position, CASE_ID, version, f"Case.{topic}")


COMMITMENTS_ID = _id(f"commitments/{YEAR}/XZ-01")


def _commitments(position: int, version: int, topic: str) -> dict[str, Any]:
    return _written(position, COMMITMENTS_ID, version, f"UnitCommitments.{topic}")


TARGET: dict[str, Any] = {"code": "JY-1", "measure": "新增城镇就业", "unit_of_measure": "人",
          "target_value": "1200", "direction": "at-least", "responsible": ["XZ01-001"],
          "partners": [], "lead": None, "shares": {}}
SHARED_TARGET = {"code": "ZS-2", "measure": "招商引资到位资金", "unit_of_measure": "万元",
                 "target_value": "50000", "direction": "at-least",
                 "responsible": ["XZ01-001", "XZ01-002"], "partners": ["SW-03"], "lead": None,
                 "shares": {"XZ-01": "0.7", "SW-03": "0.3"}}
COMMITMENTS = {"year": YEAR, "unit": "XZ-01", "published_on": "2025-02-20", "on_behalf": False,
               "version": 3, "targets": [{**TARGET, "target_value": "1300"}, SHARED_TARGET],
               "amendments": [{"code": "JY-1", "change": "changed", "before": TARGET,
                               "after": {**TARGET, "target_value": "1300"},
                               "reason": "市政府下达新增就业任务调增至1300人",
                               "amended_on": "2025-06-30"}],
               "challenges": {"JY-1": 1}}


UNIT = {"id": UNIT_ID, "code": "XZ-01", "name": "城关镇", "kind": "township",
        "category": "platform-1", "version": 1}
CADRE_OUT = {"code": "XZ01-001", "name": "王建国", "unit_code": "XZ-01", "role": "principal",
             "since": "2021-09-01", "version": 1}
TEAM_BANDS = [{"grade": "好", "min_score": "90"}, {"grade": "较好", "min_score": "80"},
              {"grade": "一般", "min_score": "65"}, {"grade": "较差", "min_score": "0"}]
CADRE_BANDS = [{"grade": "优秀", "min_score": "90"}, {"grade": "称职", "min_score": "70"},
               {"grade": "基本称职", "min_score": "60"}, {"grade": "不称职", "min_score": "0"}]
SCHEME = {
    "cycle": YEAR,
    "pools": [
        {"group": "platform-1", "kind": "team",
         "weights": {"commitments": "0.10", "leader-review": "0.25", "democratic": "0.15",
                     "survey": "0.10", "indicators": "0.15", "inspection": "0.10",
                     "analysis": "0.15"},
         "bands": TEAM_BANDS, "quotas": [{"grade": "好", "share": "0.2", "rounding": "floor"}]},
        {"group": "platform-1", "kind": "principal",
         "weights": {"leader-review": "0.35", "democratic": "0.30", "analysis": "0.35"},
         "bands": CADRE_BANDS,
         "quotas": [{"grade": "优秀", "share": "0.2", "rounding": "half-up"}]},
    ],
    "vetoes": [
        {"code": "admonishment", "effect": "cap", "cap_at": "称职", "label": "诫勉"},
        {"code": "open-case", "effect": "no-grade", "reason_code": "5B",
         "label": "立案审查未结案"},
    ],
    "indicators": [{"code": "economy", "name": "经济发展", "owner": "E05", "weight": "0.4",
                    "groups": ["platform-1", "platform-2"]}],
    "satisfaction_threshold": "0.6",
    "leader_post_weights": {"书记": "1.5", "市长": "1.5", "副书记": "1.2"},
    "leader_raters_min": {"team": 3, "principal": 3},
}
ROSTER = [
    {"subject": TEAM, "code": "XZ-01", "name": "城关镇领导班子", "kind": "team",
     "group": "platform-1", "unit_code": "XZ-01"},
    {"subject": CADRE, "code": "XZ01-001", "name": "王建国", "kind": "principal",
     "group": "platform-1", "unit_code": "XZ-01"},
]
RESULT = {
    "subject": TEAM, "code": "XZ-01",
    "components": {"commitments": "92.00", "leader-review": "91.40", "democratic": "88.75",
                   "survey": "86.20", "indicators": "90.10", "inspection": "89.00",
                   "analysis": "91.00"},
    "missing": [], "gate_failed": False, "composite": "90.06", "rank": 1, "previous_rank": 3,
    "rank_change": 2, "banded_grade": "好", "vetoes_applied": [], "proposed_grade": "好",
    "quota_demoted": False, "no_grade_reason": None, "final_grade": "好",
    "decided_by_committee": False,
    "satisfaction_gate": {"threshold": "0.6", "satisfaction": "0.862",
                          "excluded_items": [{"item": "完成老旧小区改造8个",
                                              "satisfaction": "0.54"}]},
}
NOTICE_ID = _id(f"results-notice/{YEAR}")
POOL_ID = _id(f"results-pool/{YEAR}/platform-1/team")
CORRECTION = {
    "version": 2, "position": 1260, "leaf_hash": _hex("leaf 1260"), "basis": "review",
    "reference": f"{TEAM} review", "reason": "经复核，核减重复计算的加分后维持原等次",
    "authority": "市委组织部", "notified_on": "2026-02-10", "actor": "person:staff:swcwh",
    "time": "2026-02-10T02:00:00+00:00", "pools": ["platform-1/team"],
    "results_fingerprint": _hex("results 2025 v2"),
}
DEFINITION = {
    "code": SESSION, "year": YEAR, "kind": "democratic", "title": "2025年度城关镇领导班子民主测评",
    "subjects": [TEAM, CADRE],
    "items": [{"code": "de", "label": "德"}, {"code": "neng", "label": "能"},
              {"code": "qin", "label": "勤"}, {"code": "ji", "label": "绩"},
              {"code": "lian", "label": "廉"}],
    "options": [{"code": "excellent", "label": "优秀", "value": "100"},
                {"code": "good", "label": "称职", "value": "80"},
                {"code": "fair", "label": "基本称职", "value": "60"},
                {"code": "poor", "label": "不称职", "value": "0"},
                {"code": "unknown", "label": "不了解", "value": "0", "counted": False}],
    "classes": [{"code": "cadres", "label": "机关干部", "weight": "0.6", "eligible": 48},
                {"code": "public", "label": "村（社区）代表", "weight": "0.4", "eligible": 30}],
    "rules": {"quorum": "0.5", "quorum_rule": "more-than",
              "quorum_source": "民主测评办法: 实到人数超过应到人数的半数",
              "min_valid": 5, "top_option": "excellent", "max_top_share": "0.3",
              "identical_invalid": True, "identical_min_subjects": 3, "revote": False,
              "granularity_seconds": 3600},
}
TALLY = {
    "version": "kaoping-tally/2",
    "classes": [{"rater_class": "cadres", "eligible": 48, "issued": 48, "used": 45, "valid": 44,
                 "invalid": 1, "late": 0, "quorum_met": True, "required": 25}],
    "subjects": [{"subject": TEAM, "valid_ballots": 44, "withheld": False,
                  "counts": {"de": {"excellent": 30, "good": 12, "fair": 2, "poor": 0}},
                  "class_scores": {"cadres": "92.73"}, "score": "92.73",
                  "withheld_reason": None}],
    "invalid_reasons": {"too-many-top": 1},
    "quorum_failed": [],
}
EVENT = {
    "specversion": "1.0", "id": f"{ORIGIN}/0", "source": f"/{ORIGIN}",
    "type": "kaoping.unit.registered.v1", "time": "2025-01-06T01:30:00+00:00",
    "subject": UNIT_ID, "datacontenttype": "application/json",
    "dataschema": "/api/v1/events/schemas/kaoping.unit.registered.v1",
    "data": {"code": "XZ-01", "name": "城关镇", "kind": "township", "category": "platform-1",
             "actor": "person:staff:zzb-01"},
    "position": 0, "leafhash": _hex("leaf 0"),
}
UNIT_SCHEMA = {
    "$ref": "#/$defs/kaoping.unit.registered.v1",
    "$defs": {"kaoping.unit.registered.v1": {
        "title": "kaoping.unit.registered.v1", "type": "object",
        "properties": {k: {"type": "string"} for k in ("code", "name", "kind", "category",
                                                        "actor")},
        "required": ["code", "name", "kind", "category", "actor"]}},
}
CHECKPOINT = (f"{ORIGIN}\n1208\n{_hash('root 1208')}\n\n"
              f"— {ORIGIN} hI9fwdgsYWdN3rQvK2pLlDqZzq8cFh1mJ0uXn6ReFy0vT2K5e9xJcQ4hVbG8wS"
              "1aO3nDk7LmPz6uYt0RiEo2sH1gQ==\n")
SUBSCRIPTION = {"id": SUB_ID, "url": "https://hr.example.gov.cn/kaoping/hooks",
                "event_types": ["kaoping.cycle.published.v1", "kaoping.unit.registered.v1"],
                "after_position": 1207, "active": True, "paused": False,
                "created_at": "2025-12-01T09:00:00+08:00", "deleted_at": None, "version": 1}
DELIVERY = {"id": 4113, "webhook_id": f"{SUB_ID}.1208", "position": 1208,
            "event_type": "kaoping.cycle.published.v1", "state": "failed", "attempts": 31,
            "next_attempt_at": None, "last_status": 503, "last_error": "HTTP 503",
            "delivered_at": None}

_C = "/api/v1/cycles/{year}"
_S = "/api/v1/cycles/{year}/subjects/{subject}"
_W = "/api/v1/webhooks/subscriptions"

OPERATIONS: dict[str, Example] = {
    # --- operations ---------------------------------------------------------------------------
    "GET /health": Example(None, {"status": "ok"}),
    "GET /ready": Example(None, {
        "ready": True, "store": "ok", "migrations_pending": [], "head_position": 1208,
        "projection_lag": {"units.v1": 0, "cadres.v1": 0, "results.v1": 2, "cases.v1": 0},
        "problems": [], "demo": {"state": "idle", "step": "", "done": 0, "total": 0},
        "ledger": "ok"}),
    "GET /api/v1/operations/rebuild-check": Example(None, {
        "checked_at": "2025-12-02T02:00:00+00:00", "checkpoint": CHECKPOINT,
        "report": {"ok": True, "checkpoint_size": 1208, "positions": {"results.v1": 1207},
                   "tables": [{"table": "kaoping_results", "live_rows": 406,
                               "rebuilt_rows": 406, "live_digest": _hex("results"),
                               "rebuilt_digest": _hex("results"), "differences": []}]}}),
    # --- cycles -------------------------------------------------------------------------------
    "POST /api/v1/cycles": Example({"year": YEAR}, _cycle(1, 1, "Opened")),
    f"GET {_C}": Example(None, {"year": YEAR, "phase": "scoring",
                                "scheme_fingerprint": _hex("scheme 2025"), "subjects": 406,
                                "version": 6}),
    f"PUT {_C}/scheme": Example(SCHEME, _cycle(2, 2, "SchemeSet")),
    f"GET {_C}/scheme": Example(None, {"scheme": SCHEME, "fingerprint": _hex("scheme 2025")}),
    f"POST {_C}/roster": Example({}, _cycle(130, 3, "RosterSet")),
    f"GET {_C}/roster": Example(None, ROSTER),
    f"POST {_C}/freeze": Example({}, _cycle(131, 4, "SchemeFrozen")),
    f"POST {_C}/amendments": Example(
        {"scheme": SCHEME, "reason": "按市委组织部通知调整乡镇平台权重",
         "authority": "市委组织部部务会议纪要〔2025〕12号"}, _cycle(132, 5, "SchemeAmended")),
    f"POST {_C}/announcement": Example(
        {"team_members": ["李明", "张静", "刘洋"], "starts_on": "2025-12-15",
         "ends_on": "2026-01-10", "hotline": "0551-12380"}, _cycle(133, 6, "Announced")),
    f"GET {_C}/announcement": Example(None, {
        "year": YEAR, "subjects": ROSTER, "team_members": ["李明", "张静", "刘洋"],
        "starts_on": "2025-12-15", "ends_on": "2026-01-10", "hotline": "0551-12380",
        "checkpoint": CHECKPOINT}),
    f"POST {_C}/scoring": Example({}, _cycle(134, 7, "ScoringOpened")),
    f"POST {_C}/seal": Example({}, _cycle(1180, 8, "Sealed")),
    f"GET {_C}/proposal": Example(None, {
        "year": YEAR, "phase": "sealed", "results_fingerprint": _hex("results 2025 v1"),
        "approved_fingerprint": _hex("results 2025 v1"), "approved": True}),
    f"POST {_C}/approval": Example(
        {"results_fingerprint": _hex("results 2025 v1"),
         "minutes_ref": "市委常委会会议纪要〔2026〕3号", "authority": "市委常委会"},
        _cycle(1200, 9, "ProposalApproved")),
    f"POST {_C}/publication": Example({"notified_on": "2026-01-20"},
                                      _cycle(1208, 10, "Published")),
    f"GET {_C}/results": Example(None, {
        "year": YEAR, "phase": "published", "next_cursor": None,
        "items": [{"group": "platform-1", "kind": "team", "result": RESULT}],
        "results_version": 2, "results_fingerprint": _hex("results 2025 v2"), "as_of": None,
        "corrections": [CORRECTION]}),
    f"GET {_C}/corrections": Example(None, {
        "year": YEAR, "results_version": 2, "results_fingerprint": _hex("results 2025 v2"),
        "published_position": 1208, "corrections": [CORRECTION]}),
    f"GET {_C}/notice": Example(None, {
        "year": YEAR, "results_version": 1, "opens_on": "2026-01-20", "closes_on": "2026-01-24",
        "state": "open", "objections": 1, "undecided": 1, "final": False, "listed": 2,
        "items": [{"subject": TEAM, "name": "城关镇", "kind": "team", "group": "platform-1",
                   "unit_code": "XZ-01", "grade": "好"},
                  {"subject": CADRE, "name": "李明", "kind": "principal", "group": "platform-1",
                   "unit_code": "XZ-01", "grade": "优秀"}]}),
    f"POST {_S}/objections": Example(
        {"channel": "hotline", "summary": "该同志年内分管领域发生安全事故，评为优秀不妥",
         "reporter": None},
        {"stream_id": FILE_ID, "version": 14,
         "receipt": [_receipt(1215, FILE_ID, 14, "SubjectFile.ObjectionLodged"),
                     _receipt(1216, CASE_ID, 1, "Case.Reported")],
         "case_id": CASE_ID, "follow_up_code": "Qm9sZC1jb2RlLTEy"}),
    f"POST {_S}/objections/{{case}}/decision": Example(
        {"outcome": "upheld", "grade": "称职", "reason": "经核实，异议反映情况属实",
         "minutes_ref": "市委常委会会议纪要〔2026〕5号", "authority": "市委常委会"},
        _file(1240, 15, "ObjectionDecided")),
    f"GET {_C}/notice/status": Example(None, {
        "year": YEAR, "opens_on": "2026-01-20", "closes_on": "2026-01-24", "items": [{
            "subject": CADRE, "name": "李明", "grade": "优秀",
            "objections": [{"case": CASE_ID, "outcome": None}], "undecided": 1,
            "final": False}]}),
    f"POST {_C}/feedback/reviews": Example(
        {"group": "platform-1", "on": "2026-02-10", "by": "市委组织部部长 李某",
         "summary": "共性问题：项目推进慢，群众工作方法单一"},
        _written(1250, _id(f"feedback {YEAR}"), 2, "Feedback.CentralReviewHeld")),
    f"POST {_S}/feedback": Example(
        {"kind": "feedback", "on": "2026-02-12", "by": "市委组织部副部长 王某",
         "summary": "个别反馈：加强分管领域安全生产督导"},
        _written(1251, _id(f"feedback {YEAR}"), 3, "Feedback.SubjectFedBack")),
    f"GET {_S}/feedback": Example(None, {
        "year": YEAR, "subject": CADRE,
        "reviews": [{"group": "platform-1", "held_on": "2026-02-10", "by": "市委组织部部长 李某",
                     "summary": "共性问题：项目推进慢，群众工作方法单一"}],
        "feedback": [{"subject": CADRE, "kind": "notification", "on": "2026-01-20",
                      "by": "市委组织部干部一科", "summary": "书面通知考核等次：优秀"},
                     {"subject": CADRE, "kind": "feedback", "on": "2026-02-12",
                      "by": "市委组织部副部长 王某",
                      "summary": "个别反馈：加强分管领域安全生产督导"}]}),
    f"GET {_C}/feedback/due": Example(None, {
        "year": YEAR, "items": [{"subject": TEAM, "name": "城关镇", "notified": True,
                                 "fed_back": False}]}),
    f"GET {_C}/corrections/pending": Example(None, {
        "year": YEAR, "results_version": 2, "pools": [{
            "group": "platform-1", "kind": "team", "changes": [{
                "subject": TEAM, "published": RESULT,
                "working": {**RESULT, "vetoes_applied": ["warning"], "final_grade": "较好"}}]}]}),
    f"POST {_C}/corrections": Example(
        {"reason": "市纪委监委撤销处分决定，相应调整考核等次", "authority": "市委常委会",
         "reference": "市委常委会会议纪要〔2026〕9号"},
        {"stream_id": NOTICE_ID, "version": 3, "receipt": [
            {**_receipt(1290, NOTICE_ID, 3, "ResultsNotice.Corrected"),
             "topic": "kaoping/ResultsNotice.Corrected.v2"},
            _receipt(1291, POOL_ID, 2, "ResultsPool.Restated")]}),
    f"GET {_C}/exports/results": Example(None, [{
        "year": YEAR, "results_version": 2, "subject": CADRE, "code": "XZ01-001",
        "name": "王建国", "kind": "principal",
        "group": "platform-1", "unit_code": "XZ-01", "composite": "91.35", "rank": 2,
        "previous_rank": 2, "rank_change": 0, "final_grade": "优秀", "a1517": "1",
        "no_grade_reason": None}]),
    f"POST {_S}/uses": Example(
        {"kind": "promotion", "decided_on": "2026-03-15", "authority": "市委常委会",
         "document": "市委干〔2026〕15号", "reason": "年度考核优秀，拟提拔使用"},
        _written(1302, _id("uses 2025 cadre"), 1, "ResultUses.Opened")),
    f"GET {_S}/uses": Example(None, {
        "year": YEAR, "subject": CADRE, "uses": [{
            "kind": "promotion", "grade": "优秀", "results_version": 1,
            "results_fingerprint": _hex("results 2025 v1"), "decided_on": "2026-03-15",
            "authority": "市委常委会", "document": "市委干〔2026〕15号",
            "reason": "年度考核优秀，拟提拔使用", "actor": "person:staff:zzb-01"}]}),
    f"GET {_C}/uses/due": Example(None, {
        "year": YEAR, "items": [{
            "subject": CADRE, "rule": "two-years-lowest",
            "title": "连续两年最低等次 (连续两年不称职)", "years": [2024, 2025],
            "grades": ["不称职", "不称职"],
            "answers": ["post-adjustment", "demotion", "removal", "non-leadership"],
            "answered": False,
            "source": "reference/domain-notes.md §1.5 (连续两年不称职 → 辞退)"}]}),
    # --- 责任承诺考实: a unit's public commitments ------------------------------------------------
    f"POST {_C}/commitments/{{unit}}": Example({"targets": [TARGET, SHARED_TARGET]},
                                              _commitments(40, 1, "Published")),
    f"GET {_C}/commitments": Example(None, {"year": YEAR, "units": [COMMITMENTS]}),
    f"GET {_C}/commitments/{{unit}}": Example(None, COMMITMENTS),
    f"POST {_C}/commitments/{{unit}}/amendments": Example(
        {"code": "JY-1", "target": {**TARGET, "target_value": "1300"},
         "reason": "市政府下达新增就业任务调增至1300人"}, _commitments(52, 2, "Amended")),
    f"POST {_C}/commitments/{{unit}}/targets/{{code}}/challenges": Example(
        {"summary": "新增就业人数含往年已统计人员，请核实"},
        {"stream_id": CASE_ID, "version": 2, "case_id": CASE_ID, "follow_up_code": None,
         "receipt": [_receipt(61, CASE_ID, 1, "Case.Reported"),
                     _receipt(62, CASE_ID, 2, "Case.ReporterIdentified"),
                     _receipt(63, COMMITMENTS_ID, 3, "UnitCommitments.Challenged")]}),
    f"POST {_C}/commitments/{{unit}}/targets/{{code}}/satisfaction": Example(
        {"session": "QZRK-2025-XZ01", "satisfaction": "0.82"},
        _commitments(148, 4, "TargetRated")),
    f"POST {_C}/commitments/{{unit}}/targets/{{code}}/achievement": Example(
        {"achieved": "1265", "evidence": "市人社局就业统计年报〔2025〕"},
        _commitments(150, 4, "AchievementAssessed")),
    # the 考核登记表 (a PDF; shown here by its first line)
    f"GET {_C}/cadres/{{code}}/registration.pdf": Example(None, "%PDF-1.4 (binary)"),
    # --- one subject's file ---------------------------------------------------------------------
    f"POST {_S}/targets": Example(
        {"targets": ["地区生产总值增长6.5%", "新增城镇就业1200人", "完成老旧小区改造8个"]},
        _file(140, 2, "TargetsPublished")),
    f"POST {_S}/targets/assessments": Example(
        {"target": "新增城镇就业1200人", "achieved": True,
         "evidence": "市人社局2025年度就业统计年报"}, _file(900, 3, "TargetAssessed")),
    f"POST {_S}/targets/satisfaction": Example(
        {"session": "qzrk-2025-XZ01", "item": "完成老旧小区改造8个", "satisfaction": "0.54"},
        _file(902, 4, "ItemSatisfactionRecorded")),
    f"POST {_S}/leader-reviews": Example({"score": "92.5", "comment": "班子团结，发展思路清晰"},
                                         _file(901, 4, "LeaderScored")),
    f"PUT {_S}/leader-reviews": Example({"score": "90", "comment": "核实后修订"},
                                        _file(905, 5, "LeaderScored")),
    f"POST {_S}/indicators": Example(
        {"indicator": "economy", "value": "GDP增长6.8%", "score": "94",
         "evidence": "市统计局2025年统计公报"}, _file(910, 6, "IndicatorScored")),
    f"POST {_S}/inspections/score": Example({"score": "89"}, _file(920, 7, "InspectionScored")),
    f"POST {_S}/inspections/notes": Example(
        {"activity": "interview", "notes": "个别谈话12人次，普遍反映班子作风扎实。"},
        _file(921, 8, "InspectionNoted")),
    f"POST {_S}/analysis": Example(
        {"dimension": "economy", "score": "91", "rationale": "主要经济指标均超额完成"},
        _file(930, 9, "AnalysisScored")),
    f"POST {_S}/team": Example({"members": ["khz-01", "khz-02", "khz-03"], "leader": "khz-01"},
                               _file(925, 8, "TeamAssigned")),
    f"POST {_S}/findings": Example(
        {"activity": "deliberate", "summary": "工作总结所列重点项目与现场核实情况一致",
         "strengths": ["重点项目落地快"], "problems": ["招商引资后劲不足"],
         "documents": [_hex("2025年度工作总结.pdf")]}, _file(927, 9, "FindingRecorded")),
    f"POST {_S}/remark": Example({"remark": "班子团结协作，经济发展实绩突出，改革创新后劲有待增强"},
                                 _file(935, 10, "Remarked")),
    f"POST {_S}/documents/{{kind}}/{{name}}": Example(None, _file(880, 2, "DocumentSubmitted")),
    f"GET {_S}/documents": Example(None, [
        {"kind": "work-summary", "sha256": _hex("2025年度工作总结.pdf"), "size": 482133,
         "media_type": "application/pdf", "name": "2025年度工作总结.pdf"}]),
    f"GET {_S}/documents/{{sha256}}": Example(None, "%PDF-1.7 … (the document's bytes)"),
    f"GET {_S}/document-reads": Example(None, [
        {"position": 1301, "reader": "person:team-member:khz-02", "role": "assessment-team",
         "at": "2025-12-20T02:15:00+00:00", "allowed": True, "rule": "document.assigned-member",
         "count": 1},
        {"position": 1305, "reader": "person:leader:sw-02", "role": "leader",
         "at": "2025-12-21T07:40:00+00:00", "allowed": True,
         "rule": "document.reviewing-leader", "count": 1}]),
    f"POST {_S}/evaluations": Example({"session": SESSION, "democratic": "92.73",
                                       "satisfaction": None},
                                      _file(940, 10, "EvaluationRecorded")),
    f"POST {_S}/sanctions": Example(
        {"code": "admonishment", "decided_on": "2025-06-18",
         "source": "市纪委监委诫勉谈话决定书〔2025〕31号"}, _file(950, 11, "SanctionRecorded")),
    f"POST {_S}/sanctions/{{code}}/lift": Example(
        {"reason": "经复查，诫勉决定已依规撤销"}, _file(955, 12, "SanctionLifted")),
    f"POST {_S}/adjustments": Example(
        {"adjustment": "adj-2025-017", "delta": "1.5", "component": "analysis",
         "reason": "获评省级文明村镇", "basis": "考核方案第十二条加分项",
         "evidence": "省文明委表彰文件"}, _file(960, 13, "AdjustmentProposed")),
    f"POST {_S}/adjustments/{{adjustment}}/approval": Example(
        {}, _file(961, 14, "AdjustmentApproved")),
    f"POST {_S}/decisions": Example(
        {"grade": "好", "reason": "综合考核排名第一，实绩突出",
         "minutes_ref": "市委常委会会议纪要〔2026〕2号"}, _file(1190, 15, "CommitteeDecided")),
    f"POST {_S}/reviews": Example({"kind": "review", "reason": "对民主测评结果有异议，申请复核"},
                                  _file(1210, 16, "ReviewRequested")),
    f"POST {_S}/reviews/{{kind}}/decision": Example(
        {"grade": None, "reason": "经复核，原考核结果认定准确，维持原等次",
         "authority": "市委组织部"}, _file(1215, 17, "ReviewDecided")),
    f"POST {_S}/reviews/{{kind}}/extension": Example(
        {"days": 30, "reason": "案情复杂，需补充调查"}, _file(1220, 18, "ReviewExtended")),
    f"GET {_S}/result": Example(None, {**RESULT, "results_version": 2, "as_of": None}),
    f"GET {_S}/explain": Example(None, {
        "year": YEAR, "subject": TEAM, "as_of": 1208, "result": RESULT,
        "weights": {"leader-review": "0.25", "democratic": "0.15"},
        "inputs": [{"position": 901, "leaf_hash": _hex("leaf 901"),
                    "leaf_hash_base64": _hash("leaf 901"), "version": 4,
                    "topic": "kaoping/SubjectFile.LeaderScored.v1", "part": "leader-review",
                    "actor": "person:leader:L01", "time": "2025-12-20T02:14:00+00:00",
                    "facts": {"rater": "leader:L01", "score": "92.5"}}]}),
    f"GET {_S}/diff": Example(None, {
        "year": YEAR, "subject": TEAM, "from_position": 1180, "to_position": 1208,
        "changed": {"final_grade": [None, "好"], "composite": ["89.91", "90.06"]}}),
    f"GET {_S}/history": Example(None, [{
        "position": 1190, "topic": "kaoping/SubjectFile.CommitteeDecided.v1",
        "actor": "person:staff:swcwh", "time": "2026-01-15T08:00:00+00:00",
        "changed": {"final_grade": [None, "好"]}, "by": "self"}, {
        "position": 1204, "topic": "kaoping/SubjectFile.AdjustmentApproved.v1",
        "actor": "person:staff:zzb-02", "time": "2026-01-16T02:30:00+00:00",
        "changed": {"rank": [2, 3]}, "by": "team:XZ-04"}]),
    f"GET {_S}/evidence": Example(None, {
        "format": "kaoping-evidence/3", "origin": ORIGIN, "checkpoint": CHECKPOINT,
        "consistency": {"from_size": 134, "proof": [_hex(f"node {i}") for i in range(2)]},
        "year": YEAR, "subject": TEAM, "group": "platform-1", "kind": "team",
        "score_version": "kaoping-score/3",
        "events": [{"position": 901, "stream_id": FILE_ID, "version": 4,
                    "topic": "kaoping/SubjectFile.LeaderScored.v1",
                    "payload": base64.b64encode(b'{"rater":"leader:L01","score":"92.5"}').decode(),
                    "payload_hash": _hex("payload 901"), "leaf_hash": _hex("leaf 901"),
                    "proof": [_hex(f"node {i}") for i in range(3)]}],
        "results": [{"version": "kaoping-score/3", "group": "platform-1", "kind": "team",
                     "quota_limits": {"好": 1}, "quota_violations": [], "results": [RESULT]}],
        "results_version": 1, "previous_results": None}),
    # --- units and people -----------------------------------------------------------------------
    "POST /api/v1/units": Example(
        {"code": "XZ-01", "name": "城关镇", "kind": "township", "category": "platform-1"},
        {**_written(0, UNIT_ID, 1, "Unit.Registered"), "unit": UNIT}),
    "GET /api/v1/units": Example(None, {"items": [UNIT], "next_cursor": None}),
    "GET /api/v1/units/{unit}": Example(None, UNIT),
    "PATCH /api/v1/units/{unit}": Example(
        {"name": "城关街道", "reason": "经省政府批准撤镇设街道"},
        {**_written(64, UNIT_ID, 2, "Unit.Renamed"),
         "unit": {**UNIT, "name": "城关街道", "version": 2}}),
    "POST /api/v1/cadres": Example(
        {"code": "XZ01-001", "name": "王建国", "unit_code": "XZ-01", "role": "principal",
         "since": "2021-09-01"}, _written(20, _id("cadre/XZ01-001"), 1, "Cadre.Registered")),
    "GET /api/v1/cadres": Example(None, {"items": [CADRE_OUT], "next_cursor": None}),
    "GET /api/v1/cadres/{code}": Example(None, CADRE_OUT),
    "PATCH /api/v1/cadres/{code}": Example(
        {"unit_code": "BM-FGJ", "role": "principal", "since": "2025-07-01",
         "reason": "市委决定调任市发改局局长"},
        _written(300, _id("cadre/XZ01-001"), 2, "Cadre.PostChanged")),
    "POST /api/v1/leaders": Example({"code": "L01", "name": "陈志强"},
                                    _written(40, _id("leader/L01"), 1, "Leader.Registered")),
    "PUT /api/v1/leaders/{code}/posts": Example(
        {"posts": [{"body": "government", "title": "副市长"},
                   {"body": "party-committee", "title": "常委", "unit_code": "BM-GAJ"}],
         "charges": [{"unit_code": "XZ-01", "relation": "liaison"},
                     {"unit_code": "BM-FGJ", "relation": "in-charge"}],
         "since": "2025-01-20", "reason": "市人大选举、市委任命"},
        _written(42, _id("leader/L01"), 2, "Leader.PostsSet")),
    "GET /api/v1/leaders/{code}": Example(None, {
        "code": "L01", "name": "陈志强",
        "posts": [{"body": "government", "title": "副市长", "unit_code": None},
                  {"body": "party-committee", "title": "常委", "unit_code": "BM-GAJ"}],
        "charges": [{"unit_code": "XZ-01", "relation": "liaison"},
                    {"unit_code": "BM-FGJ", "relation": "in-charge"}],
        "since": "2025-01-20", "version": 2}),
    "POST /api/v1/imports": Example(
        {"units": [{"code": "XZ-02", "name": "东关镇", "kind": "township",
                    "category": "platform-2"}],
         "cadres": [{"code": "XZ02-001", "name": "李秀英", "unit_code": "XZ-02",
                     "role": "principal", "since": "2022-03-01"}]},
        _written(41, _id("unit/XZ-02"), 1, "Unit.Registered")),
    # --- evaluation sessions and ballots ------------------------------------------------------
    "POST /api/v1/sessions": Example(DEFINITION, _session(700, 1, "Defined")),
    "GET /api/v1/sessions/{code}": Example(None, {
        "definition": DEFINITION, "state": "open", "fingerprint": _hex("session"),
        "issued": {"cadres": 48, "public": 30}, "cut_position": None, "version": 5,
        "outcome": None, "quorum_failed": []}),
    "POST /api/v1/sessions/{code}/freeze": Example({}, _session(701, 2, "Frozen")),
    "POST /api/v1/sessions/{code}/credentials": Example(
        {"rater_class": "cadres", "count": 2},
        {**_written(702, SESSION_ID, 3, "EvaluationSession.CredentialsIssued"),
         "rater_class": "cadres", "codes": ["Q7RM-2KXD-9F4T-HW8C", "B3NV-6JPA-T2EY-5LMZ"],
         "vote_urls": ["https://kaoping.example.gov.cn/vote/mzcp-2025-xz#c=Q7RM-2KXD-9F4T-HW8C",
                       "https://kaoping.example.gov.cn/vote/mzcp-2025-xz#c=B3NV-6JPA-T2EY-5LMZ"],
         "sheet_svg": "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"595\" height=\"842\">"
                      "…</svg>",
         "sheet_html": "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
                       "<title>2025年度XX镇领导班子民主测评 · 测评凭条（干部）</title>…</html>"}),
    "POST /api/v1/sessions/{code}/credentials/revocations": Example(
        {"credential": "Q7RM-2KXD-9F4T-HW8C", "reason": "选票纸遗失，按规定作废"},
        _session(703, 4, "CredentialRevoked")),
    "POST /api/v1/sessions/{code}/open": Example({}, _session(704, 5, "Opened")),
    "POST /api/v1/sessions/{code}/ballots": Example(
        {"credential": "Q7RM-2KXD-9F4T-HW8C",
         "answers": {TEAM: {"de": "excellent", "neng": "good", "qin": "excellent",
                            "ji": "excellent", "lian": "good"}}},
        {**_written(731, _id("ballot/mzcp-2025-xz/1"), 1, "Ballot.Cast"),
         "session": SESSION, "position": 731, "tracker": _hash("leaf 731")}),
    "POST /api/v1/sessions/{code}/close": Example({}, _session(790, 6, "Closed")),
    "POST /api/v1/sessions/{code}/void": Example(
        {"reason": "发现拉票行为，经核实影响测评公正", "authority": "市委组织部部务会议决定"},
        _session(791, 7, "Voided")),
    "GET /api/v1/sessions/{code}/board": Example(None, {
        "session": SESSION, "fingerprint": _hex("session"), "state": "closed",
        "cut_position": 790, "trackers": [_hash("leaf 731"), _hash("leaf 744")],
        "outcome": "counted", "result": TALLY}),
    # --- report-line cases --------------------------------------------------------------------
    "POST /api/v1/cases": Example(
        {"channel": "hotline", "year": YEAR, "subjects": [CADRE],
         "summary": "反映民主测评前有人打招呼拉票", "reporter": None},
        {**_written(800, CASE_ID, 1, "Case.Reported"), "case_id": CASE_ID,
         "follow_up_code": "JB-7Q4M-XK2D"}),
    "GET /api/v1/cases": Example(None, {"items": [
        {"case_id": CASE_ID, "year": YEAR, "subjects": [CADRE], "state": "assigned",
         "investigator": "person:staff:jw-03"}], "next_cursor": None}),
    "POST /api/v1/investigators": Example(
        {"investigator": "person:staff:jw-03", "name": "市纪委监委 王某"},
        _written(799, _id("investigator/jw-03"), 1, "Investigator.Registered")),
    "GET /api/v1/cases/{case_id}": Example(None, {
        "case_id": CASE_ID, "channel": "hotline", "year": YEAR, "subjects": [CADRE],
        "summary": "反映民主测评前有人打招呼拉票", "state": "assigned",
        "investigator": "person:staff:jw-03", "findings": ["经核查，反映问题部分属实"],
        "outcomes": [], "reporter": None}),
    "POST /api/v1/cases/{case_id}/assignment": Example(
        {"investigator": "person:staff:jw-03"}, _case(801, 2, "Assigned")),
    "POST /api/v1/cases/{case_id}/findings": Example(
        {"finding": "经核查，反映问题部分属实"}, _case(802, 3, "FindingRecorded")),
    "POST /api/v1/cases/{case_id}/outcomes": Example(
        {"kind": "sanction", "subject": CADRE, "reference": "市纪委监委诫勉谈话决定书〔2025〕31号"},
        _case(803, 4, "OutcomeLinked")),
    "POST /api/v1/cases/{case_id}/closure": Example(
        {"conclusion": "问题已查实并处理，予以办结"}, _case(804, 5, "Closed")),
    "GET /api/v1/reports/status": Example(None, {"state": "assigned"}),
    "GET /api/v1/audit/access": Example(None, [{
        "position": 805, "reader": "person:staff:jw-03", "role": "investigator",
        "what": "evidence", "year": YEAR, "subject": CADRE, "case": CASE_ID, "allowed": True,
        "rule": "case.assigned", "at": "2025-12-21T06:30:00+00:00"}]),
    # --- the ledger ---------------------------------------------------------------------------
    "GET /api/v1/ledger/checkpoint": Example(None, CHECKPOINT),
    "GET /api/v1/ledger/checkpoints": Example(None, {"items": [
        {"size": 15877, "key_id": "5e1d7a02", "signed_at": "2026-01-20T02:00:05+00:00",
         "note": "/api/v1/ledger/checkpoint?size=15877"},
        {"size": 15811, "key_id": "5e1d7a02", "signed_at": "2026-01-20T01:59:58+00:00",
         "note": "/api/v1/ledger/checkpoint?size=15811"}],
        "next_cursor": "eyJhZnRlciI6IjE1ODExIiwicXVlcnkiOiIifQ"}),
    "GET /api/v1/ledger/key": Example(None, f"{ORIGIN}+848c5fc1+"
                                            "Ac03ldvCMtZBNk092OLota7GdCUD4TmsqJGN4hvuS/Sg\n"),
    "GET /api/v1/ledger/keys": Example(None, {"keys": [
        {"vkey": f"{ORIGIN}+5e1d7a02+AZQ2k4nN0mW8v3Hc1yQ0T7cFh2lJ9pXsV4bR6eK8tG1a",
         "key_id": "5e1d7a02", "status": "current", "checkpoints": 214, "first_size": 1208,
         "last_size": 15877, "successor": None, "handover_size": None, "retired_at": None,
         "reason": None, "authority": None},
        {"vkey": f"{ORIGIN}+848c5fc1+Ac03ldvCMtZBNk092OLota7GdCUD4TmsqJGN4hvuS/Sg",
         "key_id": "848c5fc1", "status": "retired", "checkpoints": 96, "first_size": 1,
         "last_size": 1208, "successor": f"{ORIGIN}+5e1d7a02+"
         "AZQ2k4nN0mW8v3Hc1yQ0T7cFh2lJ9pXsV4bR6eK8tG1a", "handover_size": 1208,
         "retired_at": "2025-07-01T09:00:00+08:00", "reason": "年度例行密钥轮换",
         "authority": "市委组织部部务会议纪要〔2025〕7号"}]}),
    "GET /api/v1/auth/jwks": Example(None, {"keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
         "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", "use": "sig", "alg": "EdDSA"}]}),
    "GET /api/v1/ledger/leaves": Example(None, [
        {"index": i, "leaf_hash": _hash(f"leaf {i}"), "leaf_hash_hex": _hex(f"leaf {i}")}
        for i in (0, 1)]),
    "GET /api/v1/ledger/proofs/inclusion": Example(None, {
        "index": 901, "size": 1208, "leaf_hash": _hash("leaf 901"),
        "leaf_hash_hex": _hex("leaf 901"),
        "proof": [_hash(f"node {i}") for i in range(3)]}),
    "GET /api/v1/ledger/proofs/consistency": Example(None, {
        "from": 134, "to": 1208, "proof": [_hash(f"node {i}") for i in range(3, 6)]}),
    # --- events -------------------------------------------------------------------------------
    "GET /api/v1/events": Example(None, {"items": [EVENT], "next_after": 0}),
    "GET /api/v1/events/stream": Example(
        None, f"id: 0\nevent: kaoping.unit.registered.v1\ndata: {{\"specversion\":\"1.0\","
              f"\"id\":\"{ORIGIN}/0\",\"type\":\"kaoping.unit.registered.v1\",…}}\n\n"),
    "GET /api/v1/events/catalogue": Example(None, {"kaoping.unit.registered.v1": {
        "topic": "kaoping/Unit.Registered.v1", "version": 1,
        "audience": ["committee", "organizer", "supervisor"], "schema": UNIT_SCHEMA}}),
    "GET /api/v1/events/schemas/{type_name}": Example(None, UNIT_SCHEMA),
    # --- webhooks -----------------------------------------------------------------------------
    f"POST {_W}": Example(
        {"url": "https://hr.example.gov.cn/kaoping/hooks",
         "event_types": ["kaoping.cycle.published.v1", "kaoping.unit.registered.v1"]},
        {"subscription": SUBSCRIPTION, "secret": SECRET}),
    f"GET {_W}": Example(None, {"items": [SUBSCRIPTION], "next_cursor": None}),
    f"GET {_W}/{{subscription_id}}": Example(None, SUBSCRIPTION),
    f"PATCH {_W}/{{subscription_id}}": Example(
        {"paused": True}, {**SUBSCRIPTION, "paused": True, "version": 2},
        "Pause: events are queued, nothing is sent until {\"paused\": false}"),
    f"DELETE {_W}/{{subscription_id}}": Example(
        None, {**SUBSCRIPTION, "active": False, "deleted_at": "2026-02-01T10:00:00+08:00",
               "version": 3}),
    f"GET {_W}/{{subscription_id}}/deliveries": Example(
        None, {"items": [DELIVERY], "next_after": None}),
    f"POST {_W}/{{subscription_id}}/deliveries/{{delivery_id}}/redelivery": Example(
        None, {**DELIVERY, "state": "pending", "attempts": 0, "next_attempt_at": 1769911200.0}),
}

# Path parameters of the problem examples' ``instance`` (``code`` depends on the path).
PATH_VALUES = {"year": str(YEAR), "subject": TEAM, "unit_id": UNIT_ID, "case_id": CASE_ID,
               "subscription_id": SUB_ID, "delivery_id": "4113", "adjustment": "adj-2025-017",
               "kind": "review", "type_name": "kaoping.cycle.published.v1"}
CODES = {"/api/v1/cadres/": "XZ01-001", "/api/v1/sessions/": SESSION,
         "/sanctions/": "admonishment"}

# status -> (problem kind, detail, rule, field): what each refusal typically says.
PROBLEMS: dict[int, tuple[str, str, str | None, str | None]] = {
    400: ("validation", "limit: Expected `int` <= 500", "constraint", "limit"),
    401: ("unauthorized", "send an API key (X-API-Key) or a bearer token "
          "(Authorization: Bearer ...)", "authentication", None),
    403: ("forbidden", "role 'department' may not do this; allowed: organizer", "role", None),
    404: ("not-found", f"no cycle {YEAR + 1}", "cycle.exists", "year"),
    409: ("conflict", f"cycle {YEAR} is in phase sealed; this needs scoring", "cycle.phase",
          None),
    412: ("stale-version", f"unit {UNIT_ID} is at version 2, not 1", "if-match", None),
    413: ("payload-too-large", "Request Entity Too Large", None, None),
    415: ("unsupported-media-type", "send the body as application/json, not text/plain",
          None, None),
    422: ("invalid-input", "score must be a number from 0 to 100, not 105", "score.range",
          "score"),
    428: ("precondition-required", "send If-Match with the resource's ETag; updates must name "
          "the version they change", "if-match.required", "If-Match"),
    429: ("rate-limited", "key:k7f3a9 is over its request rate; retry after 1 s "
          "(KAOPING_RATE_LIMIT_PER_SECOND)", None, None),
    500: ("internal", "An unexpected error occurred; quote the request id when reporting it.",
          None, None),
    503: ("unavailable", "the results read model has not reached position 1208 yet; retry "
          "shortly", None, None),
}
# Refusals particular to an operation, where the generic one would mislead.
SPECIFIC_PROBLEMS: dict[str, dict[int, tuple[str, str, str | None, str | None]]] = {
    f"GET {_C}/notice": {409: ("conflict", f"cycle {YEAR} is not published: there is no notice "
                               "(公示) yet", "notice.window", "year")},
    "GET /api/v1/cases": {403: ("forbidden", "the case list is for investigators (their "
                                "cases) and supervisors", "case.list-readers", None)},
    f"POST {_W}": {422: ("invalid-input", "hooks.internal resolves to a private, link-local "
                         "or reserved address (10.0.0.7); webhooks go only to public addresses",
                         "webhook.url.private", "url")},
    f"PATCH {_W}/{{subscription_id}}": {409: (
        "conflict", f"webhook subscription {SUB_ID} was deleted; subscribe again",
        "webhook.subscription.deleted", None)},
    f"POST {_W}/{{subscription_id}}/deliveries/{{delivery_id}}/redelivery": {409: (
        "conflict", f"webhook subscription {SUB_ID} was deleted; its log is read-only",
        "webhook.subscription.deleted", None)},
    "POST /api/v1/units": {409: ("conflict", "a unit with code 'XZ-01' is already registered",
                                 "unit.code-unique", "code")},
}
for _key in (f"GET {_W}/{{subscription_id}}", f"PATCH {_W}/{{subscription_id}}",
             f"DELETE {_W}/{{subscription_id}}", f"GET {_W}/{{subscription_id}}/deliveries"):
    SPECIFIC_PROBLEMS.setdefault(_key, {})[404] = (
        "not-found", f"you have no webhook subscription {SUB_ID}", "webhook.subscription.exists",
        None)
