"""Builders for tests: facts written as users write them, and example histories."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.interchange import parse_lines, to_new_fact
from domain import Subject
from service.recording import NewFact

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "parler-2021.jsonl"
NOW = datetime(2026, 1, 1, tzinfo=UTC)

# The spec's worked example: as_of, parler overall, (web, ios, android), twitter, facebook.
WORKED_EXAMPLE = [
    ("2021-01-01T00:00:00Z", "online", ("online", "online", "online"), "active", "active"),
    ("2021-01-07T06:00:00Z", "online", ("online", "online", "online"), "suspended", "suspended"),
    ("2021-01-08T06:00:00Z", "online", ("online", "online", "online"), "active", "suspended"),
    ("2021-01-09T12:00:00Z", "partial", ("online", "online", "partial"), "banned", "suspended"),
    ("2021-01-10T12:00:00Z", "partial", ("online", "partial", "partial"), "banned", "suspended"),
    ("2021-01-12T00:00:00Z", "offline", ("offline", "offline", "offline"), "banned", "suspended"),
    ("2021-01-18T12:00:00Z", "partial", ("partial", "partial", "partial"), "banned", "suspended"),
]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def fact(type_: str, subject: str | None = None, **fields: Any) -> NewFact:
    """A fact as a JSON Lines object would give it (`provider` defaults to 'P')."""
    raw: dict[str, Any] = {"type": type_, **fields}
    if subject is not None:
        raw["account" if ":" in subject else "platform"] = subject
    if type_ not in ("PlatformRegistered", "EventRetracted"):
        raw.setdefault("provider", "P")
    return to_new_fact(raw)


def record(subject: Subject, new: NewFact, now: datetime = NOW) -> Subject.Fact:
    """Records a fact on an aggregate directly, as the service would."""
    return subject.record(
        getattr(type(subject), new.type), now=now, event_id=new.event_id, **new.fields
    )


def registration(slug: str = "site", **fields: Any) -> NewFact:
    """A platform's registration in 2020, hosted by 'H' and in both app stores by default."""
    fields = {"hosting_provider": "H", "app_stores": ["apple_app_store", "google_play"]} | fields
    return fact("PlatformRegistered", slug, name=slug.title(), occurred_at="2020-01-01", **fields)


def example_facts() -> list[NewFact]:
    return [p.fact for p in parse_lines(EXAMPLE.read_text().splitlines()) if p.fact]
