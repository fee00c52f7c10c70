"""The publication policy (domain/audience.py) as properties, and the run-time guard that
refuses a GET route nobody declared an audience for (api/readers.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from litestar import Litestar, get
from litestar.testing import TestClient

from api.problems import exception_handlers
from api.readers import AUDIENCES, declared_audience
from domain.audience import ReaderKind, card_refusal, own_subject
from domain.scheme import PublicationPolicy, SubjectKind

policies = st.builds(
    PublicationPolicy,
    public_kinds=st.lists(st.sampled_from(SubjectKind), unique=True),
    subject_reads_own_card=st.booleans(),
    investigators_before_publication=st.booleans())
cases = st.fixed_dictionaries({
    "reader": st.sampled_from(ReaderKind), "kind": st.sampled_from(SubjectKind),
    "depth": st.sampled_from(["result", "detail"]), "published": st.booleans(),
    "in_case_scope": st.booleans(), "appeal_filed": st.booleans()})


@given(policies, cases)
def test_evaluators_read_every_card_at_any_time(policy: PublicationPolicy,
                                                case: dict[str, object]) -> None:
    assert card_refusal(policy, **{**case, "reader": ReaderKind.EVALUATOR}) is None  # type: ignore[arg-type]


@given(policies, cases)
def test_before_publication_only_evaluators_and_investigators_in_scope_read(
        policy: PublicationPolicy, case: dict[str, object]) -> None:
    refusal = card_refusal(policy, **{**case, "published": False})  # type: ignore[arg-type]
    if refusal is None:
        assert case["reader"] == ReaderKind.EVALUATOR or (
            case["reader"] == ReaderKind.INVESTIGATOR and case["in_case_scope"]
            and policy.investigators_before_publication)


@given(policies, cases)
def test_no_one_outside_the_card_s_readers_reads_its_detail(
        policy: PublicationPolicy, case: dict[str, object]) -> None:
    refusal = card_refusal(policy, **{**case, "depth": "detail"})  # type: ignore[arg-type]
    if case["reader"] in (ReaderKind.ANONYMOUS, ReaderKind.OTHER):
        assert refusal in ("results.published", "card.readers")
    if case["reader"] == ReaderKind.INVESTIGATOR and not case["in_case_scope"]:
        assert refusal == "investigator.case-scope"
    if case["reader"] == ReaderKind.APPEAL_BODY and case["published"]:
        assert (refusal is None) == case["appeal_filed"]
        assert refusal in (None, "appeal-body.appeal-filed")


@given(policies, cases)
def test_the_appeal_body_reads_only_the_cards_of_subjects_that_appealed(
        policy: PublicationPolicy, case: dict[str, object]) -> None:
    """申诉: the appeal body reads the card (result and detail) of a subject that filed an
    appeal, once published; of any other subject only what the public reads."""
    refusal = card_refusal(policy, **{**case, "reader": ReaderKind.APPEAL_BODY})  # type: ignore[arg-type]
    public = case["published"] and case["depth"] == "result" and (
        case["kind"] in policy.public_kinds)
    assert (refusal is None) == bool(public or (case["appeal_filed"] and case["published"]))
    if refusal is not None:
        assert refusal == "appeal-body.appeal-filed"


@given(policies, st.sampled_from(SubjectKind), st.sampled_from(ReaderKind))
def test_published_results_of_the_public_kinds_are_read_by_anyone(
        policy: PublicationPolicy, kind: SubjectKind, reader: ReaderKind) -> None:
    refusal = card_refusal(policy, reader=reader, kind=kind, depth="result", published=True)
    assert (refusal is None) == (kind in policy.public_kinds or reader == ReaderKind.EVALUATOR
                                 or (reader == ReaderKind.SELF
                                     and policy.subject_reads_own_card))


def test_the_default_policy_publishes_teams_and_keeps_cadres_to_themselves() -> None:
    policy = PublicationPolicy()
    assert policy.public_kinds == [SubjectKind.TEAM]
    assert card_refusal(policy, reader=ReaderKind.ANONYMOUS, kind=SubjectKind.PRINCIPAL,
                        depth="result", published=True) == "card.readers"
    assert card_refusal(policy, reader=ReaderKind.SELF, kind=SubjectKind.DEPUTY,
                        depth="detail", published=True) is None
    assert (own_subject("cadre", "P1"), own_subject("unit", "E1"),
            own_subject("leader", "L1")) == ("cadre:P1", "team:E1", None)


@get("/undeclared", sync_to_thread=False)
def undeclared() -> str:
    return "secret"


@get("/health", sync_to_thread=False)
def declared() -> str:
    return "ok"


def test_an_undeclared_get_route_is_served_to_nobody() -> None:
    assert "/undeclared" not in AUDIENCES
    app = Litestar([undeclared, declared], guards=[declared_audience],
                   exception_handlers=exception_handlers())
    with TestClient(app) as client:
        resp = client.get("/undeclared")
        assert resp.status_code == 403
        assert resp.json()["rule"] == "audience.undeclared"
        assert "secret" not in resp.text
        assert client.get("/health").text == "ok"
