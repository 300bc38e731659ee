"""Builders for tests: facts written as users write them, example histories, and the
recording of drawn histories on aggregates and on stores."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, settings

from adapters.composition import Services
from adapters.interchange import export_record, parse_lines, to_new_fact
from domain import Account, Platform, Subject
from domain.clock import now
from domain.errors import RuleViolation
from domain.values import SubjectKey
from service.recording import NewFact

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "parler-2021.jsonl"
EXAMPLE_EVENTS = [
    json.loads(line) for line in EXAMPLE.read_text().splitlines() if line.startswith("{")
]
NOW = datetime(2026, 1, 1, tzinfo=UTC)
# Recorded late about the example: Parler rehosted in full on 11 January (so on the 12th it is
# partial, storeless, where the example has it offline).
LATE_REHOSTING = {
    "type": "HostingRestored",
    "platform": "parler",
    "occurred_at": "2021-01-11T12:00:00Z",
    "provider": "Someone",
    "scope": "full",
}
TOKEN = "s3cret-token"  # the API token of the HTTP tests
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The installed command, beside this interpreter (as users' scripts run it).
DEPLATFORM = shutil.which("deplatform", path=str(Path(sys.executable).parent)) or "deplatform"

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
    return subject.record(new.type, now=now, event_id=new.event_id, **new.fields)


def registration(slug: str = "site", **fields: Any) -> NewFact:
    """A platform's registration in 2020, hosted by 'H' and in both app stores by default."""
    fields = {"hosting_provider": "H", "app_stores": ["apple_app_store", "google_play"]} | fields
    return fact("PlatformRegistered", slug, name=slug.title(), occurred_at="2020-01-01", **fields)


def example_facts() -> list[NewFact]:
    return [p.fact for p in parse_lines(EXAMPLE.read_text().splitlines()) if p.fact]


# Drawn histories on one aggregate ------------------------------------------------------


def new_subject(facts: list[NewFact]) -> Subject:
    """The subject a drawn history is about: an account, or a registered platform."""
    if facts and facts[0].subject is not None and facts[0].subject.kind == "account":
        return Account.track(SubjectKey.account("net:x"), now())
    subject = Platform.track(SubjectKey.platform("site"), now())
    record(subject, registration(), now=NOW - timedelta(hours=1))
    return subject


def record_all(subject: Subject, facts: list[NewFact], *, recorded_from=NOW) -> list[Subject.Fact]:
    """Records each fact in turn, one second apart; returns those the rules accepted."""
    accepted = []
    for i, new in enumerate(facts):
        with contextlib.suppress(RuleViolation):
            accepted.append(record(subject, new, now=recorded_from + timedelta(seconds=i)))
    return accepted


def change_moments(subject: Subject) -> list[datetime]:
    """Every moment where the status can change, and one just after each."""
    actions = [a for a in subject.facts.values() if isinstance(a, Subject.Action)]
    changes = {a.occurred_at for a in actions} | {
        a.until for a in actions if getattr(a, "until", None)
    }
    return sorted(changes | {m + timedelta(seconds=30) for m in changes})


# Drawn histories on a store ------------------------------------------------------------


def store_settings(new_store) -> settings:
    """As many examples as the kind of store affords; stores are made inside each example."""
    return settings(
        max_examples=new_store.examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def record_history(tracker: Services, facts: list, retract: list[float]) -> None:
    """Records a drawn history fact by fact, as facts trickle in, then its retractions."""
    registered = registration(app_stores=["google_play"])  # so apple_app_store facts fail
    tracker.record([registered])
    accepted = [registered]
    for new in facts:
        if tracker.record([new]).committed:
            accepted.append(new)
    for share in retract:
        target = accepted[int(share * len(accepted))]
        tracker.record([fact("EventRetracted", retracts=target.event_id, reason="r")])


def exported(tracker: Services) -> list[dict]:
    return [export_record(s) for s in tracker.app.export()]


# A real server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(
    database_url: str,
    *,
    token: str | None = TOKEN,
    log: Path | None = None,
    no_projections: bool = False,
):
    """`deplatform serve` on a store, as users run it; yields its address once it answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLATFORM_")}
    if token:
        env["DEPLATFORM_API_TOKEN"] = token
    output = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115  # closed below
    process = subprocess.Popen(
        [DEPLATFORM, "serve", "--port", str(port), "--database-url", database_url]
        + (["--no-projections"] if no_projections else []),
        env=env,
        stdout=output,
        stderr=output,
    )
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the server stopped"
            try:
                if httpx.get(f"{address}/livez", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.2)
        yield address
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        if log:
            output.close()
