"""Eight writers at once on one subject, through the API and the CLI: every acknowledged
write is stored exactly once, nothing unacknowledged is stored, and the stored timeline is
one the rules accept fact by fact (no two conflicting facts got in)."""

from __future__ import annotations

import json
import random
import subprocess
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx

from adapters.composition import open_services
from adapters.interchange import to_new_fact
from domain import Account
from domain.clock import now
from domain.values import SubjectKey
from tests.helpers import AUTH, DEPLATFORM, exported, record, serving

ACCOUNT = "net:hot"
API_WRITERS, CLI_WRITERS = 4, 4
API_WRITES, CLI_WRITES = 12, 4


def account_facts(writer: int, count: int) -> list[dict]:
    """Suspensions, bans and reinstatements at random moments: many conflict with others."""
    draw = random.Random(writer)
    facts = []
    for n in range(count):
        moment = datetime(2021, 1, 1, tzinfo=UTC) + timedelta(hours=draw.randrange(24 * 60))
        kind = draw.choice(["AccountSuspended", "AccountBanned", "AccountReinstated"])
        fact = {
            "type": kind,
            "account": ACCOUNT,
            "event_id": f"w{writer}-{n}",
            "occurred_at": moment.isoformat().replace("+00:00", "Z"),
            "provider": "Net",
        }
        if kind == "AccountSuspended" and draw.random() < 0.5:
            fact["until"] = (moment + timedelta(days=3)).isoformat().replace("+00:00", "Z")
        facts.append(fact)
    return facts


def test_writers_on_one_subject_through_api_and_cli_never_lose_duplicate_or_invent(
    database_url, tmp_path
):
    acknowledged: list[str] = []
    answers: Counter[str] = Counter()
    lock = threading.Lock()

    def note(event_id: str, answer: str, stored: bool) -> None:
        with lock:
            answers[answer] += 1
            if stored:
                acknowledged.append(event_id)

    with serving(database_url, log=tmp_path / "server.log") as address:

        def api_writer(writer: int) -> None:
            with httpx.Client(base_url=address, headers=AUTH, timeout=60) as client:
                for fact in account_facts(writer, API_WRITES):
                    response = client.post("/events", json=fact)
                    assert response.status_code in (201, 409, 503), response.text
                    note(fact["event_id"], str(response.status_code), response.status_code == 201)

        def cli_writer(writer: int) -> None:
            for fact in account_facts(writer, CLI_WRITES):
                command = [DEPLATFORM, "record", "--json-event", json.dumps(fact), "--json"]
                result = subprocess.run(
                    [*command, "--no-projections", "--database-url", database_url],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                summary = json.loads(result.stdout)  # printed whatever the outcome
                assert "Traceback" not in result.stderr, result.stderr
                assert result.returncode == (0 if summary["recorded"] else 1), result
                note(fact["event_id"], f"cli {result.returncode}", summary["recorded"] == 1)

        threads = [threading.Thread(target=api_writer, args=(w,)) for w in range(API_WRITERS)] + [
            threading.Thread(target=cli_writer, args=(API_WRITERS + w,)) for w in range(CLI_WRITERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert "Traceback" not in (tmp_path / "server.log").read_text()

    with open_services(database_url) as services:
        stored = [r for r in exported(services) if r.get("account") == ACCOUNT]
    ids = Counter(r["event_id"] for r in stored)
    assert all(n == 1 for n in ids.values()), ids.most_common(3)
    assert sorted(ids) == sorted(acknowledged), answers  # none lost, none invented
    assert len(acknowledged) > 1 and answers["201"] + answers["cli 0"] == len(acknowledged)

    # The stored timeline, taken fact by fact in recording order, breaks no rule.
    account = Account.track(SubjectKey.account(ACCOUNT), now())
    for stored_record in stored:
        record(account, to_new_fact(stored_record))  # raises RuleViolation if one conflicts
