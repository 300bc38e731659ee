"""The read models' periods and intervals say what the domain fold says, at every moment."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings

from domain.clock import now
from projections.documents import OVERALL, PlatformDocument, document, readings
from projections.status import intervals, snapshots
from tests.helpers import change_moments, new_subject, record_all
from tests.strategies import subject_histories


def period_at(periods, moment):
    return next(
        (
            p
            for p in periods
            if p.valid_from <= moment and (p.valid_to is None or moment < p.valid_to)
        ),
        None,
    )


@settings(max_examples=200, deadline=None)
@given(subject_histories)
def test_periods_and_intervals_agree_with_the_fold_at_every_moment(facts):
    subject = new_subject(facts)
    record_all(subject, facts)
    periods = snapshots(subject)
    runs = intervals(periods)
    moments = change_moments(subject)
    for moment in moments + [m - timedelta(microseconds=1) for m in moments]:
        period = period_at(periods, moment)
        state = subject.state_at(moment)
        if period is None:  # before the subject exists
            first = subject.timeline.first()
            assert first is None or moment < first.occurred_at
            continue
        held = period.document
        if isinstance(held, PlatformDocument):  # since when, and why: the overall run's start
            [run] = [r for r in runs if r.channel == OVERALL and period_at([r], moment)]
            assert held.since == run.valid_from
            assert (held.last_event.event_id if held.last_event else None) == run.event_id
            held = replace(held, since=None, last_event=None)
        assert (period.readings, held) == (readings(document(state)), document(state))
        for channel, status in period.readings.items():
            [run] = [r for r in runs if r.channel == channel and period_at([r], moment)]
            assert run.status == status
    overall = [r for r in runs if r.channel == OVERALL]
    assert all(a.status != b.status for a, b in itertools.pairwise(overall))  # runs are maximal


def test_an_interval_is_credited_to_the_fact_that_changed_it_at_a_shared_moment():
    from domain import Platform
    from domain.values import SubjectKey
    from tests.helpers import fact, record, registration

    for first, second in (
        ("HostingRestored", "ServiceRestored"),
        ("ServiceRestored", "HostingRestored"),
    ):
        subject = Platform.track(SubjectKey.platform("site"), now())
        record(subject, registration(app_stores=[]))
        record(subject, fact("HostingTerminated", "site", occurred_at="2021-01-01", provider="H"))
        extra = {"HostingRestored": {"scope": "partial"}, "ServiceRestored": {"service": "cdn"}}
        recorded = {
            kind: record(
                subject, fact(kind, "site", occurred_at="2021-01-02", provider="G", **extra[kind])
            )
            for kind in (first, second)
        }
        last = intervals(snapshots(subject))[-1]
        assert (last.channel, last.status) == ("web", "partial")
        assert last.event_id == recorded["HostingRestored"].event_id
