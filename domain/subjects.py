"""The `Platform` and `Account` aggregates and their events, one class per event type.

An aggregate holds the subject's timeline: every fact recorded about it, in
recording order (the aggregate's version), and the retractions of those facts.
Facts arrive late and out of order, so a new fact is validated against the whole
valid-time timeline with the fact inserted at its place (`record`; the fold is
redone only where the fact changes it, see `domain.timeline`), and status is the
fold of the timeline as known at any moment (`view`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from contextvars import ContextVar
from dataclasses import field
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Self, cast, get_args, get_type_hints

from eventsourcing.domain import Aggregate

from domain.clock import iso
from domain.errors import RuleViolation
from domain.timeline import Block, Change, Codec, Order, State, Timeline
from domain.values import SubjectKey, SubjectKind

FUTURE_TOLERANCE = timedelta(minutes=5)


# The subject whose change `record` is checking, meanwhile: what a rule's refusal may look
# back into (the timeline under check), so that no state keeps history for its messages.
CHECKING: ContextVar[Subject | None] = ContextVar("checking", default=None)


class Subject(Aggregate):
    """A platform or an account, as the store knows it."""

    if TYPE_CHECKING:  # annotated only for the checker: the library would make a dataclass
        kind: ClassVar[SubjectKind]

    class Tracked(Aggregate.Created):
        """The store starts keeping a timeline for a subject; `key` is its first spelling."""

        key: str

    class Fact(Aggregate.Event):
        """Something recorded about the subject; its timestamp is its `recorded_at`, and
        `recorded_by` names who recorded it (the API token's name, or the CLI's user): set
        by the store, never by the fact's writer. Facts stored before it existed have none."""

        event_id: str
        recorded_by: str | None = field(default=None, kw_only=True)

        @property
        def recorded_at(self) -> datetime:
            return self.timestamp

        @classmethod
        def time_fields(cls) -> frozenset[str]:
            """The names of the fact's own fields that hold instants (from its annotations)."""
            return _time_fields(cls)

        @property
        def type(self) -> str:
            return type(self).__name__

        def apply(self, subject: Subject) -> None:
            subject.add(self)

    class Action(Fact):
        """A fact with a valid time: something that happened to the subject."""

        occurred_at: datetime
        reason: str | None
        sources: list[str]
        note: str | None

        @property
        def order(self) -> tuple[datetime, int]:
            """Valid-time order: `(occurred_at, recording order)`."""
            return (self.occurred_at, self.originator_version)

        def describe(self) -> str:
            return f"{self.event_id} ({self.type} at {iso(self.occurred_at)})"

    class ProviderAction(Action):
        """An action taken by a provider (a host, a store, a registrar, the platform itself)."""

        provider: str

    class EventRetracted(Fact):
        """A correction: the target no longer counts, from this record's recorded_at on."""

        retracts: str
        reason: str

    def __init__(self, key: str) -> None:
        self.key = key
        self.facts_index = FactIndex()
        self.retractions: dict[str, Subject.EventRetracted] = {}
        # Current knowledge, in valid-time order. What it calls back (the state before any
        # action, the index told of thawed facts) holds no reference to the subject: a
        # subject nothing uses is freed at once, not left in a cycle for the collector.
        self.timeline: Timeline[Subject.Action] = Timeline(
            self.beginning(), self.facts_index.thawed
        )
        self._checked: Change | None = None  # the change `record` checked, while it applies
        # While a change is checked: the action it adds, or the one it takes out.
        self._candidate: tuple[Subject.Action | None, Subject.Action | None] = (None, None)

    @classmethod
    def track(cls, subject: SubjectKey, now: datetime) -> Self:
        """A timeline for a subject, begun when its first fact is recorded (`now`)."""
        return cls._create(cls.Tracked, id=subject.id, key=subject.key, timestamp=now)

    @classmethod
    @cache
    def fact_types(cls) -> dict[str, type[Subject.Fact]]:
        """The event types of this kind of subject, by name: the fact classes it declares,
        and the retraction every subject takes. The one registry of event types."""
        declared = {
            name: value
            for name, value in vars(cls).items()
            if isinstance(value, type)
            and issubclass(value, Subject.Fact)
            and name not in vars(Subject)
        }
        return declared | {"EventRetracted": cls.EventRetracted}

    @classmethod
    def start(cls, subject: SubjectKey, fact_type: str, now: datetime) -> Self:
        """A new timeline for a subject the store has no record of, begun by `fact_type`
        recorded at `now`."""
        return cls.track(subject, now)

    @property
    def subject(self) -> SubjectKey:
        return SubjectKey(self.kind, self.key)

    # Recording --------------------------------------------------------------

    def record(self, fact_type: str, *, now: datetime, **fields: Any) -> Fact:
        """Records a fact if the timeline, with it, still obeys every rule."""
        fact_class = self.fact_types().get(fact_type)
        if fact_class is None:
            raise RuleViolation(f"{fact_type} does not apply to a {self.kind}")
        candidate = fact_class(
            originator_id=self.id,
            originator_version=self.version + 1,
            timestamp=now,
            **fields,
        )
        if isinstance(candidate, Subject.EventRetracted):
            self._checked = self._check_retraction(candidate)
        else:
            assert isinstance(candidate, Subject.Action)
            self._checked = self._check_action(candidate, now)
        try:  # the check folded the new timeline already: applying keeps what it found
            candidate.mutate(self)  # as `trigger_event` would, without building it again
        finally:
            self._checked = None
        self.pending_events.append(candidate)
        return candidate

    def add(self, fact: Fact) -> None:
        checked = self._checked
        if checked is not None and checked.event_id != fact.event_id:
            checked = None
        self.facts_index.add(fact)
        if isinstance(fact, Subject.EventRetracted):
            self.retractions[fact.retracts] = fact
            target = self.fact(fact.retracts)
            if isinstance(target, Subject.Action):
                self.timeline.remove(target, checked)
        else:
            assert isinstance(fact, Subject.Action)
            self.timeline.insert(fact, checked)

    def _check_action(self, action: Action, now: datetime) -> Change:
        """The change `action` makes to the timeline, or a `RuleViolation`."""
        if action.occurred_at > now + FUTURE_TOLERANCE:
            raise RuleViolation(
                f"occurred_at {iso(action.occurred_at)} is in the future "
                f"(now is {iso(now)}; at most 5 minutes ahead are allowed)"
            )
        self.check_fields(action)
        self._candidate = (action, None)  # the change under check (`last_before`)
        checking = CHECKING.set(self)
        try:
            return self.timeline.adding(action, action.event_id)
        finally:
            CHECKING.reset(checking)
            self._candidate = (None, None)

    def check_named_in_retraction(self, named: SubjectKey | None, target: str) -> None:
        """A retraction names no subject, or its target's."""
        if named is not None and named.id != self.id:
            raise RuleViolation(
                f"event {target!r} belongs to {self.key!r}, not {named.key!r}",
                conflicts_with=target,
            )

    def _check_retraction(self, retraction: EventRetracted) -> Change:
        """The change taking the target out makes to the timeline, or a `RuleViolation`."""
        target = self.fact(retraction.retracts)
        if target is None:
            raise RuleViolation(f"event {retraction.retracts!r} is not recorded for {self.key}")
        if retraction.retracts in self.retractions:
            earlier = self.retractions[retraction.retracts]
            raise RuleViolation(
                f"event {retraction.retracts!r} was already retracted by event "
                f"{earlier.event_id} (recorded {iso(earlier.recorded_at)})",
                conflicts_with=earlier.event_id,
            )
        if isinstance(target, Subject.EventRetracted):
            raise RuleViolation(
                f"event {target.event_id!r} is itself a retraction; a retraction cannot be "
                "retracted (record the original fact again under a new event_id)",
                conflicts_with=target.event_id,
            )
        self.check_retractable(target)
        assert isinstance(target, Subject.Action)
        self._candidate = (None, target)
        checking = CHECKING.set(self)
        try:
            return self.timeline.removing(target, retraction.event_id)
        finally:
            CHECKING.reset(checking)
            self._candidate = (None, None)

    def last_before(self, order: Order, wanted: Callable[[Action], bool]) -> Action | None:
        """The last action before `order` that `wanted` picks, in the timeline under check
        (with the change it checks), read back only as far as it must."""
        added, removed = self._candidate
        found = next(
            (a for a in self.timeline.backwards(order) if a is not removed and wanted(a)), None
        )
        later = found is None or (added is not None and added.order > found.order)
        if added is not None and added.order < order and later and wanted(added):
            return added
        return found

    # Memory -------------------------------------------------------------------

    @property
    def facts(self) -> dict[str, Fact]:
        """Every fact recorded about the subject, by event id, in recording order (thawing
        any frozen ones)."""
        index = self.facts_index
        if index.frozen:
            for block in self.timeline.blocks:
                self.timeline.read(block)
        if index.thawed_any:  # thawed facts were put back at the end
            index.by_id = dict(sorted(index.by_id.items(), key=lambda f: f[1].originator_version))
            index.thawed_any = False
        return index.by_id

    def fact(self, event_id: str) -> Fact | None:
        """The fact recorded under `event_id`, thawing the block that holds it if frozen."""
        index = self.facts_index
        found = index.by_id.get(event_id)
        if found is None and index.frozen:
            for block in self.timeline.frozen_holding(event_id):
                self.timeline.read(block)
                found = index.by_id.get(event_id)
                if found is not None:
                    break
        return found

    @property
    def weight(self) -> int:
        """What the subject holds in memory, in facts: a frozen one counts for a twentieth."""
        return len(self.facts_index.by_id) + self.facts_index.frozen // 20

    def freeze(self, codec: Codec) -> None:
        """Keeps the parts of the timeline that no change touched lately frozen (in the form
        `codec` makes), for a subject kept in memory between writes; they thaw when needed."""
        index = self.facts_index
        for actions in self.timeline.freeze_untouched(codec):
            for action in actions:
                del index.by_id[action.event_id]
            index.frozen += len(actions)

    def compact(self, codec: Codec) -> None:
        """Folds the timeline once, computing its checkpoints, and freezes it whole: a subject
        just read from the store is kept small (the next check thaws only the blocks it
        needs), so that reading many long histories for a write never holds them all live.
        A stored timeline that today's rules refuse is left to the checks to say so."""
        with suppress(RuleViolation):
            self.timeline.end_state()
        self.freeze(codec)

    # Kept outside memory ------------------------------------------------------

    @classmethod
    def restored(
        cls,
        tracked: Tracked,
        first: Fact | None,
        loose: Iterable[Fact],
        version: int,
        blocks: list[Block[Action]],
        count: int,
        fresh: int,
        end: State | None,
    ) -> Subject:
        """A subject its keeper holds outside memory (beside its events): the event that
        tracks it, its first fact, the facts its timeline does not hold (retractions and the
        facts they took out), and the timeline's blocks (see `Timeline.restore`), as of
        `version`. Its actions are read when a change or a question needs them."""
        subject = cast(Subject, tracked.mutate(None))
        index = subject.facts_index
        index.first = first
        for fact in loose:
            index.by_id[fact.event_id] = fact
            if isinstance(fact, Subject.EventRetracted):
                subject.retractions[fact.retracts] = fact
        index.frozen = count
        subject.timeline.restore(blocks, count, fresh, end)
        subject.version = version
        return subject

    def loose(self) -> list[Fact]:
        """The facts its timeline does not hold: retractions and the facts they took out."""
        targets = (self.fact(r.retracts) for r in self.retractions.values())
        return [*self.retractions.values(), *(t for t in targets if t is not None)]

    # Knowledge ----------------------------------------------------------------

    def view(self, known_at: datetime | None = None) -> list[Action]:
        """The timeline in valid-time order as the store knew it at `known_at`."""
        if known_at is None:
            return list(self.timeline)
        return sorted(
            (
                fact
                for fact in self.facts.values()
                if isinstance(fact, Subject.Action)
                and fact.recorded_at <= known_at
                and not self.retracted_by(fact, known_at)
            ),
            key=lambda a: a.order,
        )

    def exists_from(self, known_at: datetime | None = None) -> datetime | None:
        """When the subject begins to exist (its first fact), as known at `known_at`."""
        if known_at is None:
            first = self.timeline.first()
            return first.occurred_at if first is not None else None
        timeline = self.view(known_at)
        return timeline[0].occurred_at if timeline else None

    def exists_at(self, as_of: datetime, known_at: datetime | None = None) -> bool:
        begins = self.exists_from(known_at)
        return begins is not None and begins <= as_of

    def was_known_at(self, known_at: datetime) -> bool:
        """Whether anything of this subject had been recorded by `known_at`."""
        return any(fact.recorded_at <= known_at for fact in self.facts.values())

    def retracted_by(self, fact: Fact, known_at: datetime | None = None) -> EventRetracted | None:
        retraction = self.retractions.get(fact.event_id)
        if retraction is None or (known_at is not None and retraction.recorded_at > known_at):
            return None
        return retraction

    def state_at(self, as_of: datetime, known_at: datetime | None = None) -> State:
        state = self.initial_state()
        for action in until(self.view(known_at), as_of):
            state.apply(action)
        state.advance(as_of)
        return state

    # Subject-specific rules ---------------------------------------------------

    def initial_state(self) -> State:
        """The state before any action."""
        return self.timeline.initial()

    def beginning(self) -> Callable[[], State]:
        """What makes the state before any action (holding no reference to the subject)."""
        raise NotImplementedError

    @classmethod
    def state_before_first_fact(cls, key: str) -> State | None:
        """What the subject counts as before its first fact: None if it does not exist."""
        return None

    def check_fields(self, action: Action) -> None:
        """Rules on one fact's own fields (beyond what input validation checks)."""

    def check_retractable(self, target: Fact) -> None:
        """Refuses retractions that no timeline could absorb."""


class FactIndex:
    """The facts recorded about a subject, by event id (but those its timeline holds frozen),
    apart from the subject, so that the timeline can tell it of facts it thaws."""

    def __init__(self) -> None:
        self.by_id: dict[str, Subject.Fact] = {}
        self.frozen = 0  # how many others there are: those in frozen blocks
        self.thawed_any = False  # since `facts` last put them in recording order
        self.first: Subject.Fact | None = None  # the first recorded

    def add(self, fact: Subject.Fact) -> None:
        self.by_id[fact.event_id] = fact
        if self.first is None:
            self.first = fact

    def thawed(self, actions: list[Subject.Action]) -> None:
        for action in actions:
            self.by_id[action.event_id] = action
        self.frozen -= len(actions)
        self.thawed_any = True


@cache
def _time_fields(fact_class: type[Subject.Fact]) -> frozenset[str]:
    hints = get_type_hints(fact_class)
    return frozenset(
        name
        for name, hint in hints.items()
        if name != "timestamp" and datetime in (get_args(hint) or (hint,))
    )


def until(timeline: Iterable[Subject.Action], as_of: datetime) -> Iterator[Subject.Action]:
    for action in timeline:
        if action.occurred_at > as_of:
            return
        yield action
