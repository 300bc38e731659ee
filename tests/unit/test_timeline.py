"""The time model: late and out-of-order facts, retractions, and what was known when."""

from __future__ import annotations

import gc
import weakref
from datetime import timedelta

import pytest

from domain import Account, Platform
from domain.clock import now
from domain.errors import RuleViolation
from domain.timeline import Block, Timeline
from domain.values import SubjectKey
from projections.subject_cache import PICKLED
from tests.helpers import NOW, at, fact, record, registration


def registered(slug: str = "site") -> Platform:
    subject = Platform.track(SubjectKey.platform(slug), now())
    record(subject, registration(slug, app_stores=[]))
    return subject


def test_a_late_fact_takes_its_place_in_valid_time():
    subject = registered()
    record(subject, fact("HostingRestored", "site", occurred_at="2021-03-01", provider="H"))
    record(subject, fact("HostingTerminated", "site", occurred_at="2021-02-01", provider="H"))
    assert subject.state_at(at("2021-02-15T00:00:00Z")).overall.value == "offline"
    assert subject.state_at(at("2021-03-15T00:00:00Z")).overall.value == "online"


def test_a_fact_that_breaks_a_later_one_is_rejected_naming_it():
    subject = registered()
    later = record(subject, fact("DomainSuspended", "site", occurred_at="2021-03-01"))
    with pytest.raises(RuleViolation, match=f"would make event {later.event_id}") as rejected:
        record(subject, fact("DomainSuspended", "site", occurred_at="2021-02-01"))
    assert rejected.value.conflicts_with == later.event_id
    assert len(subject.timeline) == 2  # nothing changed


def test_same_valid_time_folds_in_recording_order():
    subject = registered()
    record(subject, fact("HostingTerminated", "site", occurred_at="2021-01-01", provider="H"))
    record(subject, fact("HostingRestored", "site", occurred_at="2021-01-01", provider="H"))
    assert subject.state_at(at("2021-01-01T00:00:00Z")).overall.value == "online"


def test_future_facts_are_rejected_but_five_minutes_of_clock_skew_are_not():
    subject = registered()
    soon = (NOW + timedelta(minutes=4)).isoformat()
    record(subject, fact("DomainSuspended", "site", occurred_at=soon))
    later = (NOW + timedelta(minutes=6)).isoformat()
    with pytest.raises(RuleViolation, match="in the future"):
        record(subject, fact("DomainRestored", "site", occurred_at=later))


def test_a_retraction_removes_the_fact_from_knowledge_recorded_after_it():
    subject = registered()
    cut = record(subject, fact("HostingTerminated", "site", occurred_at="2021-01-01", provider="H"))
    retracted_at = NOW + timedelta(hours=1)
    record(subject, fact("EventRetracted", retracts=cut.event_id, reason="wrong"), now=retracted_at)
    as_of = at("2021-06-01T00:00:00Z")
    assert subject.state_at(as_of).overall.value == "online"
    assert (
        subject.state_at(as_of, known_at=retracted_at - timedelta(seconds=1)).overall.value
        == "offline"
    )
    assert subject.state_at(as_of, known_at=retracted_at).overall.value == "online"
    assert subject.state_at(as_of, known_at=NOW - timedelta(seconds=1)).registration is None


def test_retractions_that_are_refused():
    subject = registered()
    cut = record(subject, fact("HostingTerminated", "site", occurred_at="2021-01-01", provider="H"))
    back = record(subject, fact("HostingRestored", "site", occurred_at="2021-02-01", provider="K"))
    with pytest.raises(RuleViolation, match="not recorded"):
        record(subject, fact("EventRetracted", retracts="nope", reason="r"))
    with pytest.raises(RuleViolation, match="registration cannot be retracted"):
        record(subject, fact("EventRetracted", retracts=subject.registration.event_id, reason="r"))
    retraction = record(subject, fact("EventRetracted", retracts=back.event_id, reason="r"))
    with pytest.raises(RuleViolation, match="already retracted") as again:
        record(subject, fact("EventRetracted", retracts=back.event_id, reason="other reason"))
    assert again.value.conflicts_with == retraction.event_id
    with pytest.raises(RuleViolation, match="itself a retraction"):
        record(subject, fact("EventRetracted", retracts=retraction.event_id, reason="r"))
    assert cut.event_id in {a.event_id for a in subject.timeline}


def test_a_retraction_that_would_break_the_timeline_is_refused():
    subject = registered()
    record(subject, fact("HostingTerminated", "site", occurred_at="2021-01-01", provider="H"))
    back = record(subject, fact("HostingRestored", "site", occurred_at="2021-02-01", provider="H"))
    again = record(
        subject, fact("HostingTerminated", "site", occurred_at="2021-03-01", provider="H")
    )
    with pytest.raises(RuleViolation, match=f"would make event {again.event_id}"):
        record(subject, fact("EventRetracted", retracts=back.event_id, reason="r"))


def test_retracting_a_ban_lets_the_timed_suspension_before_it_run_out():
    key = "net:x"
    subject = Account.track(SubjectKey.account(key), now())
    record(
        subject,
        fact(
            "AccountSuspended",
            key,
            occurred_at="2021-01-01T00:00:00Z",
            until="2021-01-02T00:00:00Z",
        ),
    )
    ban = record(subject, fact("AccountBanned", key, occurred_at="2021-01-01T06:00:00Z"))
    assert subject.state_at(at("2021-01-03T00:00:00Z")).status.value == "banned"
    record(subject, fact("EventRetracted", retracts=ban.event_id, reason="misreported"))
    assert subject.state_at(at("2021-01-03T00:00:00Z")).status.value == "active"


def test_a_subject_kept_between_writes_holds_its_untouched_past_frozen_and_thaws_it_on_demand():
    subject = registered()
    cuts = []
    for month in range(1, 13):
        for day in range(1, 29):
            cuts.append(
                record(
                    subject,
                    fact(
                        "ServiceTerminated",
                        "site",
                        occurred_at=f"2021-{month:02}-{day:02}",
                        service=f"s{day}",
                    ),
                )
            )
    before = [a.event_id for a in subject.timeline]
    subject.freeze(PICKLED)
    frozen = [b for b in subject.timeline.blocks if b.frozen]
    assert len(frozen) == len(subject.timeline.blocks) - 1  # all but the last
    assert subject.weight < len(before) // 5
    # A retraction of a frozen fact, and a late fact in a frozen block, thaw what they need.
    record(subject, fact("EventRetracted", retracts=cuts[3].event_id, reason="wrong"))
    record(subject, fact("ServiceRestored", "site", occurred_at="2021-01-02", service="s1"))
    assert len(frozen) - 2 <= sum(b.frozen for b in subject.timeline.blocks) < len(frozen)
    with pytest.raises(RuleViolation, match="already retracted"):
        record(subject, fact("EventRetracted", retracts=cuts[3].event_id, reason="again"))
    late = record(subject, fact("DomainSuspended", "site", occurred_at="2021-06-01T12:00:00Z"))
    with pytest.raises(RuleViolation, match=f"would make event {late.event_id}"):
        record(subject, fact("DomainSuspended", "site", occurred_at="2021-05-01"))
    recorded = [a.event_id for a in subject.timeline if a.type == "ServiceTerminated"]
    assert recorded == [c.event_id for c in cuts if c is not cuts[3]]
    facts = subject.facts  # every fact, in recording order
    assert list(facts) == [
        f.event_id for f in sorted(facts.values(), key=lambda f: f.originator_version)
    ]
    assert subject.state_at(at("2021-06-02T00:00:00Z")).overall.value == "offline"


def test_a_subject_nothing_uses_is_freed_at_once_without_the_garbage_collector(monkeypatch):
    """Its timeline, its checkpoints and their folds hold no reference to it: a released
    subject (a rebuild releases one hot subject after another) is no cycle left to linger
    until the collector runs."""
    monkeypatch.setattr("domain.timeline.BLOCK", 2)
    subject = registered()
    for day in (3, 5, 7, 9):
        record(
            subject, fact("HostingRestored", "site", occurred_at=f"2021-01-0{day}", provider="H")
        )
        record(
            subject,
            fact("HostingTerminated", "site", occurred_at=f"2021-01-0{day - 1}", provider="H"),
        )  # late: checkpoints are folded
    with pytest.raises(RuleViolation):  # a refusal's message reads the subject's terminations
        record(subject, fact("HostingTerminated", "site", occurred_at="2021-01-04", provider="H"))
    subject.freeze(PICKLED)
    assert len(subject.timeline.blocks) > 2 and subject.timeline.end is not None
    released = weakref.ref(subject)
    gc.disable()
    try:
        del subject
        assert released() is None
    finally:
        gc.enable()


class ListKeeper:
    """A keeper whose frozen form is the actions themselves; it notes how many blocks each
    read thaws."""

    def __init__(self) -> None:
        self.reads: list[int] = []

    def thaw(self, frozen):
        self.reads.append(1)
        return frozen

    def freeze(self, actions):
        return actions

    def may_hold(self, frozen, event_id):
        return False

    def thaw_many(self, frozen):
        self.reads.append(len(frozen))
        return frozen


def test_a_timeline_is_in_memory_once_its_kept_blocks_and_their_starts_are_read():
    """Blocks a keeper holds elsewhere count as out of memory until their actions and their
    starts have been read (a start read later could find the keeper's copy changed)."""
    subject = registered()
    for day in ("2021-01-01", "2021-01-02"):
        record(
            subject,
            fact(
                "DomainSuspended" if day.endswith("1") else "DomainRestored",
                "site",
                occurred_at=day,
            ),
        )
    actions = list(subject.timeline)

    reads = []
    kept = [
        Block.kept(0, actions[0].order, ListKeeper(), actions[:1], None),
        Block.kept(1, actions[1].order, ListKeeper(), actions[1:], lambda: reads.append(1)),
    ]
    timeline = Timeline(subject.initial_state)
    timeline.restore(kept, len(actions), 2, None)
    assert not timeline.in_memory()
    assert [a.event_id for a in timeline] == [a.event_id for a in actions]
    assert not timeline.in_memory() and reads == []  # block 1's start is still unread
    assert kept[1].start is None and reads == [1]
    assert timeline.in_memory()


def test_reading_back_through_kept_blocks_takes_a_few_reads_not_one_a_block():
    """Looking back from the end of a timeline whose 65 blocks its keeper holds elsewhere (a
    refusal looking for a provider's last termination): the blocks are read with those
    before them, twice as many each time, and all are read in order, the latest first."""
    subject = registered()
    for n in range(128):
        kind = "DomainRestored" if n % 2 else "DomainSuspended"
        moment = f"2021-{1 + n // 28:02d}-{1 + n % 28:02d}"
        record(subject, fact(kind, "site", occurred_at=moment))
    ordered = list(subject.timeline)
    keeper = ListKeeper()
    blocks = [
        Block.kept(n // 2, ordered[n].order, keeper, ordered[n : n + 2], None)
        for n in range(0, len(ordered), 2)
    ]
    timeline = Timeline(subject.initial_state)
    timeline.restore(blocks, len(ordered), 1, None)
    end = (ordered[-1].order[0], ordered[-1].order[1] + 1)
    assert [a.event_id for a in timeline.backwards(end)] == [a.event_id for a in reversed(ordered)]
    assert sum(keeper.reads) == len(blocks) and len(keeper.reads) <= 8, keeper.reads
