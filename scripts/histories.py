"""Synthetic, valid histories for benchmarks: Zipf-like subject sizes (a few hot subjects
with tens of thousands of facts), a realistic mix of event types, about 10% of facts
recorded late (before the end of their subject's timeline) and about 1% retracted.

Every fact is valid when recorded, in recording order, by construction: the facts that
arrive late are self-contained episodes that no later fact depends on (a service cut and
restored, an extra host added and dropped, an account's suspension and reinstatement in
an active stretch, a timed suspension), and retractions only take back such facts.

    uv run python scripts/histories.py --events 200000 --subjects 10000 > history.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2000, 1, 1, tzinfo=UTC)
END = datetime(2025, 12, 31, tzinfo=UTC)
LATE = 0.10
RETRACTED = 0.01
STORES = ["apple_app_store", "google_play"]
HOTTEST = "site-0"  # the platform of rank 0: the most facts


def platform(key: str, size: int, rnd: random.Random) -> Iterator[tuple[datetime, dict]]:
    """A platform's facts with their recording moments (valid time, or later when late)."""
    history = History(key, "platform", size, rnd)
    registration = {"name": key.title(), "hosting_provider": "host-0", "app_stores": STORES}
    history.episode(False, [("PlatformRegistered", registration)])
    host, hosts = "host-0", 0
    while history.count < size:
        late = rnd.random() < LATE
        roll = rnd.random()
        if late or roll < 0.25:
            if rnd.random() < 0.5:
                service = rnd.choice(["payments", "email", "cdn"])
                kind = rnd.choice(["ServiceTerminated", "ServiceRestored"])
                history.episode(late, [(kind, {"provider": "Stripe", "service": service})], True)
            else:
                hosts += 1
                extra = f"cdn-{hosts}"
                history.episode(
                    late,
                    [
                        ("HostingRestored", {"provider": extra, "scope": "partial"}),
                        ("HostingTerminated", {"provider": extra}),
                    ],
                )
        elif roll < 0.5:
            store = rnd.choice(STORES)
            provider = "Apple" if store == STORES[0] else "Google"
            history.episode(
                False,
                [
                    ("AppStoreRemoved", {"provider": provider, "store": store}),
                    ("AppStoreReinstated", {"provider": provider, "store": store}),
                ],
            )
        elif roll < 0.7:
            hosts += 1
            new = f"host-{hosts}"
            history.episode(
                False,
                [
                    ("HostingTerminated", {"provider": host, "reason": "terms of service"}),
                    ("HostingRestored", {"provider": new, "scope": "full"}),
                ],
            )
            host = new
        elif roll < 0.85:
            history.episode(
                False,
                [
                    ("DomainSuspended", {"provider": "registrar"}),
                    ("DomainRestored", {"provider": "registrar"}),
                ],
            )
        else:
            history.episode(
                False,
                [
                    ("PlatformShutDown", {"provider": key}),
                    ("PlatformRelaunched", {"provider": key}),
                ],
            )
    return history.recorded()


def account(key: str, size: int, rnd: random.Random) -> Iterator[tuple[datetime, dict]]:
    """An account's facts: every episode starts and ends with the account active."""
    history = History(key, "account", size, rnd)
    provider = key.split(":")[0].title()
    while history.count < size:
        late = rnd.random() < LATE
        roll = rnd.random()
        if late or roll < 0.6:
            if rnd.random() < 0.5:
                history.episode(
                    late,
                    [
                        ("AccountSuspended", {"provider": provider, "reason": "spam"}),
                        ("AccountReinstated", {"provider": provider}),
                    ],
                )
            else:
                history.timed_suspension(late, provider)
        else:
            history.episode(
                False,
                [
                    ("AccountBanned", {"provider": provider, "reason": "repeated violations"}),
                    ("AccountReinstated", {"provider": provider, "reason": "appeal upheld"}),
                ],
            )
    return history.recorded()


class History:
    """A subject's timeline under construction, episode by episode, in valid-time order."""

    def __init__(self, key: str, field: str, size: int, rnd: random.Random) -> None:
        self.key, self.field, self.size, self.rnd = key, field, size, rnd
        span = (END - START) * (0.5 + 0.5 * rnd.random())
        self.moment = END - span
        self.step = span / (2 * size + 2)  # room for timed suspensions: ends before END
        self.entries: list[tuple[datetime, dict]] = []  # (recorded, fact)
        self.retractable: list[tuple[datetime, str]] = []  # (recorded, event_id)

    @property
    def count(self) -> int:
        return len(self.entries)

    def _fact(self, kind: str, fields: dict) -> tuple[datetime, dict]:
        self.moment += self.step * (0.2 + 1.6 * self.rnd.random())
        fact = {
            "type": kind,
            self.field: self.key,
            "event_id": f"{self.key}/{self.count}",
            "occurred_at": stamp(self.moment),
            **fields,
        }
        if isinstance(fact.get("until"), timedelta):  # a duration from occurred_at
            fact["until"] = stamp(self.moment + fact["until"])
        if self.rnd.random() < 0.3:
            fact["sources"] = [f"https://news.example/{self.key}/{self.count}"]
        return self.moment, fact

    def episode(self, late: bool, steps: list[tuple[str, dict]], retractable: bool = False) -> None:
        """Appends an episode's facts; a late one is recorded, whole and in order, later."""
        delay = timedelta(days=self.rnd.uniform(1, 120)) if late else timedelta(0)
        recorded = None
        for kind, fields in steps[: self.size - self.count]:
            occurred, fact = self._fact(kind, fields)
            recorded = recorded or occurred + delay
            self.entries.append((recorded, fact))
            recorded += timedelta(microseconds=1)
            if retractable:
                self.retractable.append((recorded, fact["event_id"]))

    def timed_suspension(self, late: bool, provider: str) -> None:
        """A suspension that runs out by itself before the account's next fact."""
        duration = self.step * (0.1 + 0.5 * self.rnd.random())
        fields = {"provider": provider, "reason": "cooling-off", "until": duration}
        self.episode(late, [("AccountSuspended", fields)], retractable=True)
        self.moment += duration

    def recorded(self) -> Iterator[tuple[datetime, dict]]:
        yield from self.entries
        for recorded, event_id in self.retractable:
            if self.rnd.random() < RETRACTED * 2:
                later = recorded + timedelta(days=self.rnd.uniform(1, 365))
                fact = {"type": "EventRetracted", "retracts": event_id, "reason": "misreported"}
                yield later, fact


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def sizes(events: int, subjects: int, exponent: float = 1.0) -> list[int]:
    """Zipf-like subject sizes summing to about `events`, each at least 2."""
    weights = [1 / (rank + 1) ** exponent for rank in range(subjects)]
    total = sum(weights)
    return [max(2, round(events * w / total)) for w in weights]


def history(events: int, subjects: int, seed: int = 7) -> list[dict]:
    """The facts of a whole history, in recording order."""
    rnd = random.Random(seed)
    entries: list[tuple[datetime, int, dict]] = []
    for rank, size in enumerate(sizes(events, subjects)):
        if rank % 2 == 0:
            recorded = platform(f"site-{rank}", size, rnd)
        else:
            recorded = account(f"net{rank % 7}:user{rank}", size, rnd)
        entries += [(at, len(entries) + i, fact) for i, (at, fact) in enumerate(recorded)]
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    return [fact for _, _, fact in entries[:events]]


def write(path: Path, events: int, subjects: int, seed: int) -> Path:
    with path.open("w") as out:
        for fact in history(events, subjects, seed):
            out.write(json.dumps(fact, separators=(",", ":")) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for fact in history(args.events, args.subjects, args.seed):
        sys.stdout.write(json.dumps(fact, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
