"""What a writer keeps in memory between writes: bounded by its budget, whatever the
length of the histories it holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain import Platform
from domain.clock import now
from domain.values import SubjectKey
from projections.subject_cache import SubjectCache
from tests.helpers import fact, record, registration

START = datetime(2021, 1, 1, tzinfo=UTC)


def platform_with(slug: str, services: int) -> Platform:
    subject = Platform.track(SubjectKey.platform(slug), now())
    record(subject, registration(slug))
    for n in range(services):  # in valid-time order, as most facts arrive
        moment = (START + timedelta(hours=n)).isoformat()
        record(subject, fact("ServiceTerminated", slug, occurred_at=moment, service=f"s{n}"))
    return subject


def test_subjects_checked_in_are_kept_frozen_and_weigh_a_twentieth_of_their_facts():
    cache = SubjectCache(budget=1_000)
    hot = platform_with("hot", 5_000)
    cache.checkin([hot])
    assert cache.take([hot.id]) == {hot.id: hot}  # kept, though over budget: in use
    assert sum(b.frozen for b in hot.timeline.blocks) == len(hot.timeline.blocks) - 1
    assert hot.weight <= 5_000 // 20 + 32
    cache.checkin([hot])  # not written to since: its last block freezes too
    assert all(b.frozen for b in hot.timeline.blocks) and hot.weight <= 5_000 // 20


def test_the_least_recently_used_subjects_go_once_the_budget_is_spent():
    cache = SubjectCache(budget=500)
    first, second, third = (platform_with(s, 4_000) for s in ("a", "b", "c"))
    cache.checkin([first])
    cache.checkin([second])
    cache.checkin([third])  # 3 x about 230 > 500: the first goes
    assert cache.take([first.id, second.id, third.id]).keys() == {second.id, third.id}
