"""The status projection and the runner that keeps it up to date from the event stream.

The library's `ProjectionRunner` needs `subscribe()` (PostgreSQL only) and applies
one event per transaction. This runner polls the notification log on either store
and applies a page of events per transaction: the subjects a page touches are
recomputed once, exactly as they stood at the page's last position, and the
read-model rows and the library's tracking record are written together. A page
applied twice fails the tracking record's forward-only check and rolls back, so
a crash or a second runner never applies an event twice, nor skips one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

import structlog
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.projection import Projection

from domain import Subject
from domain.clock import from_micros, iso, micros
from domain.values import SubjectKey
from projections.documents import to_record
from projections.ports import RetractionMark, StatusView, SubjectRows, TimelineRow
from projections.status import intervals, snapshots

if TYPE_CHECKING:
    from service.application import Deplatforming

log = structlog.get_logger(__name__)

PAGE = 500


class StatusProjection(Projection[StatusView]):
    """Status periods, per-channel intervals, current status and timelines of every subject."""

    name = "status"

    def __init__(self, view: StatusView, app: Deplatforming) -> None:
        super().__init__(view)
        self.app = app

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.process_page([(tracking.notification_id, domain_event)], tracking)

    def process_page(self, page: Sequence[tuple[int, Any]], tracking: Tracking) -> None:
        versions: dict[UUID, int] = {}
        actions: list[tuple[Subject.Action, int]] = []
        retractions: list[RetractionMark] = []
        for position, event in page:
            versions[event.originator_id] = event.originator_version
            if isinstance(event, Subject.EventRetracted):
                retractions.append(
                    RetractionMark(
                        event.originator_id.hex,
                        event.retracts,
                        event.event_id,
                        micros(event.recorded_at),
                        event.reason,
                    )
                )
            elif isinstance(event, Subject.Action):
                actions.append((event, position))
        subjects = self.app.load_many(list(versions), versions)
        timeline = [
            timeline_row(action, position, subjects[action.originator_id].subject)
            for action, position in actions
        ]
        rows = [subject_rows(subjects[subject_id]) for subject_id in versions]
        self.view.apply(rows, timeline, retractions, tracking)


def subject_rows(subject: Subject) -> SubjectRows:
    periods = snapshots(subject)
    key = subject.subject
    return SubjectRows(subject.id.hex, key.kind, key.key, key.identity, periods, intervals(periods))


def timeline_row(action: Subject.Action, position: int, subject: SubjectKey) -> TimelineRow:
    return TimelineRow(
        action.originator_id.hex,
        action.event_id,
        position,
        micros(action.occurred_at),
        action.originator_version,
        action.type,
        getattr(action, "provider", None),
        micros(action.recorded_at),
        to_record(action, subject, position),
    )


class Runner:
    """Keeps one generation of the status read models up to date."""

    def __init__(
        self, app: Deplatforming, view: StatusView, page: int = PAGE, *, serves_readers: bool = True
    ) -> None:
        self.app = app
        self.view = view
        self.serves_readers = serves_readers  # follows the generation readers use (not a rebuild)
        self._position: int | None = None  # cached: a stale one only costs a refused page
        self.projection = StatusProjection(view, app)
        self.page = page

    @property
    def position(self) -> int:
        """How far this generation has applied the event stream (read from the store)."""
        self._position = self.view.max_tracking_id(self.view.tracking_key) or 0
        return self._position

    def lag(self) -> int:
        return max((self.app.recorder.max_notification_id() or 0) - self.position, 0)

    def catch_up(self, progress: Callable[[int], None] | None = None) -> int:
        """Applies every event recorded so far; returns how many this call applied."""
        if self.serves_readers and self.view.follow_active():  # a rebuild replaced it
            self._position = None
        applied = 0
        while True:
            after = self._position if self._position is not None else self.position
            notifications = self.app.recorder.select_notifications(
                after, self.page, inclusive_of_start=False
            )
            if not notifications:
                return applied
            page = [(n.id, self.app.mapper.to_domain_event(n)) for n in notifications]
            tracking = Tracking(self.view.tracking_key, notifications[-1].id)
            try:
                self.projection.process_page(page, tracking)
            except IntegrityError:
                log.info("page applied by another runner; moving on", after=after)
                self._position = None
                continue
            self._position = tracking.notification_id
            applied += len(page)
            if progress is not None:
                progress(len(page))

    def follow(
        self, stop: threading.Event, poll: float = 0.5, report: Callable[[], None] | None = None
    ) -> None:
        """Catches up, then keeps following new events until `stop` is set. An error is
        recorded (for `report`) and stops the runner: what it applied stays applied."""
        while not stop.is_set():
            try:
                applied = self.catch_up()
            except Exception as error:
                self.view.record_error(f"{type(error).__name__}: {error}")
                log.error("projection stopped", error=str(error), position=self.position)
                raise
            if applied and report is not None:
                report()
            stop.wait(poll)

    def report(self) -> dict[str, Any]:
        meta = self.view.meta()
        head = self.app.recorder.max_notification_id() or 0
        return {
            "projection": self.projection.name,
            "generation": meta["generation"],
            "position": self.position,
            "head": head,
            "lag": max(head - self.position, 0),
            "last_error": meta["last_error"],
            "last_error_at": iso(from_micros(meta["last_error_at"]))
            if meta["last_error_at"]
            else None,
        }
