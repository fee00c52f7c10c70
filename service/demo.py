"""The demo city (示范市): a realistic jurisdiction run through two cycles to publication.

15 townships in two platforms, 100+ departments in six categories, their teams and ~1,000
cadres; city leaders, functional departments owning indicators, an assessment team and a
committee. Everything goes through the same use cases (and so the same events, rules and
ledger) as the API. Same seed, same city and same results; ``--units``/``--cadres`` scale it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from domain.ballots import Item, Option, RaterClass, Rules, SessionDefinition, SessionKind
from domain.cycle import RosterEntry
from domain.people import PostRole
from domain.scheme import (
    Component,
    GradeBand,
    IndicatorDef,
    PoolRule,
    PublicationPolicy,
    Quota,
    Scheme,
    SubjectKind,
    Veto,
)
from domain.units import CATEGORIES, UnitKind
from service.principals import Identity, IdentityKind, Principal, Role

if TYPE_CHECKING:
    from service.runtime import Services

YEARS = (2024, 2025)
TOWNSHIP_NAMES = [
    "城关", "东关", "西关", "南关", "北关", "河口", "石桥", "青山", "白塔", "柳林", "新华", "红旗",
    "大庄", "李村", "王集", "张店", "高桥", "龙泉", "马庄", "杨柳",
]
DEPARTMENT_NAMES = {
    "party-government": ["办公室", "组织部", "宣传部", "统战部", "政法委", "编办", "信访局",
                         "机关工委", "党校", "档案馆", "政研室", "督查室", "外事办", "台办",
                         "老干部局", "保密局", "网信办", "史志办"],
    "economic-management": ["发改局", "工信局", "财政局", "商务局", "统计局", "审计局",
                            "自然资源局", "住建局", "交通局", "农业农村局", "水利局", "文旅局",
                            "国资委", "金融办", "科技局", "招商局", "粮食局", "供销社"],
    "social-development": ["教育局", "卫健委", "民政局", "人社局", "退役军人局", "医保局",
                           "体育局", "残联", "红十字会", "妇幼保健院", "广电中心", "图书馆",
                           "博物馆", "疾控中心", "养老服务中心", "社保中心", "就业中心"],
    "law-enforcement-supervision": ["公安局", "司法局", "市场监管局", "生态环境局", "应急局",
                                    "城管局", "综合执法局", "检察院", "法院", "纪委监委",
                                    "林业局", "安监站", "质监所", "交警大队", "消防救援大队",
                                    "药监所", "稽查局"],
    "mass-organisations": ["总工会", "团市委", "妇联", "科协", "工商联", "文联", "侨联",
                           "社科联", "残疾人托养中心", "融媒体中心", "城投公司", "农科所",
                           "水文站", "气象服务中心", "规划院", "测绘院", "勘察院"],
    "vertical": ["税务局", "气象局", "烟草局", "邮政局", "电力局", "电信公司", "人民银行",
                 "海关", "国家统计调查队", "移动公司", "联通公司", "石油公司", "盐务局",
                 "铁路站段", "供电公司", "邮储银行"],
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰文斌海波宁晨"


@dataclass
class Progress:
    """What /ready shows while the demo city loads in the background."""

    state: str = "idle"  # idle | loading | done | failed | present (loaded on an earlier start)
    step: str = ""
    done: int = 0
    total: int = 0
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def advance(self, step: str, n: int = 1) -> None:
        with self.lock:
            self.step, self.done = step, self.done + n


def _person(role: Role, kind: IdentityKind, ident: str) -> Principal:
    return Principal(id=f"person:{kind.value}:{ident}", name=ident, role=role,
                     acts_as=Identity(kind, ident), via="demo")


def demo_scheme(year: int) -> Scheme:
    team_bands = [GradeBand("好", Decimal(90)), GradeBand("较好", Decimal(80)),
                  GradeBand("一般", Decimal(65)), GradeBand("较差", Decimal(0))]
    cadre_bands = [GradeBand("优秀", Decimal(90)), GradeBand("称职", Decimal(70)),
                   GradeBand("基本称职", Decimal(60)), GradeBand("不称职", Decimal(0))]
    team_weights = {Component.COMMITMENTS: Decimal("0.10"),
                    Component.LEADER_REVIEW: Decimal("0.25"),
                    Component.DEMOCRATIC: Decimal("0.15"), Component.SURVEY: Decimal("0.10"),
                    Component.INDICATORS: Decimal("0.15"), Component.INSPECTION: Decimal("0.10"),
                    Component.ANALYSIS: Decimal("0.15")}
    cadre_weights = {Component.LEADER_REVIEW: Decimal("0.35"),
                     Component.DEMOCRATIC: Decimal("0.30"), Component.ANALYSIS: Decimal("0.35")}
    groups = [*CATEGORIES[UnitKind.TOWNSHIP], *CATEGORIES[UnitKind.DEPARTMENT]]
    pools = []
    for group in groups:
        pools.append(PoolRule(group, SubjectKind.TEAM, team_weights, team_bands,
                              [Quota("好", Decimal("0.2"), "floor")]))
        for kind in (SubjectKind.PRINCIPAL, SubjectKind.DEPUTY):
            pools.append(PoolRule(group, kind, cadre_weights, cadre_bands,
                                  [Quota("优秀", Decimal("0.2"), "half-up")]))
    return Scheme(
        cycle=year, pools=pools,
        vetoes=[Veto("warning", "cap", cap_at="称职", label="党内警告/政务警告"),
                Veto("admonishment", "cap", cap_at="称职", label="诫勉"),
                Veto("serious-warning", "no-grade", reason_code="5", label="严重警告/记过"),
                Veto("removal", "force-lowest", label="撤销党内职务"),
                Veto("open-case", "no-grade", reason_code="5B", label="立案审查未结案"),
                Veto("long-leave", "no-grade", reason_code="6A", label="病事假超过半年")],
        indicators=[
            IndicatorDef("economy", "经济发展", "E05", Decimal("0.4"),
                         list(CATEGORIES[UnitKind.TOWNSHIP])),
            IndicatorDef("fiscal", "财政收入", "E03", Decimal("0.3"),
                         list(CATEGORIES[UnitKind.TOWNSHIP])),
            IndicatorDef("environment", "生态环保", "L04", Decimal("0.3"),
                         list(CATEGORIES[UnitKind.TOWNSHIP])),
            IndicatorDef("petitions", "信访稳定", "P07", Decimal("1"),
                         list(CATEGORIES[UnitKind.DEPARTMENT])),
        ],
        # Teams' grades public, cadres' cards to themselves; 公示 of 优秀/好 for 5 days
        # (defaults and sources: docs/evaluation.md, "Who may read a result").
        publication=PublicationPolicy())


class DemoCity:
    def __init__(self, services: Services, *, units: int = 121, cadres: int = 1000,
                 seed: int = 2025, progress: Progress | None = None,
                 years: tuple[int, ...] = YEARS) -> None:
        self.s, self.seed, self.years = services, seed, years
        self.n_units, self.n_cadres = max(units, 16), cadres
        self.progress = progress or Progress()
        self.org = _person(Role.ORGANIZER, IdentityKind.STAFF, "zzb-01")
        self.org2 = _person(Role.ORGANIZER, IdentityKind.STAFF, "zzb-02")
        self.team = _person(Role.ASSESSMENT_TEAM, IdentityKind.TEAM_MEMBER, "khz-01")
        self.committee = _person(Role.COMMITTEE, IdentityKind.STAFF, "swcwh")
        self.leaders = [f"L{i:02d}" for i in range(1, 6)]

    # --- the city -------------------------------------------------------------------------

    def _units(self) -> list[dict[str, str]]:
        rows = []
        for i in range(15):
            platform = "platform-1" if i < 7 else "platform-2"
            rows.append({"code": f"T{i + 1:02d}", "name": f"{TOWNSHIP_NAMES[i]}镇",
                         "kind": "township", "category": platform})
        prefix = {"party-government": "P", "economic-management": "E",
                  "social-development": "S", "law-enforcement-supervision": "L",
                  "mass-organisations": "M", "vertical": "V"}
        categories = list(DEPARTMENT_NAMES)
        for i in range(self.n_units - 15):
            category = categories[i % len(categories)]
            number = i // len(categories)
            names = DEPARTMENT_NAMES[category]
            name = names[number] if number < len(names) else f"{names[number % len(names)]}{number}"
            rows.append({"code": f"{prefix[category]}{number + 1:02d}", "name": name,
                         "kind": "department", "category": category})
        return rows

    def _cadres(self, units: list[dict[str, str]], rng: random.Random) -> list[dict[str, str]]:
        rows = []
        per_unit = max(1, self.n_cadres // len(units))
        count = 0
        for unit in units:
            for j in range(per_unit if count + per_unit <= self.n_cadres else 1):
                count += 1
                rows.append({"code": f"C{count:05d}",
                             "name": rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, 2)),
                             "unit_code": unit["code"],
                             "role": (PostRole.PRINCIPAL if j == 0 else PostRole.DEPUTY).value,
                             "since": f"20{rng.randint(15, 23)}-0{rng.randint(1, 9)}-01"})
        return rows

    def _step(self, label: str, fn: Callable[[], object]) -> None:
        fn()
        self.progress.advance(label)

    def run(self) -> None:
        """Build the city, then run its cycles (by default 2024 and 2025) to publication."""
        rng = random.Random(self.seed)  # noqa: S311 -- reproducible demo data, not secrets
        units = self._units()
        cadres = self._cadres(units, rng)
        subjects = len(units) + len(cadres)
        with self.progress.lock:
            self.progress.state, self.progress.total = "loading", 3 + len(self.years) * (
                subjects + 9)
        ref = self.s.reference
        self._step("reference data", lambda: ref.import_rows(self.org, units=units,
                                                             cadres=cadres))
        self._step("city leaders", lambda: [ref.register_leader(
            self.org, code=code, name=f"市领导{code}") for code in self.leaders])
        # A unit's strength persists across years (a strong bureau stays strong), with a small
        # drift each year: year-on-year ranks correlate as in a real city, not at random.
        base = {u["code"]: rng.gauss(0, 4) for u in units}
        for year in self.years:
            self._cycle(year, units, rng, base)
        self._step("use of results", lambda: self._uses(self.years[-1]))
        with self.progress.lock:
            self.progress.state, self.progress.step = "done", "published"

    # --- one cycle -------------------------------------------------------------------------

    def _cycle(self, year: int, units: list[dict[str, str]], rng: random.Random,
               base: dict[str, float]) -> None:
        ev = self.s.evaluation
        self._step(f"{year}: open", lambda: ev.open_cycle(self.org, year))
        self._step(f"{year}: scheme", lambda: ev.set_scheme(self.org, year, demo_scheme(year)))
        self.s.follower.catch_up()
        with self.s.db.read() as cur:
            from projections.cadres import list_cadres  # noqa: PLC0415
            from projections.units import list_units  # noqa: PLC0415

            roster = ev.roster_from(list_units(cur, after_code=None, limit=10**6),
                                    list_cadres(cur, after_code=None, limit=10**6))
        self._step(f"{year}: roster", lambda: ev.set_roster(self.org, year, roster))
        self._step(f"{year}: freeze", lambda: ev.freeze(self.org, year))
        note = self.s.signer.sign(self.s.db, self.s.clock.now()).note.decode()
        ev.announce(self.org, year, team_members=["考核组长 周建国", "组员 吴晓梅", "组员 郑磊"],
                    starts_on=f"{year}-12-01", ends_on=f"{year + 1}-01-15",
                    hotline="0371-12380", checkpoint=note)
        self._step(f"{year}: scoring open", lambda: ev.open_scoring(self.org, year))
        principal_of = {e.unit_code: e.code for e in roster if e.kind == SubjectKind.PRINCIPAL}
        strength = {u["code"]: base[u["code"]] + rng.gauss(0, 1.5) for u in units}
        townships = {u["code"] for u in units if u["kind"] == UnitKind.TOWNSHIP.value}
        balloted = [e for e in roster
                    if e.kind == SubjectKind.TEAM and e.unit_code in townships]
        for entry in roster:
            self._score(year, entry, rng, strength.get(entry.unit_code, 0.0), principal_of,
                        balloted=entry in balloted)
            self.progress.advance(f"{year}: scoring {entry.subject}")
        self._step(f"{year}: 民主测评 of the township teams", lambda: self._ballots(
            year, balloted, strength, rng))
        self._step(f"{year}: seal", lambda: ev.seal(self.org, year, self.s.stream_heads))
        self._step(f"{year}: 审定", lambda: ev.approve(
            self.committee, year, self.s.stream_heads,
            fingerprint=ev.proposal(year, self.s.stream_heads)[1],
            minutes_ref=f"市委常委会会议纪要〔{year + 1}〕2号", authority="市委常委会"))
        notified = f"{year + 1}-01-20"
        self._step(f"{year}: publication", lambda: ev.publish(
            self.org, year, self.s.stream_heads, notified_on=notified))

    def _uses(self, year: int) -> None:
        """考核结果运用 on the last published year: the rules that came due are answered, the
        best cadre of a few pools promoted, the lowest given an adjustment and feedback."""
        uses = self.s.uses
        decided = f"{year + 1}-03-15"
        for due in uses.due(self.org, year):
            uses.record(self.org, year, due.subject, kind=due.answers[0], decided_on=decided,
                        authority="市委常委会", document=f"市委干〔{year + 1}〕12号",
                        reason=due.title)
        published = self.s.evaluation.published(year)
        assert published is not None  # noqa: S101 -- the cycle was just published
        pools = [p for p in published.results() if p.kind != SubjectKind.TEAM]
        for pool in pools[:3]:
            best, worst = pool.results[0], pool.results[-1]
            if best.final_grade == "优秀":
                uses.record(self.org, year, best.subject, kind="promotion",
                            decided_on=decided, authority="市委常委会",
                            document=f"市委干〔{year + 1}〕15号", reason="年度考核优秀，拟提拔使用")
            if worst.final_grade in {"基本称职", "不称职"}:
                uses.record(self.org, year, worst.subject, kind="post-adjustment",
                            decided_on=decided, authority="市委常委会",
                            document=f"市委干〔{year + 1}〕16号",
                            reason="年度考核等次靠后，调整岗位")
            uses.record(self.org, year, worst.subject, kind="feedback", decided_on=decided,
                        authority="市委组织部", document="个别反馈记录",
                        reason="个别反馈考核结果和存在的问题")

    def _ballots(self, year: int, entries: list[RosterEntry], strength: dict[str, float],
                 rng: random.Random) -> None:
        """The township teams' 民主测评 as a real ballot session: credentials, anonymous
        ballots (about 88% turnout), close; closing records each team's score in its file,
        so their evidence bundles carry the ballots and the verifier recounts them."""
        code = f"mzcp-{year}-xz"
        definition = SessionDefinition(
            code=code, year=year, kind=SessionKind.DEMOCRATIC,
            title=f"{year}年度乡镇（街道）领导班子民主测评",
            subjects=[e.subject for e in entries],
            items=[Item("de", "德"), Item("neng", "能"), Item("qin", "勤"), Item("ji", "绩"),
                   Item("lian", "廉")],
            options=[Option("excellent", "好", Decimal(100)),
                     Option("good", "较好", Decimal(80)), Option("fair", "一般", Decimal(60)),
                     Option("poor", "差", Decimal(0)),
                     Option("unknown", "不了解", Decimal(0), counted=False)],
            classes=[RaterClass("cadres", "市直部门和乡镇干部", Decimal("0.6"), 40),
                     RaterClass("public", "党代表、人大代表、政协委员和群众代表", Decimal("0.4"),
                                30)],
            rules=Rules(quorum=Decimal("0.5"), min_valid=5))
        sessions = self.s.sessions
        sessions.define(self.org, definition)
        sessions.freeze(self.org, code)
        credentials = [c for cls in definition.classes for c in
                       sessions.issue(self.org, code, cls.code, cls.eligible)[1][
                           :int(cls.eligible * 0.88)]]
        sessions.open(self.org, code)
        for credential in credentials:
            answers = {}
            for e in entries:
                lean = strength.get(e.unit_code, 0.0) / 30
                answers[e.subject] = {item.code: _choice(rng, lean) for item in definition.items}
            sessions.cast(code, credential, answers)
        sessions.close(self.org, code)

    def _score(self, year: int, entry: RosterEntry, rng: random.Random, strength: float,
               principal_of: dict[str, str], *, balloted: bool = False) -> None:
        ev, subject = self.s.evaluation, entry.subject

        def score(base: float, spread: float = 4.0) -> Decimal:
            value = min(99.5, max(50.0, base + strength + rng.gauss(0, spread)))
            return Decimal(str(round(value, 1)))

        if entry.kind == SubjectKind.DEPUTY:
            rater = principal_of.get(entry.unit_code)
            if rater is not None:
                ev.leader_score(_person(Role.LEADER, IdentityKind.CADRE, rater), year, subject,
                                score=score(84), comment="")
        else:
            for code in rng.sample(self.leaders, 3):
                ev.leader_score(_person(Role.LEADER, IdentityKind.LEADER, code), year, subject,
                                score=score(85), comment="")
        # The township teams' democratic score comes from a ballot session (_ballots); the
        # others' and every satisfaction survey's from counts held elsewhere, entered here.
        ev.record_evaluation(self.org, year, subject,
                             session=f"myd-{year}" if balloted else f"mzcp-{year}",
                             democratic=None if balloted else score(86, 3),
                             satisfaction=Decimal(str(round(min(0.99, max(0.45, rng.gauss(
                                 0.82 + strength / 100, 0.08))), 3))))
        dimensions = ("economy", "social-undertakings", "civilisation", "cadre-team",
                      "innovation") if entry.kind == SubjectKind.TEAM else (
            "workload", "difficulty", "effect", "personal-role")
        for dimension in rng.sample(dimensions, 2):
            ev.analysis_score(self.team, year, subject, dimension=dimension, score=score(84),
                              rationale="考核组集体议绩")
        if entry.kind == SubjectKind.TEAM:
            self._team_inputs(year, entry, rng, score)
        elif rng.random() < 0.02:
            code = rng.choice(["admonishment", "warning", "open-case"])
            ev.record_sanction(self.org, year, subject, code=code, decided_on=f"{year}-06-15",
                               source="市纪委监委通报")

    def _team_inputs(self, year: int, entry: RosterEntry, rng: random.Random,
                     score: Callable[..., Decimal]) -> None:
        ev, subject = self.s.evaluation, entry.subject
        targets = [f"{year}年重点任务{i}" for i in range(1, 5)]
        ev.publish_targets(self.org, year, subject, targets=targets)
        for target in targets:
            ev.assess_target(self.team, year, subject, target=target,
                             achieved=rng.random() < 0.85, evidence="年终核查报告")
        ev.inspection_score(self.team, year, subject, score=score(85))
        ev.inspection_note(self.team, year, subject, activity="interview",
                           notes="个别谈话记录（限考核组与监督人员查阅）")
        scheme = demo_scheme(year)
        for indicator in scheme.indicators_for(entry.group, entry.kind, entry.unit_code):
            owner = _person(Role.DEPARTMENT, IdentityKind.DEPARTMENT, indicator.owner)
            ev.indicator_score(owner, year, subject, indicator=indicator.code, value="见附表",
                               score=score(83), evidence="部门核查数据")
        if rng.random() < 0.05:
            adjustment = f"adj-{year}-{entry.code}"
            ev.propose_adjustment(self.org, year, subject, adjustment=adjustment,
                                  delta=Decimal(rng.choice(["2", "-2", "1.5"])), component=None,
                                  reason="专项工作加减分", basis="考核办法第十二条",
                                  evidence="市委督查通报")
            ev.approve_adjustment(self.org2, year, subject, adjustment=adjustment)


def _choice(rng: random.Random, lean: float) -> str:
    """One answer: a stronger team draws more 好 (excellent) and fewer 一般 (fair)."""
    r = rng.random()
    for option, share in (("excellent", 0.45 + lean), ("good", 0.38), ("fair", 0.11 - lean / 2),
                          ("poor", 0.02)):
        if r < share:
            return option
        r -= share
    return "unknown"
