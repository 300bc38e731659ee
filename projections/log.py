"""Reading the store's notification log page by page, in recording order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from eventsourcing.persistence import ApplicationRecorder, Notification


def pages(recorder: ApplicationRecorder, after: int, size: int) -> Iterator[Sequence[Notification]]:
    """The notifications after position `after`, a page of at most `size` at a time, until
    the log's end as it stood when each page was read (positions may have gaps)."""
    while True:
        page = recorder.select_notifications(after, size, inclusive_of_start=False)
        if page:
            yield page
        if len(page) < size:
            return
        after = page[-1].id
