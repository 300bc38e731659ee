"""The one read path: every query goes through `QueryService` to the read models, which
answer any `as_of` and `known_at` (both are predicates on their rows' stored ranges).
Reads never project: a runner beside them does (a thread of the server, or
`deplatform projections run`). A read made after a write of this process (or
after a position the caller names) waits, bounded, for the read models to reach
it, and otherwise answers from them as they are; `progress()` says how far
behind they are.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.clock import now
from domain.errors import UnknownSubject
from domain.values import Status, SubjectKey, SubjectKind
from projections.documents import CHANNEL_ORDER, FactRecord, HistoryEntry
from projections.runner import Progress, Runner
from projections.status import Interval, from_the_start
from service.queries import Queries, SubjectStatus, no_record
from service.reports import (
    Header,
    ProviderStanding,
    Report,
    Selection,
    accountability,
    build,
    standings,
)

READ_WAIT = 2.0  # seconds a read waits for the read models to reach a write it follows
CHUNK = 500  # subjects whose changes are read at once


@dataclass(frozen=True)
class Transition:
    """A channel's status changing at `at`, by `event` (None: a timed suspension ran out),
    worldwide or in a country (`region`)."""

    channel: str
    at: datetime
    before: Status | None  # None: the subject began to exist
    after: Status
    event: FactRecord | None
    region: str | None = None


Ends = dict[str, tuple[Status | None, Status | None]]  # per channel, its status at each end


class TooLarge(ValueError):
    """A question whose answer would be too large to give at once."""


@dataclass(frozen=True)
class Changes:
    """A page of changes, and the cursor of the next (None: the last page)."""

    subjects: list[Change]
    next: int | None


@dataclass(frozen=True)
class Change:
    """A subject whose status changed on some channel inside a period: per channel its
    statuses at the two ends (worldwide, and in each country whose own answer changed),
    every transition in order, and the facts of the period."""

    subject: SubjectKey
    channels: Ends
    transitions: list[Transition]
    events: list[HistoryEntry]
    regions: dict[str, Ends] = field(default_factory=dict)


def status_at(runs: Sequence[Interval], moment: datetime) -> Status | None:
    for run in runs:
        if run.valid_from <= moment and (run.valid_to is None or moment < run.valid_to):
            return run.status
    return None


@dataclass(frozen=True)
class Move:
    """A run that begins inside a period, with the run before it on its channel."""

    earlier: Interval | None
    run: Interval

    @property
    def change(self) -> tuple[str, datetime, Status | None, Status]:
        before = self.earlier.status if self.earlier is not None else None
        return self.run.channel, self.run.valid_from, before, self.run.status

    def transition(self, facts: dict[str, FactRecord], region: str | None) -> Transition:
        event = facts.get(self.run.event_id) if self.run.event_id else None
        return Transition(*self.change, event, region)


def moves(runs: Sequence[Interval], start: datetime, end: datetime) -> list[Move]:
    """The runs (in channel order) that begin in `(start, end]`."""
    return [
        Move(runs[n - 1] if n and runs[n - 1].channel == run.channel else None, run)
        for n, run in enumerate(runs)
        if start < run.valid_from <= end
    ]


def ends_of(runs: Sequence[Interval], start: datetime, end: datetime) -> Ends:
    """Per channel, its status at `start` and at `end`."""
    return {
        channel: (status_at(channel_runs, start), status_at(channel_runs, end))
        for channel in CHANNEL_ORDER
        if (channel_runs := [r for r in runs if r.channel == channel])
    }


CANDIDATES = 50  # spellings that difflib compares with an unknown subject's, at most


def letter_pairs(spelling: str) -> set[str]:
    """Its pairs of adjacent letters, the first and last with the word's edges."""
    padded = f" {spelling} "
    return {padded[i : i + 2] for i in range(len(padded) - 1)}


class QueryService:
    def __init__(
        self,
        read_models: Queries,
        runner: Runner,
        *,
        wait: float = READ_WAIT,
        recorded_at: Callable[[int], datetime | None] = lambda position: None,
    ) -> None:
        self.read_models = read_models
        self.runner = runner
        self.recorded_at = recorded_at  # when the event at a position was recorded
        self.wait = wait
        self.written = 0  # the last position this process wrote
        self._pinned: tuple[int, datetime | None] = (-1, None)  # position, its recording time
        # The read-model position, the subjects' spellings, and the spellings by letter pair.
        self._spelled: tuple[int, dict[str, str], dict[str, list[str]]] = (-1, {}, {})

    # Freshness ------------------------------------------------------------------------

    def recorded(self, position: int | None) -> None:
        """A write of this process committed up to `position`: reads after it wait for it."""
        if position:
            self.written = max(self.written, position)
            self.runner.recorded(position)

    def settle(self, after: int | None = None) -> Progress:
        """Waits, at most `wait` seconds, until the read models have applied this process's
        last write (and `after`, if given); returns where they stand then."""
        target = max(self.written, after or 0)
        if target:
            self.runner.wait_for(target, self.wait)
        return self.runner.progress()

    def progress(self) -> Progress:
        return self.runner.progress()

    def known_at_of(self, progress: Progress) -> datetime | None:
        """The `known_at` that pins answers given at this progress: when the last event the
        read models have applied was recorded (asked of the store once per position)."""
        position = progress.position
        if self._pinned[0] != position:
            self._pinned = (position, self.recorded_at(position))
        return self._pinned[1]

    def _behind(self, refusal: UnknownSubject, key: SubjectKey) -> UnknownSubject:
        """A refusal, with why it may be (the read models may not have reached the subject
        yet) and, for a subject with no record at all, the subjects it may have meant."""
        notes = []
        lag = self.runner.progress().lag
        if lag:
            notes.append(f"the read models are {lag} event(s) behind the store")
        if not self.read_models.exists(key, None):
            close = self.close_to(key)
            if close:
                notes.append("did you mean " + " or ".join(repr(k) for k in close) + "?")
        return UnknownSubject(f"{refusal} ({'; '.join(notes)})") if notes else refusal

    def close_to(self, key: SubjectKey, count: int = 3) -> list[str]:
        """The keys of subjects whose key or name is spelled like `key` (an alias, a typo):
        of the spellings sharing most letter pairs with it, those difflib finds closest (so
        that the cost does not grow with the number of subjects)."""
        spelled, pairs = self._spellings()
        shared: Counter[str] = Counter()
        for pair in letter_pairs(key.identity):
            shared.update(pairs.get(pair, ()))
        candidates = [spelling for spelling, _ in shared.most_common(CANDIDATES)]
        matches = difflib.get_close_matches(key.identity, candidates, n=count, cutoff=0.4)
        return list(dict.fromkeys(spelled[m] for m in matches))

    def _spellings(self) -> tuple[dict[str, str], dict[str, list[str]]]:
        """Every subject's key and name (case-folded) -> its key, and the spellings holding
        each letter pair: read once per read-model position, so that a run of unknown
        subjects does not read every subject each time."""
        position = self.runner.progress().position
        if self._spelled[0] != position:
            spelled: dict[str, str] = {}
            for status in self.read_models.statuses(now(), None):
                spelled.setdefault(status.subject.identity, status.subject.key)
                if status.name:
                    spelled.setdefault(status.name.casefold(), status.subject.key)
            pairs: dict[str, list[str]] = {}
            for spelling in spelled:
                for pair in letter_pairs(spelling):
                    pairs.setdefault(pair, []).append(spelling)
            self._spelled = (position, spelled, pairs)
        return self._spelled[1], self._spelled[2]

    # Queries ------------------------------------------------------------------------------

    def status(
        self,
        key: SubjectKey,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
        region: str | None = None,
    ) -> SubjectStatus:
        """A subject's status, worldwide (with the countries whose answer differs) or in a
        country."""
        stamp = known_at or now()
        try:
            found = self.read_models.status(key, as_of or stamp, known_at)
        except UnknownSubject as refusal:
            raise (self._behind(refusal, key) if known_at is None else refusal) from None
        return found.stamped(stamp).in_region(region)

    def revised_since(
        self,
        key: SubjectKey,
        as_of: datetime,
        known_at: datetime,
        region: str | None = None,
    ) -> list[HistoryEntry]:
        """What the record learned after `known_at` that changes the answer at `as_of` (a
        citation pins `known_at`): the subject's facts recorded, or retracted, since then and
        occurring by `as_of`; none if the answer is the same now."""
        try:
            then = self.read_models.status(key, as_of, known_at).in_region(region)
        except UnknownSubject:
            then = None
        current = self.read_models.status(key, as_of, None).in_region(region)
        if then is not None and then.document == current.document:
            return []
        return [
            entry
            for entry in self.history(key, region=region)
            if (entry.record.occurred_at or as_of) <= as_of
            and (
                entry.record.recorded_at > known_at
                or (entry.retraction is not None and entry.retraction.recorded_at > known_at)
            )
        ]

    def statuses(
        self,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
        status: Status | None = None,
        region: str | None = None,
    ) -> list[SubjectStatus]:
        """Every subject's status (with that status, if given), worldwide or in a country:
        the read models hold each country's own answer in the worldwide one."""
        stamp = known_at or now()
        return self.read_models.statuses(as_of or stamp, known_at, status, region, stamp)

    def page(
        self,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
        status: Status | None = None,
        kind: SubjectKind | None = None,
        *,
        limit: int,
        offset: int = 0,
        search: str | None = None,
        provider: str | None = None,
        region: str | None = None,
    ) -> tuple[list[SubjectStatus], int]:
        """A page of `statuses` (of one kind, if given; whose key holds `search`; that
        `provider` acted on by `as_of`; in a country), and how many there are in all."""
        stamp = known_at or now()
        found, total = self.read_models.page(
            as_of or stamp,
            known_at,
            status,
            kind,
            limit,
            offset,
            search=search,
            provider=provider,
            region=region,
            stamp=stamp,
        )
        return found, total

    def history(
        self,
        key: SubjectKey,
        known_at: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
        region: str | None = None,
        between: tuple[datetime, datetime] | None = None,
    ) -> list[HistoryEntry]:
        try:
            return self.read_models.history(key, known_at, limit, offset, region, between)
        except UnknownSubject as refusal:
            raise (self._behind(refusal, key) if known_at is None else refusal) from None

    def intervals(
        self, key: SubjectKey, known_at: datetime | None = None, region: str | None = None
    ) -> list[Interval]:
        if not self.read_models.exists(key, known_at):
            raise self._behind(no_record(key), key) if known_at is None else no_record(key)
        return self.intervals_many([key], known_at, region)[key]

    def intervals_many(
        self,
        keys: Sequence[SubjectKey],
        known_at: datetime | None = None,
        region: str | None = None,
    ) -> dict[SubjectKey, list[Interval]]:
        """Per subject, its runs of one status per channel: an account's from the start of
        time (active until its first fact), a platform's from its registration."""
        found = self.read_models.intervals(keys, known_at, region)
        return {
            key: from_the_start(runs) if key.kind == "account" and runs else runs
            for key, runs in found.items()
        }

    def changes(
        self,
        start: datetime,
        end: datetime,
        *,
        net: bool = False,
        region: str | None = None,
        limit: int | None = None,
        after: int = 0,
    ) -> Changes:
        """Every subject with a fact in `(start, end]` or whose status changed then: per
        channel, each change in order, and the facts of the period (those that changed
        nothing too); with `net`, only the channels whose status differs at the two ends (and
        only subjects with one). In a country: its answers. Worldwide: the worldwide answers,
        and the transitions of each country's own answer that the worldwide ones do not make.
        With `limit`, at most that many subjects, from the cursor `after` (a page's `next`):
        the read models give the subjects with a period beginning in the period, and only
        those are read."""
        candidates = self.read_models.changed(start, end)
        found: list[Change] = []
        at = after
        while at < len(candidates) and (limit is None or len(found) < limit):
            chunk = candidates[at : at + (CHUNK if limit is None else max(limit, 1))]
            found += self._changes_among(chunk, start, end, net, region)
            at += len(chunk)
        if limit is not None and len(found) > limit:
            found = found[:limit]
            at = candidates.index(found[-1].subject, after) + 1
        return Changes(found, at if at < len(candidates) else None)

    def _changes_among(
        self,
        keys: list[SubjectKey],
        start: datetime,
        end: datetime,
        net: bool,
        region: str | None,
    ) -> list[Change]:
        runs: dict[tuple[SubjectKey, str | None], list[Interval]] = {}
        moved: dict[SubjectKey, dict[str | None, list[Move]]] = {}
        for key, found in self.intervals_many(keys, None, region).items():
            if inside := moves(found, start, end):
                moved[key], runs[key, region] = {region: inside}, found
        if region is None:
            for code, there in self.own_answers(keys, start, end).items():
                for key, found in self.intervals_many(there, None, code).items():
                    worldwide = {move.change for move in moved.get(key, {}).get(None, [])}
                    own = [m for m in moves(found, start, end) if m.change not in worldwide]
                    if own:
                        moved.setdefault(key, {})[code], runs[key, code] = own, found
        changed = []
        for key in keys:
            if net and key not in moved:
                continue
            # The period's facts only (a transition's fact occurred when it began, inside it).
            events = self.history(key, region=region, between=(start, end))
            facts = {e.record.event_id: e.record for e in events}
            ends: dict[str | None, Ends] = {}
            transitions = []
            for where, inside in moved.get(key, {}).items():
                both = ends_of(runs[key, where], start, end)
                if net:
                    kept = {c for c, (then, later) in both.items() if then != later}
                else:
                    kept = {move.run.channel for move in inside}
                if kept:
                    ends[where] = {c: both[c] for c in both if c in kept}
                    transitions += [
                        move.transition(facts, where) for move in inside if move.run.channel in kept
                    ]
            if not ends and (net or not events):
                continue
            transitions.sort(key=lambda t: (t.at, t.region or "", CHANNEL_ORDER.index(t.channel)))
            regions = {c: e for c, e in ends.items() if c is not None and c != region}
            changed.append(Change(key, ends.get(region, {}), transitions, events, regions))
        return changed

    def own_answers(
        self,
        keys: Sequence[SubjectKey],
        start: datetime,
        end: datetime,
        known_at: datetime | None = None,
    ) -> dict[str, list[SubjectKey]]:
        """The countries with an answer of their own in `[start, end]`, each with the
        subjects it is of."""
        after = end + timedelta(microseconds=1)
        countries: dict[str, list[SubjectKey]] = {}
        for key, spans in self.read_models.periods(keys, start, after, known_at).items():
            for code in sorted({code for span in spans for code in span.document.regions}):
                countries.setdefault(code, []).append(key)
        return countries

    def naming(
        self, region: str, known_at: datetime | None = None, limit: int = 100
    ) -> list[FactRecord]:
        """The last facts recorded that name a country, last first."""
        return self.read_models.naming(region, known_at, limit)

    def providers(
        self,
        start: datetime,
        end: datetime,
        known_at: datetime | None = None,
        region: str | None = None,
    ) -> list[ProviderStanding]:
        """Every provider whose measures kept a subject unavailable in `[start, end)`, ranked
        by the subjects it cut off and the time it bound them (from the subjects' periods):
        everywhere, or in one country (the answers there)."""
        if end <= start:
            raise ValueError("a period must end after it starts")
        keys = [s.subject for s in self.statuses(end - timedelta(microseconds=1), known_at)]
        periods = self.read_models.periods(keys, start, end, known_at)
        rows = [
            row for key in keys for row in accountability(key, periods[key], start, end, region)
        ]
        return standings(rows)

    def report(
        self,
        start: datetime,
        end: datetime,
        selection: Selection | None = None,
        known_at: datetime | None = None,
        *,
        version: str,
        most: int | None = None,
    ) -> Report:
        """The report of a period, as the store knew it at `known_at` (now by default), of at
        most `most` subjects (more: `TooLarge`, before any is read)."""
        if end <= start:
            raise ValueError("a report's period must end after it starts")
        made = now()
        selection = selection or Selection()
        if selection.provider is not None:  # the subjects it acted on in the period
            acted = self.read_models.acted_on(selection.provider, start, end, known_at)
            named = {key.identity for key in selection.subjects}
            keys = [k for k in acted if not named or k.identity in named]
        else:
            keys = list(selection.subjects) or [
                s.subject for s in self.statuses(end - timedelta(microseconds=1), known_at)
            ]
        if not selection.subjects:
            keys = [key for key in keys if selection.kind in (None, key.kind)]
        if most is not None and len(keys) > most:
            raise TooLarge(
                f"the report would cover {len(keys)} subjects, more than {most}: narrow the "
                "selection (subjects, kind, provider) or use the CLI"
            )
        region = selection.region
        histories = {key: self.history(key, known_at, region=region) for key in keys}
        # Named subjects as first spelled (their facts say how).
        spelled = {k: h[0].record.subject if h else k for k, h in histories.items()}
        keys = [spelled[key] for key in keys]
        histories = {spelled[key]: history for key, history in histories.items()}
        intervals = self.intervals_many(keys, known_at, region)
        periods = self.read_models.periods(keys, start, end, known_at)
        position = self.runner.head()
        header = Header(start, end, selection, known_at or made, position, version, made)
        return build(header, keys, intervals, histories, periods)
