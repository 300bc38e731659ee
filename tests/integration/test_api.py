"""The JSON API through its real ASGI app (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from adapters.http.app import create_app
from adapters.interchange import parse_instant
from tests.helpers import AUTH, EXAMPLE_EVENTS, LATE_REHOSTING, TOKEN, WORKED_EXAMPLE


def is_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    return problem


@pytest.mark.parametrize(("as_of", "overall", "channels", "twitter", "facebook"), WORKED_EXAMPLE)
def test_statuses_follow_the_worked_example(loaded, as_of, overall, channels, twitter, facebook):
    parler = loaded.get("/subjects/parler/status", params={"as_of": as_of}).json()
    assert (parler["status"], tuple(parler["channels"].values())) == (overall, channels)
    account = loaded.get("/subjects/twitter:realdonaldtrump/status", params={"as_of": as_of})
    assert account.json()["status"] == twitter
    everyone = {
        s["subject"]: s["status"] for s in loaded.get("/status", params={"as_of": as_of}).json()
    }
    assert everyone.get("facebook:DonaldTrump", "active") == facebook


def test_writes_need_the_token(client, database_url):
    assert is_problem(client.post("/events", json=EXAMPLE_EVENTS[0]), 401)
    wrong = client.post("/events", json=EXAMPLE_EVENTS[0], headers={"Authorization": "Bearer nope"})
    assert is_problem(wrong, 401) and wrong.headers["www-authenticate"] == "Bearer"
    read_only = create_app(database_url, api_token=None)
    with TestClient(read_only) as anonymous:
        assert (
            "read-only"
            in is_problem(anonymous.post("/events", json={}, headers=AUTH), 403)["title"].lower()
        )
        assert anonymous.get("/healthz").json()["read_only"] is True


def test_every_error_class_is_a_problem_naming_the_fault(loaded):
    invalid = is_problem(loaded.post("/events", json=[{"type": "Nope"}], headers=AUTH), 422)
    assert invalid["rejected"][0]["index"] == 1 and "unknown event type" in invalid["detail"]
    naive = dict(EXAMPLE_EVENTS[9], occurred_at="2021-02-01T00:00:00")
    assert (
        "no timezone" in is_problem(loaded.post("/events", json=naive, headers=AUTH), 422)["detail"]
    )
    again = {
        "type": "PlatformRegistered",
        "platform": "parler",
        "name": "P",
        "occurred_at": "2019-01-01",
    }
    conflict = is_problem(loaded.post("/events", json=again, headers=AUTH), 409)
    assert "already registered" in conflict["detail"] and conflict["recorded"] == 0
    assert is_problem(loaded.get("/subjects/nowhere/status"), 404)
    assert is_problem(loaded.get("/subjects/Not A Key!/status"), 422)
    assert (
        "as_of" in is_problem(loaded.get("/status", params={"as_of": "yesterday"}), 422)["detail"]
    )
    assert is_problem(loaded.get("/platforms", params={"limit": 0}), 422)
    assert is_problem(loaded.get("/events", params={"after": 10**20}), 422)
    malformed = loaded.post(
        "/events", content=b"{not json", headers=AUTH | {"content-type": "application/json"}
    )
    assert is_problem(malformed, 422)
    deep = loaded.post("/events", content=b"[" * 50_000, headers=AUTH)
    assert "nested too deeply" in is_problem(deep, 422)["detail"]
    huge = [EXAMPLE_EVENTS[0]] * 1000
    assert is_problem(loaded.post("/events", json=huge, headers=AUTH), 413)
    assert is_problem(loaded.get("/no/such/path"), 404)


def test_an_array_is_atomic(loaded):
    before = loaded.get("/events", params={"limit": 1000}).json()["events"]
    good = {
        "type": "DomainSuspended",
        "platform": "parler",
        "occurred_at": "2021-02-01",
        "provider": "R",
    }
    bad = dict(good, occurred_at="2021-02-02")  # already suspended by the first
    assert (
        is_problem(loaded.post("/events", json=[good, bad], headers=AUTH), 409)["rejected"][0][
            "index"
        ]
        == 2
    )
    assert loaded.get("/events", params={"limit": 1000}).json()["events"] == before


def test_the_feed_gives_every_event_exactly_once_in_recording_order(loaded):
    unknown = loaded.post("/events/no-such-event/retract", json={"reason": "r"}, headers=AUTH)
    assert "not recorded" in is_problem(unknown, 404)["detail"]
    seen, cursor = [], 0
    while True:
        page = loaded.get("/events", params={"after": cursor, "limit": 5}).json()
        if page["next"] == cursor:
            break
        seen += page["events"]
        cursor = page["next"]
    assert [e["position"] for e in seen] == sorted({e["position"] for e in seen})
    assert len(seen) == 12 and {e["type"] for e in seen} >= {"PlatformRegistered", "AccountBanned"}
    cut = next(e for e in seen if e["type"] == "HostingTerminated")
    assert (
        loaded.post(
            f"/events/{cut['event_id']}/retract", json={"reason": "r"}, headers=AUTH
        ).status_code
        == 201
    )
    tail = loaded.get("/events", params={"after": cursor}).json()
    assert [e["type"] for e in tail["events"]] == ["EventRetracted"] and tail["next"] > cursor


def test_changes_between_two_moments(loaded):
    changed = loaded.get(
        "/changes", params={"from": "2021-01-09T12:00:00Z", "to": "2021-01-12"}
    ).json()
    parler = next(s for s in changed["subjects"] if s["subject"] == "parler")
    assert parler["changes"]["overall"] == {"from": "partial", "to": "offline"}
    assert parler["changes"]["ios"] == {"from": "online", "to": "offline"}
    assert [e["type"] for e in parler["events"]] == ["AppStoreRemoved", "HostingTerminated"]
    assert is_problem(
        loaded.get("/changes", params={"from": "2021-02-01", "to": "2021-01-01"}), 422
    )


def test_listings_are_paged_and_filtered(loaded):
    accounts = loaded.get("/accounts", params={"as_of": "2021-01-12", "limit": 2}).json()
    assert accounts["total"] == 3 and len(accounts["items"]) == 2
    banned = loaded.get("/accounts", params={"as_of": "2021-01-12", "status": "banned"}).json()
    assert [a["subject"] for a in banned["items"]] == ["twitter:realDonaldTrump"]
    assert loaded.get("/platforms").json()["items"][0]["subject"] == "parler"
    history = loaded.get("/subjects/parler/history", params={"limit": 2, "offset": 1}).json()
    assert [h["type"] for h in history] == ["AppStoreRemoved", "AppStoreRemoved"]
    health = loaded.get("/healthz").json()
    assert health["status"] == "ok" and health["projection"]["lag"] == 0
    assert loaded.get("/openapi.json").json()["paths"]["/events"]["post"]


def test_a_page_of_the_feed_holds_limit_events_when_that_many_exist(loaded):
    first = loaded.get("/events", params={"limit": 5}).json()
    assert len(first["events"]) == 5 and first["next"] == first["events"][-1]["position"]
    rest = loaded.get("/events", params={"after": first["next"], "limit": 100}).json()
    assert len(rest["events"]) == 7


def test_changes_inside_a_period_and_their_net_effect(loaded):
    window = {"from": "2021-01-09T12:00:00Z", "to": "2021-01-20"}
    parler = next(
        s
        for s in loaded.get("/changes", params=window).json()["subjects"]
        if s["subject"] == "parler"
    )
    web = [
        (t["at"], t["from"], t["to"], t["provider"])
        for t in parler["transitions"]
        if t["channel"] == "web"
    ]
    assert web == [
        ("2021-01-11T07:59:00Z", "online", "offline", "Amazon Web Services"),
        ("2021-01-17T00:00:00Z", "offline", "partial", "DDoS-Guard"),
    ]
    net = loaded.get("/changes", params=window | {"net": "true"}).json()["subjects"]
    assert [s["subject"] for s in net] == ["parler"]  # the accounts did not change in it


def test_reports_in_every_format_with_their_media_types_and_names(loaded):
    period = {"from": "2021-01-01", "to": "2021-02-01"}
    expected = {
        "json": "application/json",
        "csv": "application/zip",
        "md": "text/markdown",
        "html": "text/html",
        "parquet": "application/zip",
    }
    for fmt, media_type in expected.items():
        response = loaded.get("/reports", params=period | {"format": fmt})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(media_type)
        assert (
            "deplatforming-report-2021-01-01-2021-02-01" in response.headers["content-disposition"]
        )
    one = loaded.get(
        "/reports", params=period | {"format": "csv", "table": "outages", "subject": "parler"}
    )
    assert one.headers["content-type"].startswith("text/csv")
    assert {row.split(",")[0] for row in one.text.splitlines()[1:]} == {"parler"}
    document = loaded.get("/reports", params=period | {"format": "json"}).json()
    assert document["header"]["covers"] == [
        "parler",
        "facebook:DonaldTrump",
        "instagram:realdonaldtrump",
        "twitter:realDonaldTrump",
    ]
    schema = loaded.get("/reports/schema.json")
    assert schema.headers["content-type"].startswith("application/schema+json")
    assert set(schema.json()["properties"]["tables"]["required"]) == set(document["tables"])
    assert is_problem(loaded.get("/reports", params=period | {"format": "xls"}), 422)
    assert is_problem(
        loaded.get("/reports", params={"from": "2021-02-01", "to": "2021-01-01", "format": "json"}),
        422,
    )
    assert is_problem(
        loaded.get("/reports", params=period | {"format": "json", "subject": "nowhere"}), 404
    )
    page = loaded.get("/reports", params=period)
    assert page.headers["content-type"].startswith("text/html")
    assert 'data-format="parquet"' in page.text and "<iframe" in page.text
    assert "<form" in loaded.get("/reports").text


def test_large_answers_are_compressed_and_listings_paged_by_the_database(loaded):
    everyone = loaded.get(
        "/status", params={"as_of": "2021-01-12"}, headers={"Accept-Encoding": "gzip"}
    )
    assert everyone.headers["content-encoding"] == "gzip" and len(everyone.json()) == 4
    pages = [
        loaded.get("/accounts", params={"as_of": "2021-01-12", "limit": 1, "offset": n}).json()
        for n in range(4)
    ]
    assert [p["total"] for p in pages] == [3, 3, 3, 3]
    assert [i["subject"] for p in pages for i in p["items"]] == [
        "facebook:DonaldTrump",
        "instagram:realdonaldtrump",
        "twitter:realDonaldTrump",
    ]


def test_times_at_the_edges_of_the_calendar_are_refused_not_crashed_on(loaded):
    for path, params in (
        ("/status", {"as_of": "0001-01-01T00:00:00+14:00"}),
        ("/subjects/parler/status", {"as_of": "9999-12-31T23:59:59-14:00"}),
    ):
        assert is_problem(loaded.get(path, params=params), 422)
    assert loaded.get("/", params={"as_of": "0001-01-02T00:00:00Z"}).status_code == 200


def test_a_retraction_checks_the_token_before_reading_its_size_limited_body(loaded):
    huge = b'{"reason": "' + b"x" * 100_000 + b'"}'
    headers = {"content-type": "application/json"}
    assert is_problem(loaded.post("/events/e/retract", content=huge, headers=headers), 401)
    assert is_problem(loaded.post("/events/e/retract", content=b"{nope", headers=headers), 401)
    too_big = loaded.post("/events/e/retract", content=huge, headers=headers | AUTH)
    assert is_problem(too_big, 413)
    unknown_field = loaded.post("/events/e/retract", json={"reason": "r", "x": 1}, headers=AUTH)
    assert "x" in is_problem(unknown_field, 422)["detail"]


def test_hostile_bodies_and_the_headers_every_answer_carries(loaded):
    nan = dict(EXAMPLE_EVENTS[9], position=float("nan"))
    body = json.dumps(nan).encode()  # json writes NaN, which JSON does not have
    refused = loaded.post(
        "/events", content=body, headers=AUTH | {"content-type": "application/json"}
    )
    assert "NaN" in is_problem(refused, 422)["detail"]
    digits = b'{"type": "DomainSuspended", "position": ' + b"9" * 5000 + b"}"
    assert is_problem(loaded.post("/events", content=digits, headers=AUTH), 422)
    wrong_method = loaded.put("/status")
    assert is_problem(wrong_method, 405) and "GET" in wrong_method.headers["allow"]
    page = loaded.get("/")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_the_openapi_schema_documents_problem_answers(client):
    schema = client.get("/openapi.json").json()
    assert "Problem" in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "4XX" in operation["responses"], (method, path)


def test_a_store_that_fails_or_writers_that_collide_get_a_503_to_retry(loaded, monkeypatch):
    from eventsourcing.persistence import OperationalError

    from service.application import ConcurrentWrites, Deplatforming
    from service.query_service import QueryService

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(QueryService, "status", down)
    answer = loaded.get("/subjects/parler/status")
    assert is_problem(answer, 503)["title"] == "Store unavailable"
    assert answer.headers["retry-after"] == "5" and "connection refused" not in answer.text

    def contended(*args, **kwargs):
        raise ConcurrentWrites("gave up after 5 conflicting attempts")

    monkeypatch.setattr(Deplatforming, "record", contended)
    write = loaded.post("/events", json=EXAMPLE_EVENTS[0], headers=AUTH)
    assert is_problem(write, 503)["title"] == "Write contention"


def test_a_read_names_the_known_at_that_pins_its_answer(loaded):
    asked = loaded.get("/subjects/parler/status", params={"as_of": "2021-01-12"})
    canonical = asked.headers["link"].split(";")[0].strip("<>")
    assert 'rel="canonical"' in asked.headers["link"] and "known_at=" in canonical
    assert loaded.post("/events", json=LATE_REHOSTING, headers=AUTH).status_code == 201
    assert (
        loaded.get("/subjects/parler/status", params={"as_of": "2021-01-12"}).json()["status"]
        != asked.json()["status"]
    )  # the record moved on
    pinned = loaded.get(canonical).json()
    assert pinned["status"] == asked.json()["status"] == "offline"  # the cited answer holds


def test_a_key_in_any_script_works_in_every_route_and_header(client):
    account = "twitter:\u0434\u043c\u0438\u0442\u0440\u0438\u0439"  # Cyrillic only
    event = {"type": "AccountBanned", "account": account, "occurred_at": "2021-01-08"}
    assert client.post("/events", json=event | {"provider": "T"}, headers=AUTH).status_code == 201
    for path in ("status", "history", "intervals", "feed.atom", "citation.json", ""):
        found = client.get(
            f"/subjects/{account}/{path}".rstrip("/"), params={"as_of": "2021-02-01"}
        )
        assert found.status_code == 200, (path, found.text)
    link = client.get(f"/subjects/{account}/status", params={"as_of": "2021-02-01"})
    assert quote(account, safe=":") in link.headers["link"]


def test_links_never_come_from_a_host_the_service_does_not_answer_for(database_url):
    guarded = create_app(database_url, allowed_hosts=["deplatforming.example"])
    with TestClient(guarded, base_url="http://deplatforming.example") as client:
        assert client.get("/livez").status_code == 200
        assert client.get("/livez", headers={"Host": "evil.example"}).status_code == 400
    public = create_app(database_url, api_token=TOKEN, public_url="https://deplatforming.example")
    with TestClient(public) as client:
        assert client.post("/events", json=EXAMPLE_EVENTS[0], headers=AUTH).status_code == 201
        found = client.get(
            "/status", params={"as_of": "2021-01-01"}, headers={"Host": "evil.example"}
        )
        assert found.status_code == 200
        assert found.headers["link"].startswith("<https://deplatforming.example/status?")
        page = client.get("/", headers={"Host": "evil.example"}).text
        assert "evil.example" not in page and "https://deplatforming.example/" in page


def test_a_position_the_store_has_not_reached_is_refused_at_once(loaded):
    head = loaded.get("/healthz").json()["head"]
    assert loaded.get("/status", headers={"X-Min-Position": str(head)}).status_code == 200
    started = time.monotonic()
    beyond = loaded.get("/status", headers={"X-Min-Position": str(2**63 - 1)})
    assert time.monotonic() - started < 1
    assert "beyond the store's last position" in is_problem(beyond, 422)["detail"]


def test_changes_come_in_pages_that_read_only_their_subjects(loaded):
    window = {"from": "2021-01-01", "to": "2021-02-01"}
    whole = loaded.get("/changes", params=window).json()
    assert whole["next"] is None and len(whole["subjects"]) > 2
    pages, after = [], 0
    while after is not None:
        page = loaded.get("/changes", params=window | {"limit": 2, "after": after}).json()
        assert len(page["subjects"]) <= 2
        pages += page["subjects"]
        after = page["next"]
    assert pages == whole["subjects"]


def test_a_report_too_large_to_make_over_the_web_is_refused_naming_its_size(loaded, monkeypatch):
    from adapters.http import reports

    monkeypatch.setattr(reports, "MAX_SUBJECTS", 2)
    window = {"from": "2021-01-01", "to": "2021-02-01", "format": "json"}
    refused = is_problem(loaded.get("/reports", params=window), 413)
    assert "more than 2" in refused["detail"] and "narrow the selection" in refused["detail"]
    assert loaded.get("/reports", params=window | {"subject": "parler"}).status_code == 200


def test_small_points_of_a_hostile_probe(loaded):
    wrong = loaded.put("/events", json={})
    assert is_problem(wrong, 405) and set(wrong.headers["allow"].split(", ")) >= {"GET", "POST"}
    slashed = dict(EXAMPLE_EVENTS[1], provider="AC/DC Hosting", event_id="slash")
    assert loaded.post("/events", json=slashed, headers=AUTH).status_code == 201
    page = loaded.get("/providers/AC/DC Hosting")
    assert page.status_code == 200 and "AC/DC Hosting" in page.text
    assert 'href="http://testserver/providers/AC/DC%20Hosting?' in page.text  # the permalink
    headers = loaded.get("/").headers
    assert headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self'" in loaded.get("/docs").headers["content-security-policy"]


def test_every_status_comes_a_page_at_a_time(loaded):
    everyone = loaded.get("/status", params={"as_of": "2021-01-12"})
    total = int(everyone.headers["x-total-count"])
    assert total == len(everyone.json()) > 2 and 'rel="next"' not in everyone.headers["link"]
    pages, url = [], "/status?as_of=2021-01-12&limit=2"
    while url:
        page = loaded.get(url)
        pages += page.json()
        following = [
            part.split(">")[0].lstrip(" <")
            for part in page.headers["link"].split(",")
            if 'rel="next"' in part
        ]
        url = following[0] if following else None
    assert [(s["subject"], s["status"]) for s in pages] == [
        (s["subject"], s["status"]) for s in everyone.json()
    ]


def test_changes_list_every_fact_of_the_period_not_only_those_that_changed_a_status(loaded):
    lost = {
        "type": "ServiceTerminated",
        "platform": "parler",
        "occurred_at": "2021-03-01",
        "provider": "Stripe",
        "service": "payments",
    }
    assert loaded.post("/events", json=lost, headers=AUTH).status_code == 201
    window = {"from": "2021-02-15", "to": "2021-03-15"}
    [parler] = loaded.get("/changes", params=window).json()["subjects"]
    assert parler["subject"] == "parler" and parler["changes"] == {}
    assert [e["type"] for e in parler["events"]] == ["ServiceTerminated"]
    assert loaded.get("/changes", params=window | {"net": "true"}).json()["subjects"] == []


def test_every_status_passed_through_as_stored_is_what_decoding_would_answer(loaded):
    from adapters.serialize import status_json

    head = loaded.get("/status", params={"as_of": "2021-01-12"}).json()
    pinned = {"as_of": "2021-01-12T00:00:00Z", "known_at": head[0]["known_at"]}
    passed = loaded.get("/status", params=pinned).json()
    services = loaded.app.state.services
    decoded = services.queries.statuses(
        parse_instant(pinned["as_of"]), parse_instant(pinned["known_at"])
    )
    assert passed == json.loads(json.dumps([status_json(s) for s in decoded]))
