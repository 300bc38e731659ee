"""Subjects' timelines kept in the store beside their events, so that a write reads what a
fact touches, not the subject's whole history.

A subject's timeline is held in blocks of valid time, each with the fold of every action
before it (`domain.timeline`). Two tables keep them, written in the transaction that writes
the events: `timelines` (a row a subject: the version it stands at, how many blocks have known
starts, its end state, and the facts its timeline does not hold: retractions and the facts
they took out) and `checkpoints` (a row a block: its first action's order, its actions'
versions and event ids, and the fold before it). A process that records one fact into a
subject of 100,000 facts reads the subject's row, its blocks' heads, the block the fact lands
in with its start, and the blocks after it only as far as the fold changes.

States are pickled, each fact they name replaced by its version (read from the events when
the state is), and stamped with the shape of the classes a state is made of: a subject kept
by code whose states differ is read whole from its events, as it would be without
checkpoints, and kept again. Reading a state makes only the classes a state is made of.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from functools import partial
from typing import Any, NamedTuple, cast
from uuid import UUID
from weakref import WeakKeyDictionary, WeakSet

import orjson
from eventsourcing.persistence import StoredEvent

from adapters.batching import chunks
from domain import SUBJECT_CLASSES, Subject
from domain.account import AccountState
from domain.clock import from_micros, micros
from domain.platform import Host, PlatformState
from domain.regions import Regional
from domain.timeline import ACTIONS, NEW, START, Block, State, Timeline
from domain.values import AccountStatus, AppStore, Availability, Channel, HostingScope
from projections.ports import Stale

# What a state can be made of (besides builtins, datetimes and facts): its shape stamps it.
STATE_CLASSES: tuple[type, ...] = (
    PlatformState,
    Host,
    Regional,
    AccountState,
    Availability,
    AccountStatus,
    AppStore,
    Channel,
    HostingScope,
)


def shape(classes: Sequence[type]) -> str:
    """A digest of the classes' names and fields (an enum's members)."""
    described = []
    for cls in classes:
        if is_dataclass(cls):
            parts = [f.name for f in fields(cls)]
        else:
            parts = [str(m.value) for m in cast(type[Enum], cls)]
        described.append([cls.__module__, cls.__qualname__, parts])
    return hashlib.sha256(orjson.dumps([pickle.HIGHEST_PROTOCOL, described])).hexdigest()[:16]


STAMP = shape(STATE_CLASSES)


# States as stored --------------------------------------------------------------------------


# While a state is read: what gives the fact a version names (see `loaded`).
_NAMED: ContextVar[Callable[[int], Any]] = ContextVar("named")


def _named(version: int) -> Any:
    return _NAMED.get()(version)


def _by_version(fact: Any) -> tuple[Callable[[int], Any], tuple[int]]:
    return _named, (int(fact.originator_version),)


def _fact_classes() -> dict[type, Callable[[Any], tuple[Callable[[int], Any], tuple[int]]]]:
    """A reducer for every fact class (and `Later`): only facts call back into Python while
    a state is pickled (a `persistent_id` is called for every object in it)."""
    classes: set[type] = {Later}
    for subject_class in SUBJECT_CLASSES.values():
        classes |= set(subject_class.fact_types().values())
    return dict.fromkeys(classes, _by_version)


def dumped(state: State | None) -> bytes | None:
    """A state as stored: each fact it names by its version."""
    if state is None:
        return None
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _REDUCERS
    pickler.dump(state)
    return buffer.getvalue()


class _Unpickler(pickle.Unpickler):
    """Makes only what a state is made of: a row that names anything else (not written by
    `dumped`) is refused, never run."""

    ALLOWED = frozenset(
        {(c.__module__, c.__qualname__) for c in STATE_CLASSES}
        | {("datetime", "datetime"), ("datetime", "timezone"), ("datetime", "timedelta")}
        | {(__name__, "_named")}
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"a checkpoint names {module}.{name}: not a state's")
        return super().find_class(module, name)


def loaded(data: bytes | None, named: Callable[[int], Any]) -> State | None:
    """A state as stored, each fact it names given by `named` (from its version)."""
    if data is None:
        return None
    token = _NAMED.set(named)
    try:
        return cast(State, _Unpickler(io.BytesIO(data)).load())
    finally:
        _NAMED.reset(token)


# The tables ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """What differs between the stores: placeholders, types, names, how ids are bound."""

    mark: str  # "?" or "%s"
    blob: str  # "BLOB" or "bytea"
    uuid: str  # the id column's type
    find: str  # the function that finds text in text: instr(a, b) or strpos(a, b)
    events: str  # the events table, qualified
    timelines: str
    checkpoints: str
    bind: Callable[[UUID], Any]  # an id as bound (hex text on SQLite)
    read: Callable[[Any], UUID]  # an id as read


def create_statements(d: Dialect) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {d.timelines} (subject_id {d.uuid} PRIMARY KEY, "
        "version INTEGER NOT NULL, fresh INTEGER NOT NULL, stamp TEXT NOT NULL, "
        f"end_state {d.blob}, loose TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {d.checkpoints} (subject_id {d.uuid} NOT NULL, "
        "number INTEGER NOT NULL, first_at BIGINT NOT NULL, first_version INTEGER NOT NULL, "
        f"size INTEGER NOT NULL, versions TEXT NOT NULL, event_ids TEXT NOT NULL, start {d.blob}, "
        "version INTEGER NOT NULL, PRIMARY KEY (subject_id, number))",
    ]


def _values(row: Any) -> tuple[Any, ...]:
    """A row's values in the order selected (PostgreSQL's rows are dicts)."""
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)


class CheckpointRows:
    """The checkpoint tables read and written on one cursor (a write's transaction)."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self.c = cursor
        self.d = dialect

    def _all(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        self.c.execute(query.replace("?", self.d.mark), list(params))
        return [_values(row) for row in self.c.fetchall()]

    def timelines(self, subject_ids: Sequence[UUID]) -> dict[UUID, tuple[Any, ...]]:
        """Each kept subject's row (version, fresh, end state, loose), if stamped by code
        whose states have today's shape and it holds every event of the subject."""
        d, found = self.d, {}
        for chunk in chunks(list(subject_ids)):
            marks = ", ".join("?" * len(chunk))
            ids = [d.bind(i) for i in chunk]
            rows = self._all(
                f"SELECT t.subject_id, t.version, t.fresh, t.end_state, t.loose, "
                f"(SELECT MAX(e.originator_version) FROM {d.events} e "
                f"WHERE e.originator_id = t.subject_id) FROM {d.timelines} t "
                f"WHERE t.subject_id IN ({marks}) AND t.stamp = ?",
                [*ids, STAMP],
            )
            for subject_id, version, fresh, end, loose, last in rows:
                if last == version:  # else events were written that it does not hold
                    found[d.read(subject_id)] = (version, fresh, end, loose)
        return found

    def heads(self, subject_ids: Sequence[UUID]) -> dict[UUID, list[Head]]:
        """Each subject's blocks in valid-time order."""
        found: dict[UUID, list[Head]] = {}
        for chunk in chunks(list(subject_ids)):
            marks = ", ".join("?" * len(chunk))
            rows = self._all(
                f"SELECT subject_id, number, first_at, first_version, size, version FROM "
                f"{self.d.checkpoints} WHERE subject_id IN ({marks}) "
                "ORDER BY subject_id, first_at, first_version",
                [self.d.bind(i) for i in chunk],
            )
            for subject_id, *head in rows:
                found.setdefault(self.d.read(subject_id), []).append(Head(*head))
        return found

    def block(self, subject_id: UUID, number: int, known: int) -> tuple[list[int], bytes | None]:
        """A block's actions' versions, and its start as stored; `Stale` unless its row is
        as the reader knew it (written at version `known`: no write changed it since)."""
        rows = self._all(
            f"SELECT versions, start, version FROM {self.d.checkpoints} "
            "WHERE subject_id = ? AND number = ?",
            [self.d.bind(subject_id), number],
        )
        if not rows or rows[0][2] != known:
            raise Stale(f"block {number} of {subject_id} changed since it was read")
        versions, start, _ = rows[0]
        return orjson.loads(versions), None if start is None else bytes(start)

    def blocks(self, subject_id: UUID, known: dict[int, int]) -> dict[int, list[int]]:
        """Many blocks' actions' versions, by number; `Stale` unless each row is as the
        reader knew it (`known`: number -> version)."""
        found: dict[int, list[int]] = {}
        for chunk in chunks(list(known)):
            marks = ", ".join("?" * len(chunk))
            rows = self._all(
                f"SELECT number, versions, version FROM {self.d.checkpoints} "
                f"WHERE subject_id = ? AND number IN ({marks})",
                [self.d.bind(subject_id), *chunk],
            )
            found |= {number: orjson.loads(versions) for number, versions, _ in rows}
            if len(rows) < len(chunk) or any(known[n] != version for n, _, version in rows):
                raise Stale(f"blocks of {subject_id} changed since they were read")
        return found

    def holding(self, subject_id: UUID, event_id: str, known: int) -> set[int]:
        """The blocks whose event ids may hold this one (a text search: may find more);
        `Stale` unless the subject's row is as the reader knew it (written at version
        `known`: no write changed any of its blocks since)."""
        sid = self.d.bind(subject_id)
        row = self._all(f"SELECT version FROM {self.d.timelines} WHERE subject_id = ?", [sid])
        if not row or row[0][0] != known:
            raise Stale(f"the blocks of {subject_id} changed since they were read")
        rows = self._all(
            f"SELECT number FROM {self.d.checkpoints} WHERE subject_id = ? "
            f"AND {self.d.find}(event_ids, ?) > 0",
            [sid, orjson.dumps(event_id).decode()],
        )
        return {row[0] for row in rows}

    def last_blocks(self, numbers: dict[UUID, int]) -> dict[UUID, tuple[int, list[int], int]]:
        """A block of each of many subjects (`numbers`: subject -> number): its number, its
        actions' versions and the version of its row, in one query per few hundred."""
        d, found = self.d, {}
        for chunk in chunks(list(numbers.items())):
            either = " OR ".join(["(subject_id = ? AND number = ?)"] * len(chunk))
            rows = self._all(
                f"SELECT subject_id, number, versions, version FROM {d.checkpoints} WHERE {either}",
                [value for sid, number in chunk for value in (d.bind(sid), number)],
            )
            for sid, number, versions, version in rows:
                found[d.read(sid)] = (number, orjson.loads(versions), version)
        return found

    def events(self, wanted: Mapping[UUID, Sequence[int]]) -> list[StoredEvent]:
        """Some events of one or many subjects (`wanted`: subject -> versions), a few hundred
        a statement however they are spread over the subjects."""
        pairs = [(sid, v) for sid, versions in wanted.items() for v in sorted(set(versions))]
        found = []
        for chunk in chunks(pairs):
            by_subject: dict[UUID, list[int]] = {}
            for sid, version in chunk:
                by_subject.setdefault(sid, []).append(version)
            either = " OR ".join(
                f"(originator_id = ? AND originator_version IN ({', '.join('?' * len(v))}))"
                for v in by_subject.values()
            )
            rows = self._all(
                f"SELECT originator_id, originator_version, topic, state FROM {self.d.events} "
                f"WHERE {either}",
                [value for sid, v in by_subject.items() for value in (self.d.bind(sid), *v)],
            )
            found += [
                StoredEvent(self.d.read(sid), v, topic, bytes(state))
                for sid, v, topic, state in rows
            ]
        return found

    def write(self, changes: Changes) -> None:
        """Writes what a write changed in its subjects' timelines (a statement of each kind
        for all of them)."""
        d, m = self.d, self.d.mark
        if changes.timelines:
            self.c.executemany(
                f"INSERT INTO {d.timelines} VALUES ({', '.join([m] * 6)}) "
                "ON CONFLICT (subject_id) DO UPDATE SET version = excluded.version, "
                "fresh = excluded.fresh, stamp = excluded.stamp, "
                "end_state = excluded.end_state, loose = excluded.loose",
                changes.timelines,
            )
        if changes.whole:
            self.c.executemany(
                f"DELETE FROM {d.checkpoints} WHERE subject_id = {m}",
                [(sid,) for sid in changes.whole],
            )
        if changes.dropped:
            self.c.executemany(
                f"DELETE FROM {d.checkpoints} WHERE subject_id = {m} AND number = {m}",
                changes.dropped,
            )
        if changes.added:
            self.c.executemany(
                f"INSERT INTO {d.checkpoints} VALUES ({', '.join([m] * 9)})", changes.added
            )
        if changes.reshaped:
            self.c.executemany(
                f"UPDATE {d.checkpoints} SET first_at = {m}, first_version = {m}, size = {m}, "
                f"versions = {m}, event_ids = {m}, version = {m} "
                f"WHERE subject_id = {m} AND number = {m}",
                changes.reshaped,
            )
        if changes.restarted:
            self.c.executemany(
                f"UPDATE {d.checkpoints} SET start = {m}, version = {m} "
                f"WHERE subject_id = {m} AND number = {m}",
                changes.restarted,
            )


@dataclass
class Changes:
    """Rows to write, as bound: subjects' rows; subjects whose blocks are all written anew;
    blocks removed, added, with new actions, with a new start (each with its subject)."""

    timelines: list[tuple[Any, ...]] = field(default_factory=list)
    whole: list[Any] = field(default_factory=list)
    dropped: list[tuple[Any, int]] = field(default_factory=list)
    added: list[tuple[Any, ...]] = field(default_factory=list)
    reshaped: list[tuple[Any, ...]] = field(default_factory=list)
    restarted: list[tuple[Any, ...]] = field(default_factory=list)


# The keeper ----------------------------------------------------------------------------------

Decode = Callable[[StoredEvent], Subject.Event]


@dataclass(frozen=True)
class Kept:
    """A block its keeper holds in the store: which subject's, and its number."""

    subject: Restored
    number: int


class Head(NamedTuple):
    """A block as its subject's restore reads it."""

    number: int
    first_at: int
    first_version: int
    size: int
    version: int  # the subject's version when its row was written


class Restored:
    """A subject read from its checkpoints: the facts decoded for it so far, by version (so
    that a fact a state names and the same fact in a block are one object), and the version
    of its row and of each block's row as this process knows them (read, or written since):
    a row found otherwise was changed by another writer, and the subject no longer stands
    (`Stale`)."""

    def __init__(self, subject_id: UUID, version: int, rows: dict[int, int]) -> None:
        self.id = subject_id
        self.facts: dict[int, Subject.Fact] = {}
        self.holding: dict[str, set[int]] = {}  # blocks that may hold an event id
        self.version = version  # of the subject's row, as known
        self.rows = rows
        # Blocks' actions' versions read with the subject (its last block: the one a fact
        # that sorts last lands in), by number, until the block is thawed or written.
        self.read_with: dict[int, list[int]] = {}


class Later:
    """A fact a restored state names, read from the events when first used: a state can
    name thousands (the last end of every host a platform had, kept for refusals'
    messages), and a write compares or names only a few of them."""

    __slots__ = ("_fact", "_keeper", "_subject", "originator_version")

    def __init__(self, keeper: Checkpoints, subject: Restored, version: int) -> None:
        self._keeper, self._subject, self.originator_version = keeper, subject, version
        self._fact: Subject.Fact | None = None

    def _real(self) -> Subject.Fact:
        if self._fact is None:
            self._fact = self._keeper.fact(self._subject, self.originator_version)
        return self._fact

    @property  # type: ignore[misc]  # as the fact's: `isinstance` and class patterns see it
    def __class__(self) -> type:
        return type(self._real())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    def __eq__(self, other: object) -> bool:
        return self._real() == (other._real() if isinstance(other, Later) else other)

    def __hash__(self) -> int:
        return hash(self._real())


_REDUCERS = _fact_classes()

_ROWS: ContextVar[CheckpointRows | None] = ContextVar("checkpoint_rows", default=None)


class Checkpoints:
    """Restores subjects from their checkpoints and keeps their changes; the `Keeper` of the
    blocks it restores (their actions and starts are read through the write in progress,
    or on a connection of their own outside one)."""

    def __init__(self, decode: Decode, rows: Callable[[], AbstractContextManager[CheckpointRows]]):
        self.decode = decode
        self.own_rows = rows  # a short read of its own, outside a write
        self._kept: WeakSet[Timeline[Any]] = WeakSet()  # held in the store as they stand
        self._restored: WeakKeyDictionary[Timeline[Any], Restored] = WeakKeyDictionary()

    @contextmanager
    def using(self, rows: CheckpointRows) -> Iterator[None]:
        """Reads what blocks need through these rows (a write's transaction) meanwhile."""
        token = _ROWS.set(rows)
        try:
            yield
        finally:
            _ROWS.reset(token)

    @contextmanager
    def _rows(self) -> Iterator[CheckpointRows]:
        rows = _ROWS.get()
        if rows is not None:
            yield rows
            return
        with self.own_rows() as own:
            yield own

    def _facts(
        self, rows: CheckpointRows, restored: Restored, versions: Sequence[int]
    ) -> dict[int, Subject.Fact]:
        """These facts of a restored subject: those it holds (a state names them), the others
        read from the events (not held: a block's facts go with the block)."""
        facts = {v: restored.facts[v] for v in versions if v in restored.facts}
        missing = [v for v in versions if v not in facts]
        for stored in rows.events({restored.id: missing}) if missing else ():
            facts[stored.originator_version] = cast(Subject.Fact, self.decode(stored))
        return facts

    # As a Keeper of blocks --------------------------------------------------------------

    def freeze(self, actions: list[Any]) -> Any:
        raise NotImplementedError("blocks are frozen in memory by another codec")

    def thaw(self, frozen: Kept) -> list[Subject.Action]:
        restored = frozen.subject
        versions = restored.read_with.pop(frozen.number, None)
        if versions is not None and all(v in restored.facts for v in versions):
            return [cast(Subject.Action, restored.facts[v]) for v in versions]
        with self._rows() as rows:
            known = frozen.subject.rows.get(frozen.number, -1)
            versions, _ = rows.block(frozen.subject.id, frozen.number, known)
            facts = self._facts(rows, frozen.subject, versions)
        return [cast(Subject.Action, facts[v]) for v in versions]

    def thaw_many(self, frozen: list[Kept]) -> list[list[Subject.Action]]:
        restored = frozen[0].subject
        known = {f.number: restored.rows.get(f.number, -1) for f in frozen}
        with self._rows() as rows:
            versions = rows.blocks(restored.id, known)
            facts = self._facts(rows, restored, [v for n in known for v in versions[n]])
        return [[cast(Subject.Action, facts[v]) for v in versions[f.number]] for f in frozen]

    def may_hold(self, frozen: Kept, event_id: str) -> bool:
        restored = frozen.subject
        if event_id not in restored.holding:
            with self._rows() as rows:
                restored.holding[event_id] = rows.holding(restored.id, event_id, restored.version)
        return frozen.number in restored.holding[event_id]

    def _start(self, restored: Restored, number: int) -> State | None:
        with self._rows() as rows:
            _, start = rows.block(restored.id, number, restored.rows.get(number, -1))
        return loaded(start, partial(self._named, restored))

    def _named(self, restored: Restored, version: int) -> Subject.Fact | Later:
        """A fact a state names: the object read already, or one that reads it when used."""
        return restored.facts.get(version) or Later(self, restored, version)

    def fact(self, restored: Restored, version: int) -> Subject.Fact:
        """A restored subject's fact, read from the events if not yet."""
        if version not in restored.facts:
            with self._rows() as rows:
                restored.facts |= self._facts(rows, restored, [version])
        return restored.facts[version]

    # Subjects -----------------------------------------------------------------------------

    def restore(self, subject_ids: Sequence[UUID]) -> dict[UUID, Subject]:
        """The subjects among these that the store keeps checkpoints of (as their events
        stand): what their writes need is read when they need it."""
        with self._rows() as rows:
            timelines = rows.timelines(subject_ids)
            heads = rows.heads(list(timelines))
            last = rows.last_blocks({i: own[-1].number for i, own in heads.items() if own})
            subjects, wanted = {}, {}
            for subject_id, (version, fresh, end, loose) in timelines.items():
                own = heads.get(subject_id, [])
                restored = Restored(
                    subject_id, version, {head.number: head.version for head in own}
                )
                # Its last block is read with it (as its row stood when its heads were read).
                number, versions, row = last.get(subject_id, (-1, [], None))
                if number in restored.rows and restored.rows[number] == row:
                    restored.read_with[number] = versions
                loose_versions = orjson.loads(loose)
                wanted[subject_id] = [1, 2, *loose_versions, *restored.read_with.get(number, [])]
                subjects[subject_id] = (restored, version, fresh, end, loose_versions, own)
            for stored in rows.events(wanted):  # what they hold, every subject's at once
                fact = cast(Subject.Fact, self.decode(stored))
                subjects[cast(UUID, stored.originator_id)][0].facts[stored.originator_version] = (
                    fact
                )
        return {i: self._subject(*restored) for i, restored in subjects.items()}

    def _subject(
        self,
        restored: Restored,
        version: int,
        fresh: int,
        end: bytes | None,
        loose: list[int],
        heads: list[Head],
    ) -> Subject:
        facts = restored.facts
        tracked = cast(Subject.Tracked, facts.pop(1))
        blocks: list[Block[Subject.Action]] = []
        for index, (number, first_at, first_version, _, _) in enumerate(heads):
            start = partial(self._start, restored, number) if 0 < index < fresh else None
            first = (from_micros(first_at), first_version)
            blocks.append(Block.kept(number, first, self, Kept(restored, number), start))
        subject = Subject.restored(
            tracked,
            facts.get(2),
            [facts[v] for v in loose],
            version,
            blocks,
            sum(head.size for head in heads),
            fresh,
            loaded(end, partial(self._named, restored)),
        )
        self._kept.add(subject.timeline)
        self._restored[subject.timeline] = restored
        return subject

    def keep(self, rows: CheckpointRows, subjects: Sequence[Subject]) -> None:
        """Writes what changed in these subjects' timelines since they were last kept (all of
        a timeline the store does not hold as it stands)."""
        out = Changes()
        for subject in subjects:
            timeline, sid, version = subject.timeline, rows.d.bind(subject.id), subject.version
            changed, dropped = timeline.take_changes()
            if timeline not in self._kept:
                changed = [(i, b, NEW) for i, b in enumerate(timeline.blocks)]
                out.whole.append(sid)
            out.dropped += [(sid, number) for number in dropped]
            for index, block, flags in changed:
                start = None
                if flags & (NEW | START):
                    start = dumped(block.start if 0 < index < timeline.fresh else None)
                if flags & (NEW | ACTIONS):
                    actions = block.peek()
                    head = (
                        micros(actions[0].occurred_at),
                        actions[0].originator_version,
                        len(actions),
                        orjson.dumps([a.originator_version for a in actions]).decode(),
                        orjson.dumps([a.event_id for a in actions]).decode(),
                    )
                if flags & NEW:
                    out.added.append((sid, block.number, *head, start, version))
                    continue
                if flags & ACTIONS:
                    out.reshaped.append((*head, version, sid, block.number))
                if flags & START:
                    out.restarted.append((start, version, sid, block.number))
            loose = orjson.dumps(sorted(f.originator_version for f in subject.loose())).decode()
            end = dumped(timeline.end)
            out.timelines.append((sid, version, timeline.fresh, STAMP, end, loose))
            self._kept.add(timeline)
            restored = self._restored.get(timeline)
            if restored is not None:  # its rows, as this write leaves them
                restored.version = version
                restored.rows.update((block.number, version) for _, block, _ in changed)
                for number in [*dropped, *(block.number for _, block, _ in changed)]:
                    restored.read_with.pop(number, None)
                for number in dropped:
                    restored.rows.pop(number, None)
                restored.holding.clear()
        rows.write(out)
