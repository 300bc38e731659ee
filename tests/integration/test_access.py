"""Who may write: named tokens kept as hashes, each write recorded with its token's name,
an optional rate of writes per token, and tokens never in logs or answers."""

from __future__ import annotations

import json
import subprocess

from fastapi.testclient import TestClient

from adapters.access import Tokens
from adapters.http.app import create_app
from tests.helpers import AUTH, DEPLATFORM, EXAMPLE_EVENTS, TOKEN


def make_token(tmp_path, name: str) -> str:
    result = subprocess.run(
        [DEPLATFORM, "token", "add", name, "--file", str(tmp_path / "tokens")],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_named_tokens_write_and_each_write_records_its_token_name(database_url, tmp_path, capsys):
    alice, bob = make_token(tmp_path, "alice"), make_token(tmp_path, "bob")
    stored = (tmp_path / "tokens").read_text()
    assert alice not in stored and bob not in stored  # only hashes are kept
    assert (tmp_path / "tokens").stat().st_mode & 0o077 == 0
    tokens = Tokens.load(TOKEN, tmp_path / "tokens")
    app = create_app(database_url, tokens=tokens)
    with TestClient(app) as client:
        as_alice = {"Authorization": f"Bearer {alice}"}
        assert client.post("/events", json=EXAMPLE_EVENTS[:6], headers=as_alice).status_code == 201
        written = client.post("/events", json=EXAMPLE_EVENTS[6:], headers=AUTH)
        assert written.status_code == 201
        first = client.get("/events", params={"limit": 2}).json()["events"][1]["event_id"]
        retracted = client.post(
            f"/events/{first}/retract",
            json={"reason": "test"},
            headers={"Authorization": f"Bearer {bob}"},
        )
        assert retracted.status_code == 201, retracted.text
        wrong = client.post(
            "/events", json=EXAMPLE_EVENTS[0], headers={"Authorization": "Bearer " + alice[:-1]}
        )
        assert wrong.status_code == 401
        feed = client.get("/events", params={"limit": 1000}).json()["events"]
        history = client.get("/subjects/parler/history").json()
    makers = {e["event_id"]: e.get("recorded_by") for e in feed}
    assert [makers[e["event_id"]] for e in feed[:6]] == ["alice"] * 6
    assert set(list(makers.values())[6:12]) == {"default"} and list(makers.values())[12] == "bob"
    assert all(h["recorded_by"] in ("alice", "default") for h in history)
    logged = capsys.readouterr()
    for token in (alice, bob, TOKEN):
        assert token not in logged.out + logged.err and token not in json.dumps(feed)


def test_exported_writer_names_are_ignored_when_imported_again(tracker):
    from adapters.interchange import export_record, to_new_fact

    tracker.record([to_new_fact(EXAMPLE_EVENTS[0])], recorded_by="alice")
    exported = export_record(next(iter(tracker.app.export())))
    assert exported["recorded_by"] == "alice"
    again = to_new_fact(exported)
    assert "recorded_by" not in again.fields
    assert tracker.record([again], recorded_by="bob").duplicates == [again.event_id]


def test_events_beyond_the_rate_of_a_token_get_429_with_retry_after(database_url):
    app = create_app(database_url, api_token=TOKEN, write_rate=3)
    with TestClient(app) as client:
        answers = [client.post("/events", json=event, headers=AUTH) for event in EXAMPLE_EVENTS[:5]]
        assert [a.status_code for a in answers[:3]] == [201, 201, 201]
        limited = answers[3]
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "3 events a minute" in limited.json()["detail"]
    with TestClient(create_app(database_url, api_token=TOKEN, write_rate=3)) as client:
        many = client.post("/events", json=EXAMPLE_EVENTS[5:9], headers=AUTH)
        assert many.status_code == 201  # a full minute's allowance, spent by 4 events at once
        again = client.post("/events", json=EXAMPLE_EVENTS[9], headers=AUTH)
        assert again.status_code == 429  # events are counted, not requests


def test_a_client_guessing_tokens_is_held_off_without_checking_its_guesses(database_url):
    app = create_app(database_url, api_token=TOKEN)
    with TestClient(app) as client:
        wrong = {"Authorization": "Bearer guess"}
        answers = [client.post("/events", json={}, headers=wrong).status_code for _ in range(11)]
        assert answers == [401] * 10 + [429]
        assert client.get("/status").status_code == 200  # reads are not held off


def test_a_bad_tokens_file_is_refused_at_start_naming_its_line_not_its_content(tmp_path):
    (tmp_path / "tokens").write_text("# writers\nalice:plaintext-secret\n")
    result = subprocess.run(
        [DEPLATFORM, "serve", "--database-url", f"sqlite:///{tmp_path}/s.db"],
        capture_output=True,
        text=True,
        env={"DEPLATFORM_API_TOKENS": str(tmp_path / "tokens"), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 2 and "line 2" in result.stderr
    assert "plaintext-secret" not in result.stderr + result.stdout
