"""Subjects kept in memory between uses, within a budget: a writer's, an import's, a
projection runner's. A subject with a long history then takes one more fact at the cost of a
short one, instead of being read and folded again. What they keep is compact: the blocks of
their timelines that no change touched lately are frozen, pickled and compressed (about 50
bytes an action instead of about 1 KB of objects)."""

from __future__ import annotations

import pickle
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from uuid import UUID

from domain.subjects import Subject


class Pickled:
    """Frozen blocks as compressed pickles (level 1: most of the saving, at little cost)."""

    def freeze(self, actions: list[Any]) -> bytes:
        return zlib.compress(pickle.dumps(actions, pickle.HIGHEST_PROTOCOL), 1)

    def thaw(self, frozen: bytes) -> list[Any]:
        actions: list[Any] = pickle.loads(zlib.decompress(frozen))
        return actions


PICKLED = Pickled()


class SubjectCache:
    """The subjects a process used last (least recently used dropped beyond `budget` facts
    in all, a frozen fact counting for a twentieth: see `Subject.freeze`). A user (a write, a
    projection's page) takes its subjects out, so that two never share one; it puts them
    back only once what it did with them is stored."""

    def __init__(
        self, budget: int, dropping: Callable[[list[Subject]], None] = lambda subjects: None
    ) -> None:
        """`dropping` is handed the subjects it drops, before it forgets them."""
        self.budget = budget
        self.dropping = dropping
        self._subjects: OrderedDict[UUID, tuple[Subject, int]] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()

    def take(self, subject_ids: Sequence[UUID]) -> dict[UUID, Subject]:
        with self._lock:
            taken = {}
            for subject_id in dict.fromkeys(subject_ids):
                held = self._subjects.pop(subject_id, None)
                if held is not None:
                    subject, weight = held
                    self._weight -= weight
                    taken[subject_id] = subject
            return taken

    def checkin(self, subjects: Iterable[Subject]) -> None:
        """Keeps these subjects (the most recently used), frozen where no change touched
        them lately; drops the least recently used others while over budget."""
        with self._lock:
            kept = set()
            for subject in subjects:
                kept.add(subject.id)
                if subject.id not in self._subjects:
                    subject.freeze(PICKLED)
                    self._subjects[subject.id] = (subject, subject.weight)
                    self._weight += subject.weight
            dropped = []
            while self._weight > self.budget and next(iter(self._subjects)) not in kept:
                _, (subject, weight) = self._subjects.popitem(last=False)
                self._weight -= weight
                dropped.append(subject)
            if dropped:
                self.dropping(dropped)

    def held(self) -> list[Subject]:
        """The subjects it holds."""
        with self._lock:
            return [subject for subject, _ in self._subjects.values()]

    def clear(self) -> None:
        """Forgets every subject (what they hold may no longer be what is stored)."""
        with self._lock:
            self._subjects.clear()
            self._weight = 0
