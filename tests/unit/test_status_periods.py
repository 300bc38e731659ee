"""The read models' periods and intervals say what the domain fold says, at every moment."""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import given, settings

from projections.status import OVERALL, describe, intervals, snapshots
from tests.unit.test_properties import histories, moments, new_subject, record_all


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
@given(histories)
def test_periods_and_intervals_agree_with_the_fold_at_every_moment(facts):
    subject = new_subject(facts)
    record_all(subject, facts)
    periods = snapshots(subject)
    runs = intervals(periods)
    for moment in moments(subject) + [m - timedelta(microseconds=1) for m in moments(subject)]:
        period = period_at(periods, moment)
        state = subject.state_at(moment)
        if period is None:  # before the subject exists
            assert not subject.timeline or moment < subject.timeline[0].occurred_at
            continue
        assert (period.readings, period.document) == describe(state)
        for channel, status in period.readings.items():
            [run] = [r for r in runs if r.channel == channel and period_at([r], moment)]
            assert run.status == status
    overall = [r for r in runs if r.channel == OVERALL]
    assert all(a.status != b.status for a, b in itertools.pairwise(overall))  # runs are maximal
