"""The demo city (示范市): a realistic jurisdiction run through two cycles to publication.

15 townships and streets (乡镇、街道) in two platforms, each led by two 正职 (党委书记 and
镇长, or 党工委书记 and 办事处主任); the city's departments under their names after the
2018–2019 and 2023–2024 机构改革 (no abolished bodies, no duplicates), in six categories;
18 city leaders in their posts (四大班子), each 分管 a few categories; five assessment teams
(考核组), each with the units it covers; ~1,000 cadres. Every unit holds its 民主测评 as two
real ballot sessions (the leadership team on team items — 政治鉴别力, 政策敏锐性, 大局意识 …
— and its cadres on 德能勤绩廉). The committee (市委) decides where the quota binds, the 公示
brings objections (handled as cases), and the results are used (考核结果运用).

Everything goes through the same use cases (and so the same events, rules and ledger) as the
API. Same seed, same city and same results; ``--units``/``--cadres`` scale it (the units up to
the named ones: a demo never invents a "税务局16").
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from domain.ballots import Item, Option, RaterClass, Rules, SessionDefinition, SessionKind
from domain.cycle import RosterEntry
from domain.people import Charge, LeaderBody, LeaderCharge, LeaderPost, PostRole
from domain.scheme import (
    CommitmentPolicy,
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
from domain.scoring import PoolResult
from domain.units import CATEGORIES, UnitKind
from service.demo_method import MethodActs
from service.principals import Identity, IdentityKind, Principal, Role

if TYPE_CHECKING:
    from service.runtime import Services

YEARS = (2024, 2025)
CITY = "示范市"
# 乡镇、街道: (name, the two 正职's posts). The first seven are the first platform.
TOWNSHIPS = [
    *((f"{n}街道", ("党工委书记", "办事处主任")) for n in ("城关", "东城", "西城", "南湖", "北山")),
    *((f"{n}镇", ("党委书记", "镇长")) for n in ("河口", "石桥", "青山", "白塔", "柳林", "龙泉",
                                              "高桥", "马庄", "王集", "杨柳")),
]
# The city's departments by category, as a prefecture-level city has them after the 2018–2019
# reform (自然资源和规划局, 退役军人事务局, 医疗保障局, 应急管理局 …) and the 2023–2024 one
# (市委社会工作部, 市委金融委员会办公室, 市数据局, 地方金融管理局; 乡村振兴局 merged into
# 农业农村局). Codes are the category's letter and the place in its list (E03 is 市财政局).
DEPARTMENTS: dict[str, list[str]] = {
    "party-government": [
        "市委办公室", "市人民政府办公室", "市委组织部", "市委宣传部", "市委统战部",
        "市委政法委员会", "市信访局", "市委机构编制委员会办公室", "市委政策研究室",
        "市委网络安全和信息化委员会办公室",
        "市委直属机关工作委员会", "市委巡察工作领导小组办公室", "市委老干部局", "市委党校",
        "市人大常委会办公室", "市政协办公室", "市委外事工作委员会办公室", "市委金融委员会办公室",
        "市委社会工作部", "市档案馆"],
    "economic-management": [
        "市发展和改革委员会", "市工业和信息化局", "市财政局", "市商务局", "市自然资源和规划局",
        "市住房和城乡建设局", "市交通运输局", "市农业农村局", "市水利局", "市科学技术局",
        "市人民政府国有资产监督管理委员会", "市统计局", "市数据局", "市机关事务管理局",
        "市地方金融管理局", "市供销合作社联合社"],
    "social-development": [
        "市教育局", "市民政局", "市人力资源和社会保障局", "市卫生健康委员会", "市文化广电和旅游局",
        "市退役军人事务局", "市医疗保障局", "市体育局", "市住房公积金管理中心", "市广播电视台",
        "市社会保险事业服务中心", "市融媒体中心"],
    "law-enforcement-supervision": [
        "市公安局", "市司法局", "市中级人民法院", "市人民检察院", "市生态环境局", "市应急管理局",
        "市市场监督管理局", "市审计局", "市城市管理局", "市交通运输综合行政执法支队",
        "市农业综合行政执法支队"],
    "mass-organisations": [
        "市总工会", "共青团市委", "市妇女联合会", "市科学技术协会", "市工商业联合会",
        "市文学艺术界联合会", "市归国华侨联合会", "市社会科学界联合会", "市残疾人联合会",
        "市红十字会", "市计划生育协会", "市农业科学研究院"],
    "vertical": [
        f"国家税务总局{CITY}税务局", f"{CITY}气象局", "市烟草专卖局", "市邮政管理局",
        f"国家金融监督管理总局{CITY[:2]}监管分局", f"中国人民银行{CITY}分行",
        f"国家统计局{CITY[:2]}调查队", f"{CITY[:2]}海关", "市消防救援支队",
        f"国网{CITY[:2]}供电公司"],
}
PREFIX = {"party-government": "P", "economic-management": "E", "social-development": "S",
          "law-enforcement-supervision": "L", "mass-organisations": "M", "vertical": "V"}
TOWNSHIP_GROUPS = tuple(CATEGORIES[UnitKind.TOWNSHIP])
ALL_GROUPS = (*TOWNSHIP_GROUPS, *DEPARTMENTS)


def department_code(name: str) -> str:
    for category, names in DEPARTMENTS.items():
        if name in names:
            return f"{PREFIX[category]}{names.index(name) + 1:02d}"
    raise KeyError(name)


@dataclass(frozen=True)
class CityLeader:
    """A 市领导 in post: the categories they are in charge of (分管) and the unit they head,
    if any (they never score it: 回避)."""

    code: str
    name: str
    post: str
    charge: tuple[str, ...] = ()
    heads: str | None = None


LEADERS = [
    CityLeader("L01", "陈志刚", "市委书记", ALL_GROUPS),
    CityLeader("L02", "李文华", "市委副书记、市长", ALL_GROUPS),
    CityLeader("L03", "王德明", "市人大常委会主任", ("party-government",)),
    CityLeader("L04", "赵国庆", "市政协主席", ("mass-organisations",)),
    CityLeader("L05", "刘建军", "市委副书记", TOWNSHIP_GROUPS),
    CityLeader("L06", "张伟", "市委常委、常务副市长", ("economic-management", "vertical")),
    CityLeader("L07", "孙丽萍", "市委常委、市纪委书记、市监委主任",
               ("law-enforcement-supervision",)),
    CityLeader("L08", "周海涛", "市委常委、组织部部长", ("party-government",),
               heads="市委组织部"),
    CityLeader("L09", "吴晓燕", "市委常委、宣传部部长", ("social-development",),
               heads="市委宣传部"),
    CityLeader("L10", "郑强", "市委常委、政法委书记", ("law-enforcement-supervision",),
               heads="市委政法委员会"),
    CityLeader("L11", "马红梅", "市委常委、统战部部长", ("mass-organisations",),
               heads="市委统战部"),
    CityLeader("L12", "黄磊", "市委常委、秘书长", ("party-government",), heads="市委办公室"),
    CityLeader("L13", "林志勇", "副市长、市公安局局长", ("law-enforcement-supervision",),
               heads="市公安局"),
    CityLeader("L14", "何静", "副市长", ("economic-management", "platform-1")),
    CityLeader("L15", "郭建华", "副市长", ("social-development",)),
    CityLeader("L16", "罗斌", "副市长", ("platform-2", "vertical")),
    CityLeader("L17", "许秀英", "市人大常委会副主任", ("platform-1",)),
    CityLeader("L18", "宋海波", "市政协副主席", ("platform-2",)),
]


@dataclass(frozen=True)
class AssessmentTeam:
    """A 考核组 and the categories of the units it covers; its members score those units'
    听谈看议 and 实绩分析."""

    name: str
    members: tuple[tuple[str, str], ...]  # (identity, "组长 周建国")
    groups: tuple[str, ...]


TEAMS = [
    AssessmentTeam("第一考核组", (("khz-1-1", "组长 周建国"), ("khz-1-2", "组员 吴晓梅"),
                                ("khz-1-3", "组员 郑磊")), ("platform-1",)),
    AssessmentTeam("第二考核组", (("khz-2-1", "组长 冯立新"), ("khz-2-2", "组员 韩雪"),
                                ("khz-2-3", "组员 彭涛")), ("platform-2",)),
    AssessmentTeam("第三考核组", (("khz-3-1", "组长 曹永刚"), ("khz-3-2", "组员 田甜"),
                                ("khz-3-3", "组员 袁博")), ("party-government",
                                                           "mass-organisations")),
    AssessmentTeam("第四考核组", (("khz-4-1", "组长 邓志军"), ("khz-4-2", "组员 潘婷"),
                                ("khz-4-3", "组员 董浩")), ("economic-management", "vertical")),
    AssessmentTeam("第五考核组", (("khz-5-1", "组长 肖文斌"), ("khz-5-2", "组员 谢娟"),
                                ("khz-5-3", "组员 唐宁")), ("social-development",
                                                          "law-enforcement-supervision")),
]
TEAM_ITEMS = [Item("zzjb", "政治鉴别力"), Item("zcmr", "政策敏锐性"), Item("djys", "大局意识"),
              Item("tjxz", "团结协作"), Item("gzsj", "工作实绩"), Item("ljzl", "廉洁自律")]
CADRE_ITEMS = [Item("de", "德"), Item("neng", "能"), Item("qin", "勤"), Item("ji", "绩"),
               Item("lian", "廉")]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰文斌海波宁晨"


@dataclass
class Progress:
    """What /ready shows while the demo city loads in the background."""

    # idle | loading | done | failed | present (loaded on an earlier start, or other data) |
    # incomplete (an earlier load was interrupted: /ready is not ready and says so)
    state: str = "idle"
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


def demo_scheme(year: int, *, public_commitments: bool = False) -> Scheme:
    """The demo's scheme; with ``public_commitments`` (the latest cycle) the commitments
    component is derived from the units' public commitments and their 共绩 shares."""
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
    pools = []
    for group in ALL_GROUPS:
        pools.append(PoolRule(group, SubjectKind.TEAM, team_weights, team_bands,
                              [Quota("好", Decimal("0.2"), "floor")]))
        for kind in (SubjectKind.PRINCIPAL, SubjectKind.DEPUTY):
            pools.append(PoolRule(group, kind, cadre_weights, cadre_bands,
                                  [Quota("优秀", Decimal("0.2"), "half-up")]))
    townships = list(TOWNSHIP_GROUPS)
    return Scheme(
        cycle=year, pools=pools,
        # A score by the secretary or the mayor weighs more than a deputy's (领导把关考评 by
        # post). The seed gives no figures: these are the demo's [inference].
        leader_post_weights={"书记": Decimal("1.5"), "市长": Decimal("1.5"),
                             "副书记": Decimal("1.2")},
        vetoes=[Veto("warning", "cap", cap_at="称职", label="党内警告/政务警告"),
                Veto("admonishment", "cap", cap_at="称职", label="诫勉"),
                Veto("serious-warning", "no-grade", reason_code="5", label="严重警告/记过"),
                Veto("removal", "force-lowest", label="撤销党内职务"),
                Veto("open-case", "no-grade", reason_code="5B", label="立案审查未结案"),
                Veto("long-leave", "no-grade", reason_code="6A", label="病事假超过半年")],
        # Each indicator is verified by the department that owns its data.
        indicators=[
            IndicatorDef("economy", "经济发展", department_code("市发展和改革委员会"),
                         Decimal("0.4"), townships),
            IndicatorDef("fiscal", "财政收入", department_code("市财政局"), Decimal("0.3"),
                         townships),
            IndicatorDef("environment", "生态环保", department_code("市生态环境局"),
                         Decimal("0.3"), townships),
            IndicatorDef("petitions", "信访稳定", department_code("市信访局"), Decimal("1"),
                         list(DEPARTMENTS)),
        ],
        # Teams' grades public, cadres' cards to themselves; 公示 of 优秀/好 for 5 days
        # (defaults and sources: docs/evaluation.md, "Who may read a result").
        publication=PublicationPolicy(),
        commitments=CommitmentPolicy(derivation="attributed-completion") if public_commitments
        else CommitmentPolicy())


def department_rows(count: int) -> list[dict[str, str]]:
    """``count`` departments, taken in turn from each category (so a small city still has
    every category), each under its own name; at most as many as are named."""
    queues = {c: list(enumerate(names)) for c, names in DEPARTMENTS.items()}
    rows: list[dict[str, str]] = []
    while len(rows) < count and any(queues.values()):
        for category, queue in queues.items():
            if queue and len(rows) < count:
                i, name = queue.pop(0)
                rows.append({"code": f"{PREFIX[category]}{i + 1:02d}", "name": name,
                             "kind": UnitKind.DEPARTMENT.value, "category": category})
    return rows


MAX_UNITS = len(TOWNSHIPS) + sum(len(v) for v in DEPARTMENTS.values())


# A leader's post as the demo writes it ("市委常委", "组织部部长", "副市长") -> its body and
# title; a post that heads a unit (a 部长, 局长, 书记 of the 政法委, the 秘书长) names it.
_BODIES = (("市人大常委会", LeaderBody.CONGRESS), ("市政协", LeaderBody.CPPCC),
           ("市委", LeaderBody.PARTY_COMMITTEE))


def _post(text: str, heads: str | None) -> LeaderPost:
    """The scheme weighs the plain titles (书记, 市长, 副书记); a 纪委书记 or a department's
    head keeps the post's whole name, so it is not taken for the secretary."""
    if text.startswith(("市纪委", "市监委")):
        return LeaderPost(body=LeaderBody.DISCIPLINE, title=text.removeprefix("市"))
    for prefix, body in _BODIES:
        if text.startswith(prefix):
            return LeaderPost(body=body, title=text.removeprefix(prefix))
    if text.endswith("市长"):
        return LeaderPost(body=LeaderBody.GOVERNMENT, title=text.removeprefix("常务"))
    # 组织部部长, 政法委书记, 秘书长, 市公安局局长: the post of the unit the leader heads
    body = LeaderBody.GOVERNMENT if text.startswith("市公安局") else LeaderBody.PARTY_COMMITTEE
    return LeaderPost(body=body, title=text, unit_code=heads)


class DemoCity:
    def __init__(self, services: Services, *, units: int | None = None, cadres: int = 1000,
                 seed: int = 2025, progress: Progress | None = None,
                 years: tuple[int, ...] = YEARS) -> None:
        self.s, self.seed, self.years = services, seed, years
        # 15 townships and at least one department; no more units than have names.
        self.n_units = min(max(units or MAX_UNITS, len(TOWNSHIPS) + 1), MAX_UNITS)
        self.n_cadres = cadres
        self.progress = progress or Progress()
        self.org = _person(Role.ORGANIZER, IdentityKind.STAFF, "zzb-01")
        self.org2 = _person(Role.ORGANIZER, IdentityKind.STAFF, "zzb-02")
        self.committee = _person(Role.COMMITTEE, IdentityKind.STAFF, "swcwh")
        self.intake = _person(Role.INTAKE, IdentityKind.STAFF, "xfb-01")
        self.supervisor = _person(Role.SUPERVISOR, IdentityKind.STAFF, "jjz-01")
        self.investigator = _person(Role.INVESTIGATOR, IdentityKind.STAFF, "jjz-02")
        self.leaders = [leader.code for leader in LEADERS]
        self.team_of = {group: team for team in TEAMS for group in team.groups}
        self.method = MethodActs(services, self.org, self.intake, self.investigator,
                                 self.committee)

    # --- the city -------------------------------------------------------------------------

    def _units(self) -> list[dict[str, str]]:
        rows = [{"code": f"T{i + 1:02d}", "name": name, "kind": UnitKind.TOWNSHIP.value,
                 "category": "platform-1" if i < 7 else "platform-2"}
                for i, (name, _) in enumerate(TOWNSHIPS)]
        return rows + department_rows(self.n_units - len(TOWNSHIPS))

    def _cadres(self, units: list[dict[str, str]], rng: random.Random) -> list[dict[str, str]]:
        """Two 正职 per township (书记 and 镇长/主任), one per department, then deputies in
        turn until there are ``cadres`` (never fewer than the 正职)."""
        posts: list[tuple[str, PostRole]] = []
        for unit in units:
            heads = 2 if unit["kind"] == UnitKind.TOWNSHIP.value else 1
            posts += [(unit["code"], PostRole.PRINCIPAL)] * heads
        deputies = max(0, self.n_cadres - len(posts))
        for i in range(deputies):
            posts.append((units[i % len(units)]["code"], PostRole.DEPUTY))
        order = {u["code"]: i for i, u in enumerate(units)}
        posts.sort(key=lambda p: (order[p[0]], p[1] != PostRole.PRINCIPAL))
        return [{"code": f"C{i:05d}", "name": rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, 2)),
                 "unit_code": unit_code, "role": role.value,
                 "since": f"20{rng.randint(15, 23)}-0{rng.randint(1, 9)}-01"}
                for i, (unit_code, role) in enumerate(posts, start=1)]

    def _posts(self, units: list[dict[str, str]]) -> None:
        """Each leader's posts (四大班子, and the unit a post heads: 回避) and the units of the
        categories they are in charge of (分管), recorded through the same use case as an
        organizer's ``PUT /leaders/{code}/posts``."""
        code_of = {u["name"]: u["code"] for u in units}
        for leader in LEADERS:
            posts = [_post(part, code_of.get(leader.heads or "")) for part in
                     leader.post.split("、")]
            charges = [LeaderCharge(unit_code=u["code"], relation=Charge.IN_CHARGE)
                       for u in units if u["category"] in leader.charge
                       and u["name"] != leader.heads]
            self.s.reference.set_leader_posts(
                self.org, leader.code, posts=posts, charges=charges,
                since=f"{self.years[0]}-01-01", reason="市委任职文件", expected_version=1)

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
            # 4 for the city, 4 for the latest cycle's own acts (commitments published,
            # challenged and assessed; feedback), then each cycle's steps
            self.progress.state, self.progress.total = "loading", 8 + len(self.years) * (
                subjects + len(units) + 10)
        ref = self.s.reference
        self._step("reference data", lambda: ref.import_rows(self.org, units=units,
                                                             cadres=cadres))
        self._step("city leaders and the investigator", lambda: (
            [ref.register_leader(self.org, code=leader.code, name=leader.name)
             for leader in LEADERS],
            self.s.cases.register_investigator(self.supervisor, self.investigator.id,
                                               "市纪委监委派驻市委组织部纪检监察组 李明")))
        self._step("city leaders' posts and charges", lambda: self._posts(units))
        # A unit's strength persists across years (a strong bureau stays strong), with a small
        # drift each year: year-on-year ranks correlate as in a real city, not at random. A
        # cadre's own strength persists too.
        base = {u["code"]: rng.gauss(0, 5) for u in units}
        personal = {c["code"]: rng.gauss(0, 2) for c in cadres}
        for year in self.years:
            self._cycle(year, units, rng, base, personal)
        self._step("use of results", lambda: self._uses(self.years[-1]))
        with self.progress.lock:
            self.progress.state, self.progress.step = "done", "published"

    # --- one cycle -------------------------------------------------------------------------

    def _cycle(self, year: int, units: list[dict[str, str]], rng: random.Random,
               base: dict[str, float], personal: dict[str, float]) -> None:
        ev = self.s.evaluation
        # The latest cycle runs every act of the method (service/demo_method.py); earlier
        # ones stay lighter: one member's analysis, targets in the file, no feedback.
        full = year == self.years[-1]
        self._step(f"{year}: open", lambda: ev.open_cycle(self.org, year))
        self._step(f"{year}: scheme", lambda: ev.set_scheme(
            self.org, year, demo_scheme(year, public_commitments=full)))
        self.s.follower.catch_up()
        with self.s.db.read() as cur:
            from projections.cadres import list_cadres  # noqa: PLC0415
            from projections.units import list_units  # noqa: PLC0415

            roster = ev.roster_from(list_units(cur, after_code=None, limit=10**6),
                                    list_cadres(cur, after_code=None, limit=10**6))
        self._step(f"{year}: roster", lambda: ev.set_roster(self.org, year, roster))
        self._step(f"{year}: freeze", lambda: ev.freeze(self.org, year))
        if full:
            self._step(f"{year}: 公开承诺", lambda: self.method.publish_commitments(
                year, roster, rng))
        note = self.s.signer.sign(self.s.db, self.s.clock.now()).note.decode()
        ev.announce(self.org, year,
                    team_members=[f"{t.name} {m}" for t in TEAMS for _, m in t.members],
                    starts_on=f"{year}-12-01", ends_on=f"{year + 1}-01-15",
                    hotline="0371-12380", checkpoint=note)
        self._step(f"{year}: scoring open", lambda: ev.open_scoring(self.org, year))
        if full:
            self._step(f"{year}: 承诺质疑", lambda: self.method.challenge(
                year, next(e.unit_code for e in roster if e.kind == SubjectKind.TEAM)))
        names = {u["code"]: u["name"] for u in units}
        strength = {u["code"]: base[u["code"]] + rng.gauss(0, 1.0) for u in units}

        def strength_of(entry: RosterEntry) -> float:
            own = personal.get(entry.code, 0.0) if entry.kind != SubjectKind.TEAM else 0.0
            return strength.get(entry.unit_code, 0.0) + own

        principals: dict[str, list[str]] = {}
        for e in roster:
            if e.kind == SubjectKind.PRINCIPAL:
                principals.setdefault(e.unit_code, []).append(e.code)
        for entry in roster:
            self._score(year, entry, rng, strength_of(entry), principals,
                        names.get(entry.unit_code, ""), full=full)
            self.progress.advance(f"{year}: scoring {entry.subject}")
        if full:
            self._step(f"{year}: 承诺考实", lambda: self.method.assess_commitments(
                year, roster, rng, strength_of, lambda e: _person(
                    Role.ASSESSMENT_TEAM, IdentityKind.TEAM_MEMBER,
                    self.team_of[e.group].members[0][0])))
        by_unit: dict[str, list[RosterEntry]] = {}
        for entry in roster:
            by_unit.setdefault(entry.unit_code, []).append(entry)
        with ThreadPoolExecutor(8, thread_name_prefix="demo-ballots") as pool:
            for unit in units:
                self._ballots(year, unit, by_unit.get(unit["code"], []), strength_of, rng, pool)
                self.progress.advance(f"{year}: 民主测评 {unit['name']}")
        self._step(f"{year}: seal", lambda: ev.seal(self.org, year, self.s.stream_heads))
        self._step(f"{year}: 市委审定", lambda: self._committee(year))
        self._step(f"{year}: 审定", lambda: ev.approve(
            self.committee, year, self.s.stream_heads,
            fingerprint=ev.proposal(year, self.s.stream_heads)[1],
            minutes_ref=f"市委常委会会议纪要〔{year + 1}〕2号", authority="市委常委会"))
        notified = f"{year + 1}-01-20"
        self._step(f"{year}: publication", lambda: ev.publish(
            self.org, year, self.s.stream_heads, notified_on=notified))
        self._step(f"{year}: 公示 objections", lambda: self.method.objections(
            year, notified, rng))
        if full:
            self._step(f"{year}: 通报反馈", lambda: self._feedback(year, roster, notified, rng))

    # --- 考核结果运用, 审定, 公示 ------------------------------------------------------------

    def _uses(self, year: int) -> None:
        """考核结果运用 on the last published year: the rules that came due are answered, the
        best cadre of a few pools promoted, the lowest given an adjustment and feedback, the
        best teams commended."""
        uses = self.s.uses
        decided = f"{year + 1}-03-15"
        for due in uses.due(self.org, year):
            uses.record(self.org, year, due.subject, kind=due.answers[0], decided_on=decided,
                        authority="市委常委会", document=f"市委干〔{year + 1}〕12号",
                        reason=due.title)
        published = self.s.evaluation.published(year)
        assert published is not None  # noqa: S101 -- the cycle was just published
        best_teams = [p.results[0] for p in published.results()
                      if p.kind == SubjectKind.TEAM and p.results[0].final_grade == "好"]
        for best in best_teams[:3]:
            uses.record(self.org, year, best.subject, kind="reward", decided_on=decided,
                        authority="市委、市政府", document=f"市委〔{year + 1}〕8号",
                        reason="年度综合考核等次为好，予以通报表扬")
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

    def _committee(self, year: int) -> None:
        """市委审定: where a cadre pool's quota binds, the committee holds one 优秀 back
        (称职, with its reason and minutes); the quota's place passes to the next in line."""
        ev = self.s.evaluation
        cycle = ev.cycle(year)
        pools = ev.pools(cycle, previous=ev.previous_ranks(year)[1])
        binding = [p for p in pools if p.kind != SubjectKind.TEAM
                   and any(r.quota_demoted for r in p.results)]
        for pool in binding[:1]:
            held = [r for r in pool.results if r.final_grade == "优秀"
                    and not r.decided_by_committee and not r.vetoes_applied]
            if held:
                ev.decide(self.committee, year, held[-1].subject, grade="称职",
                          reason="所在单位年内发生较大安全生产责任事故，负有领导责任，"
                                 "经市委常委会研究，年度考核等次确定为称职",
                          minutes_ref=f"市委常委会{year + 1}年第3次会议纪要")

    def _feedback(self, year: int, roster: list[RosterEntry], notified: str,
                  rng: random.Random) -> None:
        published = self.s.evaluation.published(year)
        assert published is not None  # noqa: S101 -- the cycle was just published
        grades = {r.subject: r.final_grade for p in published.results() for r in p.results}
        self.method.feedback(year, roster, notified, grades, rng)

    # --- 民主测评 ---------------------------------------------------------------------------

    def _ballots(self, year: int, unit: dict[str, str], entries: list[RosterEntry],
                 strength_of: Callable[[RosterEntry], float], rng: random.Random,
                 pool: ThreadPoolExecutor) -> None:
        """The unit's 民主测评 as two real ballot sessions held at one meeting: its leadership
        team on the team items, its cadres on 德能勤绩廉. Credentials, anonymous ballots
        (85–95% turnout), close; closing records each subject's score in its file, so their
        evidence bundles carry the ballots and the verifier recounts them."""
        teams = [e for e in entries if e.kind == SubjectKind.TEAM]
        cadres = [e for e in entries if e.kind != SubjectKind.TEAM]
        code = unit["code"].lower()
        for prefix, title, subjects, items in (
                ("bz", "领导班子民主测评", teams, TEAM_ITEMS),
                ("gb", "领导干部民主测评", cadres, CADRE_ITEMS)):
            if subjects:
                self._session(f"{prefix}-{year}-{code}", year, f"{year}年度{unit['name']}{title}",
                              subjects, items, strength_of, rng, pool)

    def _session(self, code: str, year: int, title: str, entries: list[RosterEntry],
                 items: list[Item], strength_of: Callable[[RosterEntry], float],
                 rng: random.Random, pool: ThreadPoolExecutor) -> None:
        definition = SessionDefinition(
            code=code, year=year, kind=SessionKind.DEMOCRATIC, title=title,
            subjects=[e.subject for e in entries], items=items,
            options=[Option("excellent", "好", Decimal(100)),
                     Option("good", "较好", Decimal(80)), Option("fair", "一般", Decimal(60)),
                     Option("poor", "差", Decimal(0)),
                     Option("unknown", "不了解", Decimal(0), counted=False)],
            classes=[RaterClass("staff", "本单位干部职工", Decimal("0.6"), 12),
                     RaterClass("public", "服务对象和党代表、人大代表、政协委员",
                                Decimal("0.4"), 7)],
            rules=Rules(quorum=Decimal("0.5"), min_valid=5))
        sessions = self.s.sessions
        sessions.define(self.org, definition)
        sessions.freeze(self.org, code)
        credentials = []
        for cls in definition.classes:
            codes = sessions.issue(self.org, code, cls.code, cls.eligible)[1]
            credentials += codes[:round(cls.eligible * rng.uniform(0.85, 0.95))]
        sessions.open(self.org, code)
        ballots = [{e.subject: {item.code: _choice(rng, strength_of(e) / 30) for item in items}
                    for e in entries} for _ in credentials]
        # The raters cast at once: the ballot writer commits them together (group commit).
        for cast in [pool.submit(sessions.cast, code, credential, answers)
                     for credential, answers in zip(credentials, ballots, strict=True)]:
            cast.result()
        sessions.close(self.org, code)

    # --- the other inputs -----------------------------------------------------------------

    def _raters(self, entry: RosterEntry, unit_name: str) -> list[str]:
        """The city leaders who score a team or a principal: those in charge of its category,
        never one who heads the unit (回避)."""
        return [leader.code for leader in LEADERS
                if entry.group in leader.charge and leader.heads != unit_name]

    def _score(self, year: int, entry: RosterEntry, rng: random.Random, strength: float,
               principals: dict[str, list[str]], unit_name: str, *, full: bool) -> None:
        ev, subject = self.s.evaluation, entry.subject

        def score(base: float, spread: float = 4.0) -> Decimal:
            value = min(99.5, max(50.0, base + strength + rng.gauss(0, spread)))
            return Decimal(str(round(value, 1)))

        if entry.kind == SubjectKind.DEPUTY:
            raters = [(IdentityKind.CADRE, c) for c in principals.get(entry.unit_code, [])]
        else:
            raters = [(IdentityKind.LEADER, c) for c in self._raters(entry, unit_name)]
        for kind, code in raters:
            ev.leader_score(_person(Role.LEADER, kind, code), year, subject, score=score(87),
                            comment="")
        team = self.team_of[entry.group]
        member = _person(Role.ASSESSMENT_TEAM, IdentityKind.TEAM_MEMBER,
                         rng.choice(team.members)[0])
        if full:  # documents, 听谈看议, every member's sheet (集体议绩), the 组长's 评语
            members = tuple(m for m, _ in team.members)
            reader = _person(Role.LEADER, *raters[0]) if raters else None
            review = self.method.review(year, entry, members, reader,
                                        lambda spread: score(87, spread), rng)
            self.method.remark(year, review, members[0], rng)
        else:
            dimensions = ("economy", "social-undertakings", "civilisation", "cadre-team",
                          "innovation") if entry.kind == SubjectKind.TEAM else (
                "workload", "difficulty", "effect", "personal-role")
            for dimension in rng.sample(dimensions, 2):
                ev.analysis_score(member, year, subject, dimension=dimension,
                                  score=score(87), rationale=f"{team.name}集体议绩")
        if entry.kind == SubjectKind.TEAM:
            # The democratic score comes from the unit's ballot session (_ballots); the
            # satisfaction survey's rate from a count held elsewhere, entered here.
            ev.record_evaluation(self.org, year, subject, session=f"myd-{year}",
                                 democratic=None,
                                 satisfaction=Decimal(str(round(min(0.99, max(0.45, rng.gauss(
                                     0.82 + strength / 100, 0.08))), 3))))
            self._team_inputs(year, entry, rng, score, member, strength, full=full)
        elif rng.random() < 0.02:
            code = rng.choice(["admonishment", "warning", "open-case"])
            ev.record_sanction(self.org, year, subject, code=code, decided_on=f"{year}-06-15",
                               source="市纪委监委通报")

    def _team_inputs(self, year: int, entry: RosterEntry, rng: random.Random,
                     score: Callable[..., Decimal], member: Principal, strength: float, *,
                     full: bool) -> None:
        ev, subject = self.s.evaluation, entry.subject
        township = entry.group in TOWNSHIP_GROUPS
        if not full:  # the latest cycle counts the units' public commitments instead
            targets = [f"{year}年{t}" for t in rng.sample(
                TOWNSHIP_TARGETS if township else DEPARTMENT_TARGETS, 4)]
            ev.publish_targets(self.org, year, subject, targets=targets)
            for target in targets:
                ev.assess_target(member, year, subject, target=target,
                                 achieved=rng.random() < 0.85 + strength / 40,
                                 evidence="年终核查报告")
        ev.inspection_score(member, year, subject, score=score(87))
        ev.inspection_note(member, year, subject, activity="interview",
                           notes="个别谈话记录（限考核组与监督人员查阅）")
        scheme = demo_scheme(year, public_commitments=full)
        for indicator in scheme.indicators_for(entry.group, entry.kind, entry.unit_code):
            owner = _person(Role.DEPARTMENT, IdentityKind.DEPARTMENT, indicator.owner)
            ev.indicator_score(owner, year, subject, indicator=indicator.code, value="见附表",
                               score=score(85), evidence="部门核查数据")
        if rng.random() < 0.05:
            adjustment = f"adj-{year}-{entry.code}"
            ev.propose_adjustment(self.org, year, subject, adjustment=adjustment,
                                  delta=Decimal(rng.choice(["2", "-2", "1.5"])), component=None,
                                  reason="专项工作加减分", basis="考核办法第十二条",
                                  evidence="市委督查通报")
            ev.approve_adjustment(self.org2, year, subject, adjustment=adjustment)


TOWNSHIP_TARGETS = ["招商引资到位资金3亿元", "新增规模以上工业企业2家",
                    "农村人居环境整治村庄全覆盖",
                    "高标准农田建设5000亩", "信访积案化解率100%", "村级集体经济收入全部超过10万元",
                    "安全生产事故零死亡", "新建改建农村公路15公里"]
DEPARTMENT_TARGETS = ["重点项目审批时限压缩30%", "政务服务事项全程网办率95%",
                      "12345热线工单按时办结率98%", "年度重点改革任务全部完成",
                      "为民办实事项目6项按期完成", "行政执法案卷合格率100%",
                      "巡察反馈问题整改完成率100%", "部门预算执行率95%以上"]


def _choice(rng: random.Random, lean: float) -> str:
    """One answer: a stronger team draws more 好 (excellent) and fewer 一般 (fair)."""
    r = rng.random()
    for option, share in (("excellent", 0.45 + lean), ("good", 0.38), ("fair", 0.11 - lean / 2),
                          ("poor", 0.02)):
        if r < share:
            return option
        r -= share
    return "unknown"


def plausibility(published: Iterable[PoolResult]) -> dict[str, object]:
    """What the demo's plausibility test reads (and `kaoping demo` could print): per pool,
    the grade counts, the quota limits, and whether the quota bound (someone demoted)."""
    out: dict[str, object] = {}
    for pool in published:
        counts: dict[str, int] = {}
        for result in pool.results:
            if result.final_grade is not None:
                counts[result.final_grade] = counts.get(result.final_grade, 0) + 1
        out[f"{pool.group}/{pool.kind.value}"] = {
            "size": len(pool.results), "grades": counts, "limits": dict(pool.quota_limits),
            "bound": any(r.quota_demoted for r in pool.results)}
    return out
