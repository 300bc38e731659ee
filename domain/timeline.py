"""A subject's actions in valid-time order, with checkpoints of their fold.

Facts arrive late: a fact that lands before the end of a timeline can change the
verdict on every later one. Refolding the whole timeline for each such fact makes
a history of n facts cost n², so the actions are kept in blocks of about `BLOCK`,
each with the fold of everything before it (its start). A change replays only from
the start of the block it lands in, and stops at the first later block whose start
the new fold equals: from there on, nothing can differ.

Starts are computed lazily. Loading a subject from the store inserts its facts in
recording order without folding; the first check after that folds once, from the
first block whose start went stale.

A long-lived timeline (a writer's, an import's) keeps its memory small by freezing
the blocks no change touched lately (`freeze_untouched`): their actions are kept in a
compact form a `Codec` given by its keeper makes (outside the domain), with the hashes of
their event ids, and thawed when a change lands in them, a fold reads them or a retraction
names one of their facts.

A keeper can also hold a timeline outside memory (in a store, beside the events): each block
has a number that names it to its keeper, the timeline tells what changed since the keeper
last took its changes (`take_changes`), and a timeline can be `restore`d from blocks its
keeper holds frozen, their starts read only when a change needs them.
"""

from __future__ import annotations

from array import array
from bisect import insort
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, Self, TypeVar, cast

from domain.errors import RuleViolation

BLOCK = 32  # actions a block holds before it splits in two

Order = tuple[datetime, int]  # an action's `order`: (occurred_at, recording order)


class Action(Protocol):
    """What a timeline needs of a fact with a valid time (`Action`)."""

    @property
    def order(self) -> Order: ...

    @property
    def event_id(self) -> str: ...

    def describe(self) -> str: ...


A = TypeVar("A", bound=Action)


class State(Protocol):
    """A fold of a timeline: `apply` raises `RuleViolation` for a fact it cannot take."""

    def apply(self, action: Any) -> None: ...

    def advance(self, moment: datetime) -> None: ...

    def next_change(self) -> datetime | None:
        """When the state will change by itself, without a further event (if ever)."""
        ...

    def copy(self) -> Self: ...

    def __eq__(self, other: object) -> bool: ...


class Codec(Protocol):
    """How a frozen block holds its actions: in some compact form, given back as they were."""

    def freeze(self, actions: list[Any]) -> Any: ...

    def thaw(self, frozen: Any) -> list[Any]: ...


class Keeper(Codec, Protocol):
    """A codec whose frozen form names actions it holds elsewhere (a store): it says which
    of its blocks may hold an event id, since it gave no hashes of them, and thaws many
    blocks at once (one read, not one each)."""

    def may_hold(self, frozen: Any, event_id: str) -> bool: ...

    def thaw_many(self, frozen: list[Any]) -> list[list[Any]]: ...


# What changed in a block since its keeper last took the changes (`Block.altered`).
START, ACTIONS, NEW = 1, 2, 4


class Block(Generic[A]):
    """Consecutive actions, with the fold of every earlier action (`start`; block 0: the
    initial state). Frozen, its actions are held as its codec made them. `number` names it
    to the timeline's keeper; `altered` says what changed since the keeper took it."""

    __slots__ = (
        "_actions",
        "_codec",
        "_first",
        "_frozen",
        "_ids",
        "_start",
        "_unread",
        "altered",
        "number",
        "touched",
    )

    def __init__(self, actions: list[A], start: State | None = None, number: int = 0) -> None:
        self._actions: list[A] | None = actions
        self._codec: Codec | None = None  # what froze them
        self._frozen: Any = None  # the actions as frozen (kept while unmodified)
        self._first: Order | None = None  # the first action's order, while frozen
        self._ids: array[int] | None = None  # the hashes of their event ids, while frozen
        self._start = start
        self._unread: Callable[[], State | None] | None = None  # reads a kept start
        self.number = number
        self.altered = NEW | ACTIONS | START
        self.touched = False  # thawed or changed since the last `freeze_untouched`

    @classmethod
    def kept(
        cls,
        number: int,
        first: Order,
        keeper: Keeper,
        frozen: Any,
        start: Callable[[], State | None] | None,
    ) -> Block[A]:
        """A block its keeper holds, frozen in the keeper's form, its start read when wanted
        (None: its keeper knows none)."""
        block: Block[A] = cls([], None, number)
        block._actions, block._codec, block._frozen = None, keeper, frozen
        block._first, block._unread, block.altered = first, start, 0
        return block

    @property
    def start(self) -> State | None:
        if self._unread is not None:
            self._start, self._unread = self._unread(), None
        return self._start

    @start.setter
    def start(self, state: State | None) -> None:
        self._start, self._unread = state, None
        self.altered |= START

    @property
    def frozen(self) -> bool:
        return self._actions is None

    @property
    def first(self) -> Order:
        if self._actions is None:
            assert self._first is not None
            return self._first
        return self._actions[0].order

    def thawed(self) -> list[A]:
        """Its actions as objects, for reading; `changed` for modifying them."""
        if self._actions is None:
            assert self._codec is not None
            self._actions = self._codec.thaw(self._frozen)
            self._ids = None
            self.touched = True
        return self._actions

    def peek(self) -> list[A]:
        """Its actions, leaving it frozen if it is."""
        if self._actions is not None:
            return self._actions
        assert self._codec is not None
        actions: list[A] = self._codec.thaw(self._frozen)
        return actions

    def changed(self) -> list[A]:
        actions = self.thawed()
        self._frozen = None  # what was frozen is stale now
        self.altered |= ACTIONS
        return actions

    def freeze(self, codec: Codec) -> list[A]:
        """Replaces its actions by their frozen form; returns the actions it held."""
        actions = self._actions
        assert actions is not None
        if self._frozen is None or codec is not self._codec:
            self._frozen, self._codec = codec.freeze(actions), codec
        self._first = actions[0].order
        self._ids = array("q", [hash(a.event_id) for a in actions])
        self._actions = None
        return actions

    def may_hold(self, event_id: str) -> bool:
        """Whether, frozen, it may hold the action of this event id (hashes can collide)."""
        if self._actions is not None:
            return False
        if self._ids is None:  # frozen by a keeper that holds the actions elsewhere
            assert self._codec is not None
            return cast(Keeper, self._codec).may_hold(self._frozen, event_id)
        return hash(event_id) in self._ids


@dataclass
class Change:
    """A checked change of a timeline: the new starts of the blocks after it, up to where the
    fold meets the recorded one again, and the new end state (None: as it was)."""

    event_id: str  # the fact that makes it: the action added, or the retraction
    starts: list[tuple[Block[Any], State]] = field(default_factory=list)
    met: bool = False  # the fold met a recorded start: later blocks are unchanged
    end: State | None = None


class Timeline(Generic[A]):
    """Actions in valid-time order (`order`), in blocks that carry checkpoints of the fold."""

    def __init__(
        self,
        initial: Callable[[], State],
        on_thaw: Callable[[list[A]], None] = lambda actions: None,
    ) -> None:
        self.initial = initial  # the state before any action (built anew: it can change)
        self.on_thaw = on_thaw  # told of the actions of a frozen block when it thaws
        self.blocks: list[Block[A]] = []
        self.thawed_blocks: set[Block[A]] = set()  # those not frozen (a freeze looks at no other)
        self.fresh = 1  # blocks[:fresh] have a known start
        self.end: State | None = None  # the fold of every action, when known
        self.count = 0
        self.appended = False  # a checked action was appended since the last freeze
        self.numbered = 0  # blocks numbered so far: the next one's number
        self.dropped: list[int] = []  # numbers of the blocks removed since `take_changes`

    def __iter__(self) -> Iterator[A]:
        for block in self.blocks:
            yield from self.read(block)

    def __len__(self) -> int:
        return self.count

    def first(self) -> A | None:
        return self.read(self.blocks[0])[0] if self.blocks else None

    def last(self) -> A | None:
        return self.read(self.blocks[-1])[-1] if self.blocks else None

    # Freezing ----------------------------------------------------------------------------

    def read(self, block: Block[A]) -> list[A]:
        """A block's actions, thawed if frozen (and then kept thawed until frozen again)."""
        if block.frozen:
            actions = block.thawed()
            self.thawed_blocks.add(block)
            self.on_thaw(actions)
            return actions
        return block.thawed()

    def _modify(self, block: Block[A], touch: bool = True) -> list[A]:
        """A block's actions, to change; `touch` keeps it thawed until the next freeze but
        one (a late fact or a retraction lands where the next ones are likely to; not one
        read from the store, inserted unchecked)."""
        self.read(block)
        block.touched |= touch
        return block.changed()

    def freeze_untouched(self, codec: Codec) -> Iterator[list[A]]:
        """Freezes every block that nothing thawed or changed since the last call (the last
        block: nor appended to after a check), and yields the actions each held."""
        last = self.blocks[-1] if self.blocks else None
        for block in list(self.thawed_blocks):
            if block.touched or (block is last and self.appended):
                block.touched = False
            else:
                self.thawed_blocks.remove(block)
                yield block.freeze(codec)
        self.appended = False

    def frozen_holding(self, event_id: str) -> Iterator[Block[A]]:
        """The frozen blocks that may hold the action of this event id."""
        return (block for block in self.blocks if block.may_hold(event_id))

    # Keeping it elsewhere ------------------------------------------------------------------

    def restore(self, blocks: list[Block[A]], count: int, fresh: int, end: State | None) -> None:
        """Takes the blocks its keeper holds (`Block.kept`, in valid-time order), holding
        `count` actions, the first `fresh` with known starts, and the end state if known."""
        self.blocks, self.count, self.fresh, self.end = blocks, count, fresh, end
        self.numbered = max((b.number for b in blocks), default=-1) + 1

    def in_memory(self) -> bool:
        """Whether every block's actions are in memory (thawed, or frozen in a compact form)
        and its start read: nothing held elsewhere by its keeper."""
        return all(
            (block._actions is not None or block._ids is not None) and block._unread is None
            for block in self.blocks
        )

    def take_changes(self) -> tuple[list[tuple[int, Block[A], int]], list[int]]:
        """The blocks changed since the last call, with their places and what changed in
        them (`altered`), and the numbers of those removed; its keeper stores them."""
        changed = [(i, b, b.altered) for i, b in enumerate(self.blocks) if b.altered]
        for _, block, _ in changed:
            block.altered = 0
        dropped, self.dropped = self.dropped, []
        return changed, dropped

    def _block(self, actions: list[A], start: State | None = None) -> Block[A]:
        block = Block(actions, start, self.numbered)
        self.numbered += 1
        return block

    # Checking a change (nothing is modified but checkpoints) ---------------------------

    def end_state(self) -> State:
        """The fold of the whole timeline."""
        if self.end is None:
            if not self.blocks:
                return self.initial()
            last = len(self.blocks) - 1
            state = self._start_of(last)
            replay(state, self.read(self.blocks[last]), None)
            self.end = state
        return self.end

    def adding(self, action: A, event_id: str) -> Change:
        """The change that inserting `action` makes, or the `RuleViolation` it causes."""
        last = self.last()
        if last is None or action.order >= last.order:
            state = self.end_state().copy()
            replay(state, [action], action)
            return Change(event_id, end=state)
        index = self._locate(action.order)
        actions = list(self.read(self.blocks[index]))
        insort(actions, action, key=lambda a: a.order)
        return self._refold(index, actions, action, event_id)

    def removing(self, action: A, event_id: str) -> Change:
        """The change that taking `action` out makes, or the `RuleViolation` it causes."""
        index = self._locate(action.order)
        actions = [a for a in self.read(self.blocks[index]) if a is not action]
        return self._refold(index, actions, None, event_id)

    def _refold(self, index: int, actions: list[A], new: A | None, event_id: str) -> Change:
        state = self._start_of(index)
        replay(state, actions, new)
        change = Change(event_id)
        for later in range(index + 1, len(self.blocks)):
            block = self.blocks[later]
            if later < self.fresh and state == block.start:
                change.met = True
                return change
            change.starts.append((block, state.copy()))
            replay(state, self.read(block), new)
        change.end = state
        return change

    def _start_of(self, index: int) -> State:
        """A copy of the fold before block `index`, computing stale starts on the way."""
        if index == 0:
            return self.initial()
        if index >= self.fresh:
            known = self.fresh - 1
            state = self._start_of(known)
            for stale in range(known, index):
                replay(state, self.read(self.blocks[stale]), None)
                self.blocks[stale + 1].start = state.copy()
            self.fresh = index + 1
            return state
        start = self.blocks[index].start
        assert start is not None
        return start.copy()

    def _locate(self, order: Order) -> int:
        """The block an action of this order belongs in: the last that starts before it."""
        low, high = 0, len(self.blocks)
        while low < high:
            middle = (low + high) // 2
            if self.blocks[middle].first <= order:
                low = middle + 1
            else:
                high = middle
        return max(low - 1, 0)

    # Reading from a moment on (what a projection redoes after a late fact) -------------

    def before(self, moment: datetime) -> tuple[State, A] | None:
        """The fold of every action that occurred before `moment`, and the last of them (None
        if none did): read from the checkpoint of the block it is in, not from the start.
        The checkpoints after a checked change are exact only in what rules compare: ask a
        timeline whose changes were not checked (`insert` without a change) for the whole
        fold."""
        if not self.blocks:
            return None
        index = self._locate((moment, 0))  # versions start at 1: before any action at moment
        earlier = [a for a in self.read(self.blocks[index]) if a.order[0] < moment]
        if not earlier:
            return None
        state = self._start_of(index)
        replay(state, earlier, None)
        return state, earlier[-1]

    def backwards(self, order: Order) -> Iterator[A]:
        """The actions before `order`, the latest first (read back only as far as asked:
        blocks a keeper holds are read with those before them, twice as many each time, so
        that reading back through a long history takes a few reads, not one a block)."""
        if not self.blocks:
            return
        window = 1
        for index in range(self._locate(order), -1, -1):
            block = self.blocks[index]
            if block._actions is None and block._ids is None:
                self._read_kept(self.blocks[max(index - window + 1, 0) : index + 1])
                window *= 2
            for action in reversed(self.read(block)):
                if action.order < order:
                    yield action

    def since(self, moment: datetime) -> Iterator[A]:
        """The actions that occurred at or after `moment`, in order."""
        if not self.blocks:
            return
        later = self.blocks[self._locate((moment, 0)) :]
        self._read_kept(later)
        for block in later:
            for action in self.read(block):
                if action.order[0] >= moment:
                    yield action

    def _read_kept(self, blocks: list[Block[A]]) -> None:
        """Thaws those of these blocks that a keeper holds elsewhere, in one read each keeper."""
        kept = [b for b in blocks if b._actions is None and b._ids is None]
        if len(kept) < 2:
            return
        keeper = cast(Keeper, kept[0]._codec)
        kept = [b for b in kept if b._codec is keeper]
        for block, actions in zip(kept, keeper.thaw_many([b._frozen for b in kept]), strict=True):
            block._actions, block.touched = actions, True
            self.thawed_blocks.add(block)
            self.on_thaw(actions)

    # Changing --------------------------------------------------------------------------

    def insert(self, action: A, change: Change | None = None) -> None:
        """Adds an action; `change`, if it was checked, keeps the checkpoints it computed."""
        self.count += 1
        last = self.last()
        if last is None or action.order >= last.order:
            self._append(action, change)
            return
        index = self._locate(action.order)
        actions = self._modify(self.blocks[index], touch=change is not None)
        insort(actions, action, key=lambda a: a.order)
        self._changed(index, change)
        if len(actions) > 2 * BLOCK:
            self._split(index, touch=change is not None)

    def remove(self, action: A, change: Change | None = None) -> None:
        self.count -= 1
        index = self._locate(action.order)
        block = self.blocks[index]
        actions = self._modify(block, touch=change is not None)
        actions.remove(action)
        self._changed(index, change)
        if not actions:  # the next block starts where this one did
            del self.blocks[index]
            self.dropped.append(block.number)
            self.thawed_blocks.discard(block)
            if index < self.fresh:
                self.fresh = max(self.fresh - 1, 1)

    def _append(self, action: A, change: Change | None) -> None:
        self.appended |= change is not None
        end = change.end if change is not None else None
        if end is None and self.end is not None:
            try:  # replaying never fails: the fold is redone when needed
                end = self.end.copy()
                end.apply(action)
            except RuleViolation:
                end = None
        if not self.blocks or len(self.read(self.blocks[-1])) >= BLOCK:
            known = self.fresh == len(self.blocks) and self.end is not None
            self.blocks.append(self._block([action], self.end if known else None))
            self.thawed_blocks.add(self.blocks[-1])
            if known or len(self.blocks) == 1:
                self.fresh = len(self.blocks)
        else:
            self._modify(self.blocks[-1], touch=False).append(action)
        self.end = end

    def _changed(self, index: int, change: Change | None) -> None:
        if change is None:  # not checked (loading): later starts are unknown
            self.fresh = min(self.fresh, index + 1)
            self.end = None
            return
        for block, start in change.starts:
            block.start = start
        if not change.met:
            self.fresh = len(self.blocks)
            self.end = change.end

    def _split(self, index: int, touch: bool) -> None:
        block = self.blocks[index]
        actions = self._modify(block, touch)
        half = len(actions) // 2
        tail = self._block(actions[half:])
        tail.touched = block.touched  # as the block it split from
        del actions[half:]
        self.blocks.insert(index + 1, tail)
        self.thawed_blocks.add(tail)
        if index + 1 < self.fresh:
            state = self._start_of(index)
            replay(state, actions, None)
            tail.start = state
            self.fresh += 1


def replay(state: State, actions: Sequence[Action], new: Action | None) -> None:
    """Folds `actions` into `state`; a refusal names the fact it is about."""
    for action in actions:
        try:
            state.apply(action)
        except RuleViolation as violation:
            if action is new:
                raise
            effect = "recording this event" if new is not None else "this retraction"
            raise RuleViolation(
                f"{effect} would make event {action.describe()} invalid: {violation}",
                conflicts_with=action.event_id,
            ) from None
