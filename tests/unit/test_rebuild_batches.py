"""A rebuild reads, folds and writes subjects in batches bounded by their events, so that
its memory follows the batch and not the history."""

from __future__ import annotations

from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from projections.status_projection import BATCH, BATCH_EVENTS, batches

lengths = st.lists(st.integers(1, 3 * BATCH_EVENTS), max_size=3 * BATCH).map(
    lambda sizes: {UUID(int=n): size for n, size in enumerate(sizes)}
)


@given(lengths)
def test_batches_take_every_subject_once_in_order_and_stay_within_their_bounds(subjects):
    found = list(batches(subjects))
    assert [s for batch in found for s in batch] == list(subjects)
    for batch in found:
        assert 0 < len(batch) <= BATCH
        assert len(batch) == 1 or sum(subjects[s] for s in batch) <= BATCH_EVENTS


def test_small_subjects_share_a_batch_and_a_hot_one_goes_alone():
    small = {UUID(int=n): 10 for n in range(BATCH)}
    hot = {UUID(int=BATCH): 10 * BATCH_EVENTS}
    assert [len(b) for b in batches(small | hot | small)] == [BATCH, 1]
    assert [len(b) for b in batches({**hot, UUID(int=1): 5})] == [1, 1]
