"""The demo city's latest cycle run by the method's own acts (issue 13).

Public commitments (责任承诺考实: published by the due day, 责任到人, 共绩 shared or led, a
challenge through intake, 群众认可 ratings, achievements assessed); each subject's documents
(工作总结, 述职述廉报告, 自我评价) uploaded and read by its reviewing leader; the assessment team's
听谈看议 findings citing them by hash, every member's 实绩分析 sheet (集体议绩) and the 组长's 评语;
公示 objections lodged in the notice window and decided by the committee; 集中点评, 书面通知 and
个别反馈. The acts that a window governs run on their business day (service/clock.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from domain.cases import Channel
from domain.commitments import Direction, Target
from domain.cycle import RosterEntry
from domain.documents import content_hash
from domain.scheme import SubjectKind
from service.clock import on_business_day
from service.principals import Identity, IdentityKind, Principal, Role

if TYPE_CHECKING:
    from collections.abc import Callable

    from domain.scheme import Scheme
    from service.runtime import Services

# (measure, unit of measure, target value, direction) a township or a department commits to
TOWNSHIP_TARGETS: list[tuple[str, str, str, Direction]] = [
    ("招商引资到位资金", "亿元", "3", "at-least"), ("新增规模以上工业企业", "家", "2", "at-least"),
    ("高标准农田建设", "亩", "5000", "at-least"), ("信访积案化解率", "%", "100", "at-least"),
    ("村级集体经济收入超过10万元的村", "个", "12", "at-least"),
    ("生产安全事故死亡人数", "人", "0", "at-most"), ("新建改建农村公路", "公里", "15", "at-least"),
    ("农村人居环境整治达标村", "个", "20", "at-least")]
DEPARTMENT_TARGETS: list[tuple[str, str, str, Direction]] = [
    ("重点项目审批时限压缩", "%", "30", "at-least"),
    ("政务服务事项全程网办率", "%", "95", "at-least"),
    ("12345热线工单按时办结率", "%", "98", "at-least"),
    ("年度重点改革任务完成", "项", "6", "at-least"),
    ("为民办实事项目按期完成", "项", "6", "at-least"),
    ("行政执法案卷合格率", "%", "100", "at-least"),
    ("巡察反馈问题整改完成率", "%", "100", "at-least"),
    ("部门预算执行率", "%", "95", "at-least")]
# A 共绩 every few units: a target two units achieve together (led by one, or shared)
SHARED: tuple[str, str, str, Direction] = ("重点项目联合推进", "个", "4", "at-least")
SURVEY = "myd"  # the 群众认可 survey's session code prefix


def _staff(role: Role, kind: IdentityKind, ident: str) -> Principal:
    return Principal(id=f"person:{kind.value}:{ident}", name=ident, role=role,
                     acts_as=Identity(kind, ident), via="demo")


def _day(text: str) -> date:
    return date.fromisoformat(text)


@dataclass
class Review:
    """What the team saw of one subject, for its 评语: the members' mean per dimension."""

    entry: RosterEntry
    means: dict[str, Decimal]


class MethodActs:
    def __init__(self, services: Services, org: Principal, intake: Principal,
                 investigator: Principal, committee: Principal) -> None:
        self.s, self.org, self.intake = services, org, intake
        self.investigator, self.committee = investigator, committee
        self._schemes: dict[int, Scheme] = {}

    # --- 责任承诺考实 -----------------------------------------------------------------------

    def publish_commitments(self, year: int, roster: list[RosterEntry],
                            rng: random.Random) -> None:
        """Every unit publishes its targets by the due day, each with the cadres who answer for
        it; every fifth unit shares a 共绩 with the next: led by one, or in shares summing to 1.
        Its own principal publishes (acting as the unit's 正职)."""
        teams = [e for e in roster if e.kind == SubjectKind.TEAM]
        cadres: dict[str, list[str]] = {}
        principal_of: dict[str, str] = {}
        for e in roster:
            if e.kind != SubjectKind.TEAM:
                cadres.setdefault(e.unit_code, []).append(e.code)
                if e.kind == SubjectKind.PRINCIPAL:
                    principal_of.setdefault(e.unit_code, e.code)
        with on_business_day(_day(f"{year}-03-20")):
            for i, team in enumerate(teams):
                unit, own = team.unit_code, cadres.get(team.unit_code, [])
                pool = TOWNSHIP_TARGETS if team.group.startswith("platform") else (
                    DEPARTMENT_TARGETS)
                targets = [Target(code=f"T{n + 1}", measure=f"{year}年{m}", unit_of_measure=u,
                                  target_value=Decimal(v), direction=d,
                                  responsible=rng.sample(own, min(len(own), 2)) if own else [])
                           for n, (m, u, v, d) in enumerate(rng.sample(pool, 4))]
                if i % 5 == 0 and i + 1 < len(teams) and own:
                    partner = teams[i + 1].unit_code
                    m, u, v, d = SHARED
                    split = {"lead": unit} if i % 10 == 0 else {"shares": {
                        unit: Decimal("0.6"), partner: Decimal("0.4")}}
                    targets.append(Target(code="G1", measure=f"{year}年{m}", unit_of_measure=u,
                                          target_value=Decimal(v), direction=d,
                                          responsible=own[:1], partners=[partner], **split))
                head = principal_of.get(unit)
                by = self.org if head is None else _staff(Role.LEADER, IdentityKind.CADRE, head)
                self.s.commitments.publish(by, year, unit, targets=targets)

    def challenge(self, year: int, unit: str) -> None:
        """An anonymous challenge by the hotline, entered by intake: a case; the investigator
        checks it and closes it."""
        written, _ = self.s.commitments.challenge(
            self.intake, year, unit, "T1",
            summary="来电反映：该项目标值偏低，去年已基本完成，请求核实承诺是否实事求是")
        case = written.stream_id
        self.s.cases.assign(self.intake, case, self.investigator.id)
        self.s.cases.work(self.investigator, case, "finding",
                          finding="调阅上年度统计数据和年度工作计划，目标值较上年实际增长约8%，"
                                  "承诺符合实际")
        self.s.cases.work(self.investigator, case, "close",
                          conclusion="反映问题不属实，承诺维持")

    def assess_commitments(self, year: int, roster: list[RosterEntry], rng: random.Random,
                           strength_of: Callable[[RosterEntry], float],
                           member_of: Callable[[RosterEntry], Principal]) -> None:
        """群众认可 of each unit's 为民办实事 target and the assessment team's achieved values;
        a stronger unit achieves more of what it committed."""
        commitments = self.s.commitments
        for team in (e for e in roster if e.kind == SubjectKind.TEAM):
            found = commitments.require(year, team.unit_code)
            lean = strength_of(team) / 40
            for code, target in sorted(found.targets.items()):
                if "办实事" in target.measure or code == "T1":
                    rate = min(0.99, max(0.4, rng.gauss(0.84 + lean / 2, 0.08)))
                    commitments.rate(self.org, year, team.unit_code, code,
                                     session=f"{SURVEY}-{year}",
                                     satisfaction=Decimal(str(round(rate, 3))))
                ratio = min(1.3, max(0.5, rng.gauss(1.02 + lean, 0.1)))
                value = target.target_value * Decimal(str(round(
                    ratio if target.direction == "at-least" else 2 - ratio, 3)))
                commitments.assess(member_of(team), year, team.unit_code, code,
                                   achieved=max(Decimal(0), value.quantize(Decimal("0.01"))),
                                   evidence="年终核查报告及统计台账")

    # --- documents, 听谈看议, 集体议绩, 评语 ---------------------------------------------

    def review(self, year: int, entry: RosterEntry, team: tuple[str, ...],
               reader: Principal | None, score: Callable[[float], Decimal],
               rng: random.Random) -> Review:
        """One subject's assessment by its team: its documents uploaded by the subject and read
        by its reviewing leader, the team assigned, findings of 听 and 议 citing the documents,
        and each member's sheet of every dimension."""
        tr, subject = self.s.team_reviews, entry.subject
        own = _staff(Role.LEADER, IdentityKind.UNIT if entry.kind == SubjectKind.TEAM
                     else IdentityKind.CADRE, entry.code)
        hashes = []
        for kind, name, text in _documents(year, entry, rng):
            content = text.encode()
            tr.submit_document(own, year, subject, kind=kind, name=name,
                               content_type="text/plain", content=content)
            hashes.append(content_hash(content))
        tr.assign(self.org, year, subject, members=list(team), leader=team[0])
        if reader is not None:
            for sha in hashes:
                tr.download(reader, year, subject, sha)
        members = [_staff(Role.ASSESSMENT_TEAM, IdentityKind.TEAM_MEMBER, m) for m in team]
        strengths, problems = _observations(entry, rng)
        tr.record_finding(members[1], year, subject, activity="hear",
                          summary="听取述职，审阅书面材料", strengths=strengths[:1],
                          problems=problems[:1], documents=hashes[:1])
        tr.record_finding(members[0], year, subject, activity="deliberate",
                          summary="考核组集体议绩", strengths=strengths, problems=problems,
                          documents=hashes)
        dimensions = [d.code for d in self._scheme(year).team_review.dimensions_for(entry.kind)]
        sheets: dict[str, list[Decimal]] = {d: [] for d in dimensions}
        for member in members:
            sheet = {d: score(2.5) for d in dimensions}
            tr.score_sheet(member, year, subject, scores=sheet, rationale="考核组集体议绩")
            for d, v in sheet.items():
                sheets[d].append(v)
        return Review(entry, {d: sum(v, Decimal(0)) / len(v) for d, v in sheets.items()})

    def remark(self, year: int, review: Review, leader: str, rng: random.Random) -> None:
        """The 组长's 评语, from what the team found: the strongest and weakest dimensions and
        the overall level."""
        names = {d.code: d.name for d in self._scheme(year).team_review.dimensions}
        self.s.team_reviews.remark(
            _staff(Role.ASSESSMENT_TEAM, IdentityKind.TEAM_MEMBER, leader), year,
            review.entry.subject, remark=_remark(review, names, rng))

    def _scheme(self, year: int) -> Scheme:
        if year not in self._schemes:  # frozen before scoring opens: read it once
            scheme = self.s.evaluation.cycle(year).scheme
            assert scheme is not None  # noqa: S101 -- set before scoring opens
            self._schemes[year] = scheme
        return self._schemes[year]

    # --- 公示 and feedback ----------------------------------------------------------------

    def objections(self, year: int, notified: str, rng: random.Random) -> None:
        """公示: objections to listed grades come in by hotline and mailbox in the notice
        window (one named, the others anonymous); the investigator checks each case, and after
        the window the committee decides them: dismissed, or upheld without a change of grade
        (反映问题部分属实，不影响等次). The notice becomes final."""
        ev = self.s.evaluation
        listed = sorted(ev.listed(ev.cycle(year)))
        chosen = rng.sample(listed, min(3, len(listed)))
        opened = _day(notified)
        lodged: list[tuple[str, str]] = []
        with on_business_day(opened + timedelta(days=1)):
            for i, subject in enumerate(chosen):
                written = ev.lodge_objection(
                    self.intake, year, subject,
                    channel=Channel.HOTLINE if i % 2 == 0 else Channel.MAILBOX,
                    summary=OBJECTIONS[i % len(OBJECTIONS)],
                    reporter="市民 王某（实名）" if i == 0 else None, code=None)
                opened_case = next(leaf.stream_id for leaf in written.leaves
                                   if leaf.stream_id != written.stream_id)
                lodged.append((subject, str(opened_case)))
                self.s.cases.assign(self.intake, opened_case, self.investigator.id)
                self.s.cases.work(self.investigator, opened_case, "finding",
                                  finding="调阅考核材料，走访服务对象和干部群众8人，逐项核实")
                self.s.cases.work(self.investigator, opened_case, "close",
                                  conclusion="核查报告已报市委组织部")
        with on_business_day(opened + timedelta(days=6)):
            for i, (subject, case) in enumerate(lodged):
                upheld = i == len(lodged) - 1 and len(lodged) > 1
                ev.decide_objection(
                    self.committee, year, subject, case,
                    outcome="upheld" if upheld else "dismissed", grade=None,
                    reason="反映问题部分属实，已责成整改，不影响年度考核等次" if upheld
                    else "经核查反映问题查无实据，维持公示等次",
                    minutes_ref=f"市委常委会{year + 1}年第4次会议纪要", authority="市委常委会",
                    head_of=self.s.stream_heads)

    def feedback(self, year: int, roster: list[RosterEntry], notified: str,
                 grades: dict[str, str | None], rng: random.Random) -> None:
        """集中点评 (the whole cycle and each group), then for every subject the 书面通知 and
        the 个别反馈 by the organization department."""
        notes = self.s.notifications
        day = _day(notified)
        with on_business_day(day.replace(month=3, day=10)):
            on = day.replace(day=28).isoformat()
            notes.hold_review(self.org, year, group=None, on=on, by="市委组织部部长 周海涛",
                              summary="全市年度综合考核集中点评：重点任务推进有力，"
                                      "个别单位承诺目标偏保守、群众满意度不高")
            for group in sorted({e.group for e in roster}):
                notes.hold_review(self.org, year, group=group, on=on, by="市委组织部副部长",
                                  summary=f"{group}比较组共性问题点评：创新工作亮点不多，"
                                          "干部队伍建设有待加强")
            for entry in roster:
                grade = grades.get(entry.subject) or "未定等次"
                notes.feed_back(self.org, year, entry.subject, kind="notification",
                                on=day.replace(day=25).isoformat(), by="市委组织部",
                                summary=f"书面通知{year}年度综合考核结果：{grade}")
                notes.feed_back(self.org, year, entry.subject, kind="feedback",
                                on=day.replace(month=2, day=rng.randint(2, 27)).isoformat(),
                                by=rng.choice(["市委组织部干部考核科", "市委组织部分管副部长"]),
                                summary=_feedback(grade, rng))


OBJECTIONS = ["公示期间来电反映：该单位年度重点任务完成情况与公示等次不符，请求核实",
              "来信反映：该同志分管领域发生群众信访事项处置不及时，评为优秀是否妥当",
              "来电反映：该单位为民办实事项目进度滞后，群众有意见"]


def _documents(year: int, entry: RosterEntry,
               rng: random.Random) -> list[tuple[str, str, str]]:
    """(kind, name, text): small Chinese texts, the same for the same seed."""
    focus = rng.choice(["项目建设", "民生保障", "营商环境", "基层治理", "生态环保", "改革攻坚"])
    if entry.kind == SubjectKind.TEAM:
        return [("work-summary", f"{entry.name}{year}年度工作总结.txt",
                 f"{entry.name}{year}年度工作总结\n\n一、主要工作\n"
                 f"全年围绕{focus}这一重点，落实年初公开承诺的各项目标，"
                 f"完成重点任务{rng.randint(8, 20)}项。\n二、存在问题\n"
                 "创新举措还不够多，个别目标推进不平衡。\n三、下一步打算\n"
                 "对照承诺清单逐项抓落实。\n")]
    return [("duty-report", f"{entry.name}{year}年度述职述廉报告.txt",
             f"{entry.name}同志{year}年度述职述廉报告\n\n"
             f"一年来，本人分管{focus}工作，牵头推进重点事项{rng.randint(3, 9)}项；"
             "严格执行中央八项规定精神，无违规违纪问题。\n不足：调查研究还不够深入。\n"),
            ("self-evaluation", f"{entry.name}{year}年度自我评价.txt",
             f"{entry.name}自我评价：政治立场坚定，工作作风务实，"
             f"在{focus}方面{rng.choice(['取得一定成效', '有所突破', '稳步推进'])}。\n")]


def _observations(entry: RosterEntry, rng: random.Random) -> tuple[list[str], list[str]]:
    strengths = rng.sample(["重点任务推进有力", "班子团结协作好", "群众口碑较好",
                            "工作台账规范完整", "敢于担当攻坚克难", "创新举措有亮点"], 2)
    problems = rng.sample(["调查研究不够深入", "个别目标进度滞后", "创新意识有待增强",
                           "基层减负落实不够", "制度执行不够严格"], 1)
    return strengths, problems


LEVELS = [(Decimal(92), "工作实绩突出", "群众认可度高"),
          (Decimal(87), "工作实绩较好", "总体评价较好"),
          (Decimal(82), "完成了年度主要任务", "总体评价一般偏上"),
          (Decimal(0), "年度任务完成有差距", "需要加强改进")]


def _remark(review: Review, names: dict[str, str], rng: random.Random) -> str:
    means = review.means
    best = max(means, key=lambda d: (means[d], d))
    worst = min(means, key=lambda d: (means[d], d))
    overall = sum(means.values()) / len(means)
    level, verdict = next((a, b) for floor, a, b in LEVELS if overall >= floor)
    who = "该班子" if review.entry.kind == SubjectKind.TEAM else "该同志"
    opening = rng.choice([f"{who}{level}", f"考核组认为，{who}{level}",
                          f"综合听谈看议情况，{who}{level}"])
    return (f"{opening}，在{names.get(best, best)}方面表现较为突出；"
            f"{names.get(worst, worst)}方面相对薄弱，今后应着力加强。{verdict}。")


def _feedback(grade: str, rng: random.Random) -> str:
    if grade in {"优秀", "好"}:
        ask = rng.choice(["保持标杆作用", "总结推广经验做法"])
    elif grade in {"基本称职", "不称职", "一般", "较差"}:
        ask = rng.choice(["限期提交整改报告", "进行诫勉谈话并跟踪整改"])
    else:
        ask = rng.choice(["对照问题清单抓好整改", "补齐短板弱项"])
    return f"当面反馈年度考核等次（{grade}）和考核组指出的问题，要求{ask}"

