"""The spec's regional worked example, through the query service, on both stores: answers in
a country or worldwide, with the measures in force; and a retracted fact recorded again."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from adapters.interchange import parse_instant, parse_lines
from domain.values import SubjectKey
from tests.helpers import AUTH, fact

REGIONAL = Path(__file__).resolve().parents[2] / "examples" / "regional-2024-2025.jsonl"
X, TIKTOK, RT = "x", "tiktok", "youtube:RussiaToday"
EVERY = ["web", "ios", "android"]
# The spec's table: as_of, subject, region (None: worldwide), status, measures in force
# ({(type, provider): channels}), the countries of their own (worldwide answers only).
TABLE = [
    ("2024-09-01T00:00:00Z", X, None, "online", {}, ["BR"]),
    ("2024-09-01T00:00:00Z", X, "BR", "offline", {("AccessBlocked", "Anatel"): EVERY}, []),
    ("2024-10-10T00:00:00Z", X, "BR", "online", {}, []),
    ("2025-01-19T06:00:00Z", TIKTOK, None, "online", {}, ["US"]),
    ("2025-01-19T06:00:00Z", TIKTOK, "US", "offline", {("PlatformShutDown", "TikTok"): EVERY}, []),
    (
        "2025-01-20T00:00:00Z",
        TIKTOK,
        "US",
        "partial",
        {
            ("AppStoreRemoved", "Apple App Store"): ["ios"],
            ("AppStoreRemoved", "Google Play"): ["android"],
        },
        [],
    ),
    ("2025-01-20T00:00:00Z", TIKTOK, "FR", "online", {}, []),
    ("2025-02-14T00:00:00Z", TIKTOK, None, "online", {}, []),
    ("2022-03-05T00:00:00Z", RT, "FR", "withheld", {("AccountWithheld", "YouTube"): []}, []),
    ("2022-03-05T00:00:00Z", RT, "US", "active", {}, []),
    ("2022-03-12T00:00:00Z", RT, "FR", "suspended", {("AccountSuspended", "YouTube"): []}, []),
]


@pytest.fixture
def regional(tracker):
    facts = [p.fact for p in parse_lines(REGIONAL.read_text().splitlines()) if p.fact]
    assert tracker.record(facts).committed
    return tracker


@pytest.mark.parametrize(("as_of", "subject", "region", "status", "measures", "own"), TABLE)
def test_the_regional_worked_example(regional, as_of, subject, region, status, measures, own):
    found = regional.queries.status(SubjectKey.parse(subject), parse_instant(as_of), None, region)
    assert found.status == status
    assert {
        (m.event.type, m.event.provider): [c.value for c in m.channels]
        for m in found.document.measures
    } == measures
    assert sorted(found.document.regions) == own


def test_every_subject_in_a_country_is_one_listing(regional):
    at = parse_instant("2024-09-01T00:00:00Z")
    there = regional.queries.statuses(at, None, None, "BR")
    assert {s.subject.key: s.status.value for s in there} == {
        "x": "offline",
        "tiktok": "online",
        "youtube:RussiaToday": "suspended",
    }
    assert [s.subject.key for s in regional.queries.statuses(at, None, "offline", "BR")] == ["x"]


def test_a_retracted_fact_recorded_again_is_refused_naming_the_retraction(tracker):
    blocked = fact("AccessBlocked", "x", occurred_at="2024-08-31", regions=["BR"], event_id="b")
    register = fact("PlatformRegistered", "x", name="X", occurred_at="2006-07-15")
    assert tracker.record([register, blocked]).committed
    retraction = fact("EventRetracted", retracts="b", reason="wrong day", event_id="r")
    assert tracker.record([retraction]).committed
    again = tracker.record([blocked])
    assert [(r.event_id, r.conflicts_with) for r in again.rejected] == [("b", "r")]
    assert "retracted by event r" in again.rejected[0].error


def test_the_api_answers_in_a_country_and_refuses_a_code_that_is_none(client):
    lines = [line for line in REGIONAL.read_text().splitlines() if line.startswith("{")]
    posted = client.post("/events", json=[json.loads(line) for line in lines], headers=AUTH)
    assert posted.status_code == 201, posted.text
    worldwide = client.get("/subjects/x/status", params={"as_of": "2024-09-01"}).json()
    assert worldwide["status"] == "online" and list(worldwide["regions"]) == ["BR"]
    brazil = client.get("/subjects/x/status", params={"as_of": "2024-09-01", "region": "br"})
    assert brazil.json()["status"] == "offline"
    assert [m["provider"] for m in brazil.json()["measures"]] == ["Anatel"]
    every = client.get("/status", params={"as_of": "2024-09-01", "region": "BR"}).json()
    assert {s["subject"]: s["status"] for s in every}["x"] == "offline"
    refused = client.get("/subjects/x/status", params={"region": "EU"})
    assert refused.status_code == 422 and "EU" in refused.json()["detail"]


def test_providers_are_ranked_by_the_subjects_they_cut_off(regional):
    year = regional.queries.providers(parse_instant("2022-01-01"), parse_instant("2026-01-01"))
    names = [standing.provider for standing in year]
    assert set(names) == {"Anatel", "TikTok", "Apple App Store", "Google Play", "YouTube"}
    [anatel] = [s for s in year if s.provider == "Anatel"]
    assert anatel.subjects == 1 and anatel.time.total_seconds() == 3_402_000
    assert {(row.channel, row.region) for row in anatel.bound} == {
        ("web", "BR"),
        ("ios", "BR"),
        ("android", "BR"),
    }


def test_a_country_page_and_the_countries_index(client):
    lines = [json.loads(line) for line in REGIONAL.read_text().splitlines() if line[:1] == "{"]
    assert client.post("/events", json=lines, headers=AUTH).status_code == 201
    index = client.get("/regions", params={"as_of": "2024-09-01"})
    assert (
        index.status_code == 200 and 'href="/regions/BR"' in index.text and "Brazil" in index.text
    )
    brazil = client.get("/regions/br", params={"as_of": "2024-09-01"})
    text = " ".join(brazil.text.split())
    assert brazil.status_code == 200 and "Brazil (BR)" in text
    assert "Anatel blocked access on 2024-08-31" in text and "here only" in text
    assert "tiktok" not in text  # available there
    assert client.get("/regions/EU").status_code == 404


def test_the_board_names_the_countries_where_a_subject_has_a_status_of_its_own(client):
    lines = [json.loads(line) for line in REGIONAL.read_text().splitlines() if line[:1] == "{"]
    assert client.post("/events", json=lines, headers=AUTH).status_code == 201
    board = " ".join(client.get("/", params={"as_of": "2024-09-01"}).text.split())
    assert 'offline in 1 country: <a href="/regions/BR">Brazil</a>' in board
    later = " ".join(client.get("/", params={"as_of": "2024-10-10"}).text.split())
    assert "/regions/BR" not in later


def runs(found, channel):
    return [
        (r.valid_from.date().isoformat(), r.status.value, r.event_id)
        for r in found
        if r.channel == channel
    ]


def test_a_countrys_runs_are_the_worldwide_ones_but_where_its_answer_is_its_own(regional):
    history = regional.queries.history(SubjectKey.parse(X))
    registered, blocked, restored = (e.record.event_id for e in history)
    in_brazil = regional.queries.intervals(SubjectKey.parse(X), None, "BR")
    expected = [
        ("2006-07-15", "online", registered),
        ("2024-08-31", "offline", blocked),
        ("2024-10-09", "online", restored),  # begun by the fact that ended Brazil's own answer
    ]
    assert runs(in_brazil, "web") == runs(in_brazil, "android") == expected
    assert runs(regional.queries.intervals(SubjectKey.parse(X)), "web") == [expected[0]]
    assert runs(regional.queries.intervals(SubjectKey.parse(X), None, "FR"), "web") == [expected[0]]
    in_us = regional.queries.intervals(SubjectKey.parse(TIKTOK), None, "US")
    assert [(day, status) for day, status, _ in runs(in_us, "ios")] == [
        ("2018-08-02", "online"),
        ("2025-01-19", "offline"),  # withdrawn, then delisted at 04:00 and relaunched at 17:00
        ("2025-01-19", "partial"),
        ("2025-02-13", "online"),
    ]


def test_a_countrys_history_holds_the_worldwide_facts_and_those_naming_it(regional):
    def types(region):
        return [e.record.type for e in regional.queries.history(SubjectKey.parse(X), region=region)]

    assert types("BR") == ["PlatformRegistered", "AccessBlocked", "AccessRestored"]
    assert types("FR") == ["PlatformRegistered"]


def test_a_page_of_a_country_filters_by_its_own_status(regional):
    at = parse_instant("2024-09-01T00:00:00Z")
    found, total = regional.queries.page(at, status="offline", limit=10, region="BR")
    assert ([s.subject.key for s in found], total) == (["x"], 1)
    assert found[0].document.regions == {}  # the answer there, naming no other country
    assert regional.queries.page(at, status="offline", limit=10)[1] == 0


def test_changes_carry_a_countrys_own_transitions_with_the_country(regional):
    start, end = parse_instant("2024-08-01"), parse_instant("2024-11-01")
    [x] = regional.queries.changes(start, end).subjects
    assert x.subject.key == X and x.channels == {}  # nothing changed worldwide
    assert {(t.region, t.channel, t.before, t.after) for t in x.transitions} == {
        ("BR", channel, before, after)
        for channel in ("overall", *EVERY)
        for before, after in (("online", "offline"), ("offline", "online"))
    }
    assert {t.event.type for t in x.transitions} == {"AccessBlocked", "AccessRestored"}
    assert x.regions["BR"]["web"] == ("online", "online")
    [brazil] = regional.queries.changes(start, end, region="BR").subjects
    assert brazil.channels["web"] == ("online", "online") and brazil.regions == {}
    assert regional.queries.changes(start, end, region="FR").subjects == []
    assert regional.queries.changes(start, end, net=True).subjects == []


def post_regional(client):
    lines = [json.loads(line) for line in REGIONAL.read_text().splitlines() if line[:1] == "{"]
    assert client.post("/events", json=lines, headers=AUTH).status_code == 201


def test_a_subject_page_has_a_lane_for_each_country_of_its_own_and_says_why(client):
    post_regional(client)
    page = client.get("/subjects/x", params={"as_of": "2024-09-01"})
    text = " ".join(page.text.split())
    assert 'data-channel="in BR"' in text  # Brazil's own lane on the timeline
    assert "Anatel blocked access on 2024-08-31" in text
    brazil = " ".join(client.get("/subjects/x?as_of=2024-09-01&region=BR").text.split())
    assert "X (formerly Twitter) in Brazil" in brazil
    assert "Offline: Anatel blocked access on 2024-08-31." in brazil
    assert 'data-channel="in BR"' not in brazil  # the lanes are Brazil's channels
    assert client.get("/subjects/x?region=XX").status_code == 422


def test_the_board_in_a_country_shows_the_answers_there(client):
    post_regional(client)
    board = " ".join(client.get("/?as_of=2024-09-01&region=br&status=offline").text.split())
    assert "/subjects/x" in board and "/subjects/tiktok" not in board
    assert client.get("/?region=EU").status_code == 422


def test_a_country_page_has_a_timeline_and_a_feed_of_the_facts_naming_it(client):
    post_regional(client)
    page = " ".join(client.get("/regions/US", params={"as_of": "2025-03-01"}).text.split())
    assert 'data-channel="tiktok"' in page and 'href="/regions/US/feed.atom"' in page
    feed = client.get("/regions/us/feed.atom")
    assert feed.status_code == 200
    titles = re.findall(r"<title>(.*?)</title>", feed.text)
    assert titles[0] == "deplatforming: United States"
    assert len(titles) == 1 + 6 and all("in United States" in t for t in titles[1:])
    assert "PlatformRegistered" not in feed.text  # worldwide facts name no country
    worldwide = client.get("/feed.atom").text
    assert "access blocked: x (Anatel) in Brazil" in worldwide


def test_the_providers_index_says_where_each_bound_subjects(client):
    post_regional(client)
    page = " ".join(client.get("/providers").text.split())
    assert '<a href="/regions/BR">Brazil</a>: web, ios, android' in page


def test_a_report_in_a_country(regional):
    made = regional.report("2024-01-01", "2025-01-01", subjects=[X], region="br")
    assert made.header.selection.region == "BR"
    [web] = [c for c in made.channels if c.channel == "web"]
    assert web.by_status["offline"].total_seconds() == 3_402_000
    assert {(a.provider, a.region, a.time.total_seconds()) for a in made.accountability} == {
        ("Anatel", "BR", 3_402_000)
    }
    worldwide = regional.report("2024-01-01", "2025-01-01", subjects=[X])
    assert not [o for o in worldwide.outages if o.channel == "web"]


def test_providers_in_a_country_are_ranked_by_what_their_measures_did_there(client):
    post_regional(client)
    brazil = " ".join(client.get("/providers", params={"region": "br"}).text.split())
    assert "Providers in Brazil" in brazil and "/providers/Anatel" in brazil
    assert "/providers/TikTok" not in brazil
    assert "/providers/Anatel" not in client.get("/providers?region=US").text
    anatel = client.get("/providers/Anatel", params={"region": "FR"})
    assert anatel.status_code == 404 and "recorded in France" in anatel.text
    assert "Brazil" in client.get("/providers/Anatel", params={"region": "BR"}).text
