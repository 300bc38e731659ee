"""The query port: what can be asked of the store, and the typed answers.

The read models answer it (adapters/); the tests hold a fold of the events that answers
it too, as the reference the read models are compared with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.clock import iso
from domain.errors import UnknownSubject
from domain.values import Status, SubjectKey, SubjectKind
from projections.documents import (
    FactRecord,
    HistoryEntry,
    PlatformDocument,
    StatusDocument,
    in_region,
)
from projections.status import Interval


class StoredDocument:
    """A status document as the read models store it (compact JSON), with its status, decoded
    when first read: a listing of thousands reads their statuses or passes the text on, and
    decodes only what it looks into."""

    __slots__ = ("_decode", "_document", "status", "text")

    def __init__(self, status: Status, text: str, decode: Callable[[str], StatusDocument]):
        self.status = status
        self.text = text
        self._decode = decode
        self._document: StatusDocument | None = None

    def decoded(self) -> StatusDocument:
        if self._document is None:
            self._document = self._decode(self.text)
        return self._document


@dataclass(frozen=True, eq=False)
class SubjectStatus:
    """A subject's status at `as_of`, as the store knew it at `known_at`."""

    subject: SubjectKey  # as first spelled
    as_of: datetime
    known_at: datetime | None  # None: the store's current knowledge
    answer: StatusDocument | StoredDocument

    @property
    def document(self) -> StatusDocument:
        answer = self.answer
        return answer.decoded() if isinstance(answer, StoredDocument) else answer

    @property
    def stored(self) -> str | None:
        """The document as stored (JSON), if it came from the store undecoded."""
        return self.answer.text if isinstance(self.answer, StoredDocument) else None

    @property
    def status(self) -> Status:
        return self.answer.status

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SubjectStatus):
            return NotImplemented
        return (self.subject, self.as_of, self.known_at, self.document) == (
            other.subject,
            other.as_of,
            other.known_at,
            other.document,
        )

    __hash__ = None  # type: ignore[assignment]  # equal by a document that is mutable

    def in_region(self, region: str | None) -> SubjectStatus:
        """The same answer in a country (None: worldwide, as it is)."""
        if region is None:
            return self
        return SubjectStatus(
            self.subject, self.as_of, self.known_at, in_region(self.document, region)
        )

    def stamped(self, known_at: datetime | None) -> SubjectStatus:
        """The same answer, saying when the store knew it (built directly: a listing stamps
        thousands, and `dataclasses.replace` costs several times a construction)."""
        return SubjectStatus(self.subject, self.as_of, known_at, self.answer)

    @property
    def name(self) -> str:
        """What to call it: a platform's name, an account's key."""
        if isinstance(self.document, PlatformDocument):
            return self.document.name
        return self.subject.key


class Queries(Protocol):
    """Questions about subjects at any valid time (`as_of`), as the store knew them at any
    transaction time (`known_at`; None: its current knowledge)."""

    def status(
        self, key: SubjectKey, as_of: datetime, known_at: datetime | None
    ) -> SubjectStatus: ...

    def statuses(
        self,
        as_of: datetime,
        known_at: datetime | None,
        status: Status | None = None,
        region: str | None = None,
        stamp: datetime | None = None,
    ) -> list[SubjectStatus]:
        """Every subject that exists at `as_of` (with that overall status, if given),
        platforms first, then by identity; worldwide, or the answers in a country. Each says
        the store knew it at `stamp` (by default `known_at`: when the caller asked, say)."""
        ...

    def page(
        self,
        as_of: datetime,
        known_at: datetime | None,
        status: Status | None,
        kind: SubjectKind | None,
        limit: int,
        offset: int,
        *,
        search: str | None = None,
        provider: str | None = None,
        region: str | None = None,
        stamp: datetime | None = None,
    ) -> tuple[list[SubjectStatus], int]:
        """A page of `statuses` (of one kind, if given; whose key holds `search`; that
        `provider` acted on by `as_of`), in the same order, and how many there are in all."""
        ...

    def history(
        self,
        key: SubjectKey,
        known_at: datetime | None,
        limit: int | None = None,
        offset: int = 0,
        region: str | None = None,
        between: tuple[datetime, datetime] | None = None,
    ) -> list[HistoryEntry]:
        """The subject's facts in valid-time order, with positions and retraction marks (in
        a country: the worldwide ones and those naming it; `between`: those that occurred
        in `(start, end]`)."""
        ...

    def intervals(
        self, keys: Sequence[SubjectKey], known_at: datetime | None, region: str | None = None
    ) -> dict[SubjectKey, list[Interval]]:
        """Per subject and channel, the runs of one status, worldwide or in a country;
        unknown subjects get none."""
        ...

    def changed(self, start: datetime, end: datetime) -> list[SubjectKey]:
        """The subjects (as known now) with a period beginning in `(start, end]`: those whose
        status may have changed then, in `change_order`."""
        ...

    def probe(self) -> None:
        """A trivial read, within the bounds of every read (a health check's)."""
        ...

    def exists(self, key: SubjectKey, known_at: datetime | None) -> bool:
        """Whether the store has (had, at `known_at`) any record of the subject."""
        ...

    def periods(
        self, keys: Sequence[SubjectKey], start: datetime, end: datetime, known_at: datetime | None
    ) -> dict[SubjectKey, list[Period]]:
        """Per subject, its periods that overlap `[start, end)` in which it was unavailable
        somewhere (so has measures in force), in valid-time order."""
        ...

    def naming(self, region: str, known_at: datetime | None, limit: int) -> list[FactRecord]:
        """The last `limit` facts that name a country (not retracted), last recorded first."""
        ...

    def acted_on(
        self, provider: str, start: datetime, end: datetime, known_at: datetime | None
    ) -> list[SubjectKey]:
        """The subjects `provider` acted on in `[start, end)` (facts not retracted), in the
        order of listings."""
        ...


@dataclass(frozen=True)
class Period:
    """A subject's status over `[valid_from, valid_to)` (open: still), as one document."""

    valid_from: datetime
    valid_to: datetime | None
    document: StatusDocument


def no_record(key: SubjectKey) -> UnknownSubject:
    return UnknownSubject(f"no record of {key.kind} {key.key!r}")


def nothing_known(key: SubjectKey, known_at: datetime) -> UnknownSubject:
    return UnknownSubject(f"nothing was known of {key.key!r} at {iso(known_at)}")


def not_yet(key: SubjectKey, as_of: datetime, exists_from: datetime | None) -> UnknownSubject:
    since = f" (registered at {iso(exists_from)})" if exists_from else ""
    return UnknownSubject(f"{key.key!r} did not exist yet at {iso(as_of)}{since}")


def change_order(key: SubjectKey) -> tuple[str, str]:
    """Accounts, then platforms, by identity: the order of changes."""
    return key.kind, key.identity


def sort_key(key: SubjectKey) -> tuple[bool, str]:
    """Platforms first, then by identity: the order of every listing."""
    return key.kind != "platform", key.identity
