"""Properties of the fold over random histories (Hypothesis)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import FACT_TYPES, Account, Platform, Subject
from domain.errors import RuleViolation
from domain.platform import PlatformState
from domain.values import SubjectKey
from service.recording import NewFact
from tests.helpers import NOW, fact, record, registration

START = datetime(2021, 1, 1, tzinfo=UTC)
PROVIDERS = ["H", "K", "L"]
PLATFORM_ACTIONS = [  # every platform type but the registration and informational restorations
    name
    for name, (subject_class, _) in FACT_TYPES.items()
    if subject_class is Platform and name not in ("PlatformRegistered", "ServiceRestored")
]


def moment(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


@st.composite
def platform_facts(draw, events: int = 25) -> list[NewFact]:
    """Random platform actions (many invalid) at random, distinct valid times."""
    minutes = draw(st.lists(st.integers(1, 10_000), min_size=1, max_size=events, unique=True))
    facts = []
    for minute in minutes:
        kind = draw(st.sampled_from(PLATFORM_ACTIONS))
        extra: dict = {"provider": draw(st.sampled_from(PROVIDERS))}
        if kind == "HostingRestored":
            extra["scope"] = draw(st.sampled_from(["full", "partial"]))
        if kind.startswith("AppStore"):
            extra["store"] = draw(st.sampled_from(["apple_app_store", "google_play"]))
        if kind == "ServiceTerminated":
            extra["service"] = "cdn"
        facts.append(fact(kind, "site", occurred_at=moment(minute), **extra))
    return facts


@st.composite
def account_facts(draw, events: int = 20) -> list[NewFact]:
    minutes = draw(st.lists(st.integers(1, 10_000), min_size=1, max_size=events, unique=True))
    facts = []
    for minute in minutes:
        kind = draw(st.sampled_from(["AccountSuspended", "AccountBanned", "AccountReinstated"]))
        extra = {}
        if kind == "AccountSuspended" and draw(st.booleans()):
            extra["until"] = moment(minute + draw(st.integers(1, 3000)))
        facts.append(fact(kind, "net:x", occurred_at=moment(minute), **extra))
    return facts


def new_subject(facts: list[NewFact]) -> Subject:
    if facts and facts[0].subject.kind == "account":
        return Account.track(SubjectKey.account("net:x"))
    subject = Platform.track(SubjectKey.platform("site"))
    record(subject, registration(), now=NOW - timedelta(hours=1))
    return subject


def record_all(subject: Subject, facts: list[NewFact], *, recorded_from=NOW) -> list[Subject.Fact]:
    accepted = []
    for i, new in enumerate(facts):
        with contextlib.suppress(RuleViolation):
            accepted.append(record(subject, new, now=recorded_from + timedelta(seconds=i)))
    return accepted


def moments(subject: Subject) -> list[datetime]:
    """Every moment where the status can change, and one just after each."""
    actions = [a for a in subject.facts.values() if isinstance(a, Subject.Action)]
    changes = {a.occurred_at for a in actions} | {
        a.until for a in actions if getattr(a, "until", None)
    }
    return sorted(changes | {m + timedelta(seconds=30) for m in changes})


def snapshot(subject: Subject, at_moments: list[datetime], known_at=None) -> list:
    return [describe(subject.state_at(m, known_at)) for m in at_moments]


def describe(state) -> tuple | None:
    if isinstance(state, PlatformState):
        return (state.overall, tuple(state.channels.items())) if state.registration else None
    return (state.status,)


histories = st.one_of(platform_facts(), account_facts())


@settings(max_examples=150, deadline=None)
@given(histories, st.randoms(use_true_random=False))
def test_with_distinct_valid_times_the_recording_order_of_accepted_facts_does_not_matter(
    facts, rnd
):
    subject = new_subject(facts)
    accepted = [a for a in record_all(subject, facts) if a.type != "PlatformRegistered"]
    rnd.shuffle(accepted)
    other = new_subject(facts)
    for action in accepted:  # as if the store had received them in this order
        event = type(action)(
            **{**vars(action), "originator_id": other.id, "originator_version": other.version + 1}
        )
        event.mutate(other)
    assert snapshot(other, moments(subject)) == snapshot(subject, moments(subject))


@settings(max_examples=150, deadline=None)
@given(histories)
def test_in_order_appends_accept_exactly_what_a_full_replay_accepts(facts):
    """The cached end state (fast path for in-order facts) never changes a verdict."""
    fast, slow = new_subject(facts), new_subject(facts)
    for i, new in enumerate(facts):
        verdicts = []
        for subject, cached in ((fast, True), (slow, False)):
            if not cached:
                subject._end_state = None
            try:
                record(subject, new, now=NOW + timedelta(seconds=i))
                verdicts.append("accepted")
            except RuleViolation as violation:
                verdicts.append(str(violation))
        assert verdicts[0] == verdicts[1]


@settings(max_examples=100, deadline=None)
@given(histories, st.data())
def test_knowledge_at_a_moment_is_exactly_what_had_been_recorded_by_then(facts, data):
    subject = new_subject(facts)
    accepted = record_all(subject, facts)
    if not accepted:
        return
    retracted = data.draw(st.sets(st.sampled_from(range(len(accepted))), max_size=3))
    retract_from = NOW + timedelta(days=1)
    for i, target in enumerate(accepted[n] for n in sorted(retracted)):
        if target.type == "PlatformRegistered":
            continue
        with contextlib.suppress(RuleViolation):
            record(
                subject,
                fact("EventRetracted", retracts=target.event_id, reason="test"),
                now=retract_from + timedelta(seconds=i),
            )
    for cut in range(len(subject.facts) + 1):
        facts_by_then = list(subject.facts.values())[:cut]
        known_at = facts_by_then[-1].recorded_at if facts_by_then else NOW - timedelta(days=1)
        replica = type(subject).track(subject.subject)  # an empty timeline ...
        for event in facts_by_then:  # ... given only what had been recorded by then
            replica.add(event)
        assert snapshot(subject, moments(subject), known_at) == snapshot(replica, moments(subject))
