"""Properties of the fold over random histories (Hypothesis)."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import Subject
from domain.clock import now
from domain.errors import RuleViolation
from domain.platform import PlatformState
from domain.timeline import replay
from projections.subject_cache import PICKLED
from service.recording import NewFact
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


def verdict(subject: Subject, new: NewFact, now: datetime, block: int) -> tuple:
    """Records `new` with timeline blocks of `block` actions: what the rules said."""
    with patch("domain.timeline.BLOCK", block):
        try:
            record(subject, new, now=now)
            return ("accepted",)
        except RuleViolation as violation:
            return (str(violation), violation.conflicts_with)


def full_refold(subject: Subject, new: NewFact, now: datetime) -> tuple:
    """The reference: one block, no checkpoint kept, so every check folds the whole timeline."""
    subject.timeline.fresh, subject.timeline.end = 1, None
    return verdict(subject, new, now, block=10**9)


def assert_checkpoints_hold(subject: Subject) -> None:
    """Every start a block claims to know is the fold of all the actions before it; the
    timeline knows which of its blocks are not frozen."""
    blocks = subject.timeline.blocks
    assert subject.timeline.thawed_blocks == {b for b in blocks if not b.frozen}
    state = subject.initial_state()
    for index, block in enumerate(subject.timeline.blocks):
        if 0 < index < subject.timeline.fresh:
            assert block.start == state
        replay(state, subject.timeline.read(block), None)
    assert subject.timeline.end is None or subject.timeline.end == state


@settings(max_examples=300, deadline=None)
@given(subject_histories, st.data())
def test_checkpointed_validation_gives_exactly_the_verdicts_and_states_of_a_full_refold(
    facts, data
):
    """Late facts and retractions, checked from the nearest checkpoint (blocks of 2 actions,
    so that every path is taken, some of them frozen between steps), against the whole
    timeline refolded for each fact."""
    fast, slow = new_subject(facts), new_subject(facts)
    steps: list[NewFact] = list(facts)
    retractions = data.draw(st.lists(st.floats(0, 1, exclude_max=True), max_size=6))
    for share in retractions:  # each retracts a share of what was accepted when it is met
        steps.insert(data.draw(st.integers(0, len(steps))), share)
    for i, step in enumerate(steps):
        now = NOW + timedelta(seconds=i)
        if data.draw(st.booleans()):  # as a writer keeps it between writes
            fast.freeze(PICKLED)
        if isinstance(step, float):
            accepted = list(fast.timeline)
            if not accepted:
                continue
            target = accepted[int(step * len(accepted))].event_id
            step = fact("EventRetracted", retracts=target, reason="test")
        assert verdict(fast, step, now, block=2) == full_refold(slow, step, now)
        assert [a.event_id for a in fast.timeline] == [a.event_id for a in slow.timeline]
        assert_checkpoints_hold(fast)
    assert snapshot(fast, change_moments(slow)) == snapshot(slow, change_moments(slow))


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
        replica = type(subject).track(subject.subject, now())  # an empty timeline ...
        for event in facts_by_then:  # ... given only what had been recorded by then
            replica.add(event)
        assert snapshot(subject, change_moments(subject), known_at) == snapshot(
            replica, change_moments(subject)
        )


@settings(max_examples=150, deadline=None)
@given(subject_histories, st.data())
def test_the_fold_before_a_moment_read_from_checkpoints_is_the_fold_from_the_start(facts, data):
    """What a projection redoes rows from: a subject loaded from its events (its timeline's
    changes not checked, in blocks of 3), folded before any moment, and its actions from it."""
    recorded = new_subject(facts)
    record_all(recorded, facts)
    with patch("domain.timeline.BLOCK", 3):
        loaded = type(recorded).track(recorded.subject, now())
        for event in recorded.facts.values():  # in recording order, as the store holds them
            copy = type(event)(**{**vars(event), "originator_version": loaded.version + 1})
            copy.mutate(loaded)
        moments = [*change_moments(recorded), NOW]
        for moment in data.draw(st.lists(st.sampled_from(moments), max_size=4)):
            timeline = list(loaded.timeline)
            earlier = [a for a in timeline if a.occurred_at < moment]
            found = loaded.timeline.before(moment)
            assert list(loaded.timeline.since(moment)) == timeline[len(earlier) :]
            if not earlier:
                assert found is None
                continue
            assert found is not None
            expected = loaded.initial_state()
            replay(expected, earlier, None)
            state, last = found
            assert last is earlier[-1]
            assert vars(state) == vars(expected)  # services too
