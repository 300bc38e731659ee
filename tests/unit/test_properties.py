"""Properties of the fold over random histories (Hypothesis)."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import Subject
from domain.errors import RuleViolation
from domain.platform import PlatformState
from tests.helpers import NOW, change_moments, fact, new_subject, record, record_all
from tests.strategies import subject_histories


def snapshot(subject: Subject, at_moments: list[datetime], known_at=None) -> list:
    return [describe(subject.state_at(m, known_at)) for m in at_moments]


def describe(state) -> tuple | None:
    if isinstance(state, PlatformState):
        return (state.overall, tuple(state.channels.items())) if state.registration else None
    return (state.status,)


@settings(max_examples=150, deadline=None)
@given(subject_histories, st.randoms(use_true_random=False))
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
    assert snapshot(other, change_moments(subject)) == snapshot(subject, change_moments(subject))


@settings(max_examples=150, deadline=None)
@given(subject_histories)
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
@given(subject_histories, st.data())
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
        assert snapshot(subject, change_moments(subject), known_at) == snapshot(
            replica, change_moments(subject)
        )
