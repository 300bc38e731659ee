"""Reports over a period, checked against durations worked out by hand from the spec's rules,
and every format parsed back by a real parser (every test on SQLite and on PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest

from adapters.composition import Services
from adapters.interchange import parse_instant, parse_lines
from adapters.reporting import render
from adapters.reporting.formats import json_schema
from adapters.reporting.tables import SECTIONS, tables
from domain.clock import now
from domain.values import SubjectKey
from service.reports import Report
from tests.helpers import at, example_facts, exported, fact

JANUARY = ("2021-01-01", "2021-02-01")


def csv_text(value) -> str:
    """A JSON cell as CSV writes it: a list (of sources) joined by spaces."""
    if value is None:
        return ""
    return " ".join(value) if isinstance(value, list) else str(value)


PARLER = SubjectKey.platform("parler")
H = 3600


@pytest.fixture
def example(tracker: Services) -> Services:
    assert tracker.record(example_facts()).committed
    return tracker


def outage(report: Report, subject: str, channel: str, start: str):
    [found] = [
        o
        for o in report.outages
        if o.subject.key == subject and o.channel == channel and o.start == at(start)
    ]
    return found


def seconds(report: Report, subject: str, channel: str) -> dict[str, float]:
    [found] = [c for c in report.channels if c.subject.key == subject and c.channel == channel]
    return {status.value: t.total_seconds() for status, t in found.by_status.items()} | {
        "before": found.before_existence.total_seconds()
    }


def test_the_parler_january_2021_report_matches_durations_worked_by_hand(example):
    report = example.report(*JANUARY)
    web = outage(report, "parler", "web", "2021-01-11T07:59:00Z")
    # Amazon cut it at 07:59 on the 11th; DDoS-Guard brought a partial service back on the 17th.
    assert (web.status, web.end, web.duration) == (
        "offline",
        at("2021-01-17T00:00:00Z"),
        timedelta(seconds=489_660),
    )
    assert (web.opened_by.type, web.opened_by.fields["provider"]) == (
        "HostingTerminated",
        "Amazon Web Services",
    )
    assert (web.closed_by.type, web.closed_by.fields["provider"]) == (
        "HostingRestored",
        "DDoS-Guard",
    )
    after = outage(report, "parler", "web", "2021-01-17T00:00:00Z")
    assert (after.status, after.ongoing, after.duration) == ("partial", True, timedelta(days=15))
    # web: online until the 11th 07:59, offline 489,660 s, partial the last 15 days
    assert seconds(report, "parler", "web") == {
        "online": 10 * 24 * H + 7 * H + 59 * 60,
        "offline": 489_660,
        "partial": 15 * 24 * H,
        "before": 0,
    }
    # ios: delisted by Apple on the 10th at 03:00 (partial), then offline, then partial
    assert seconds(report, "parler", "ios")["online"] == 9 * 24 * H + 3 * H
    # Twitter's 12-hour lock ran out; the ban from the 8th at 23:21 lasts to the period's end
    [lock, ban] = [o for o in report.accounts if o.subject.key == "twitter:realDonaldTrump"]
    assert (lock.status, lock.ran_out, lock.duration) == ("suspended", True, timedelta(hours=12))
    assert (ban.status, ban.ongoing, ban.duration) == (
        "banned",
        True,
        at("2021-02-01T00:00:00Z") - at("2021-01-08T23:21:00Z"),
    )
    amazon = [a for a in report.providers if a.provider == "Amazon Web Services"]
    assert [(a.record.type, a.outage) for a in amazon] == [
        ("HostingTerminated", timedelta(seconds=489_660))
    ]
    assert [e.record.occurred_at for e in report.events] == sorted(
        e.record.occurred_at for e in report.events
    )
    assert report.header.position == example.app.head()


def test_a_period_that_cuts_intervals_in_half(example):
    report = example.report("2021-01-14", "2021-01-15", subjects=["parler"])
    web = outage(report, "parler", "web", "2021-01-11T07:59:00Z")
    assert (web.end, web.duration) == (at("2021-01-17T00:00:00Z"), timedelta(days=1))
    assert seconds(report, "parler", "overall") == {
        "online": 0,
        "partial": 0,
        "offline": 24 * H,
        "before": 0,
    }


def test_an_empty_period_before_the_subjects_existed(example):
    report = example.report("2017-01-01", "2017-02-01", subjects=["parler"])
    assert report.outages == [] and report.events == [] and report.providers == []
    [overall] = [c for c in report.channels if c.channel == "overall"]
    assert overall.before_existence == timedelta(days=31) and overall.share_available is None
    nobody = example.report("2017-01-01", "2017-02-01")
    assert nobody.subjects == [] and nobody.channels == []


def test_known_at_before_a_late_fact_and_before_a_retraction(example):
    before = now()
    restored = next(r for r in exported(example) if r["type"] == "HostingRestored")
    example.record([fact("EventRetracted", retracts=restored["event_id"], reason="misdated")])
    example.record(  # learnt late: the domain was suspended on the 20th
        [fact("DomainSuspended", "parler", occurred_at="2021-01-20", provider="Epik")]
    )
    then = example.report(*JANUARY, subjects=["parler"], known_at=before)
    assert outage(then, "parler", "web", "2021-01-11T07:59:00Z").closed_by.type == "HostingRestored"
    assert [e.record.type for e in then.events].count("DomainSuspended") == 0
    later = example.report(*JANUARY, subjects=["parler"])
    web = outage(later, "parler", "web", "2021-01-11T07:59:00Z")
    assert web.ongoing and web.duration == at("2021-02-01T00:00:00Z") - at("2021-01-11T07:59:00Z")
    assert "DomainSuspended" in [e.record.type for e in later.events]
    assert "HostingRestored" not in [e.record.type for e in later.events]  # retracted


def test_services_lost_and_regained(tracker):
    tracker.record(
        [
            fact("PlatformRegistered", "forum", name="Forum", occurred_at="2019-01-01"),
            fact(
                "ServiceTerminated",
                "forum",
                occurred_at="2019-08-05",
                provider="Cloudflare",
                service="ddos_protection",
            ),
            fact(
                "ServiceTerminated",
                "forum",
                occurred_at="2019-08-10",
                provider="PayCo",
                service="payments",
            ),
            fact(
                "ServiceRestored",
                "forum",
                occurred_at="2019-08-12",
                provider="cloudflare",
                service="ddos_protection",
            ),
        ]
    )
    report = tracker.report("2019-08-01", "2019-09-01")
    spans = {(s.provider, s.service): s for s in report.services}
    assert spans["Cloudflare", "ddos_protection"].duration == timedelta(days=7)
    assert spans["Cloudflare", "ddos_protection"].regained_by.fields["provider"] == "cloudflare"
    assert spans["PayCo", "payments"].regained_at is None
    assert spans["PayCo", "payments"].duration == timedelta(days=22)
    svg = render(report, "html").content.decode()
    assert svg.count('class="service-lost"') == 2


def eightchan(tracker: Services) -> None:
    """Behind BitMitigate for hours after Cloudflare dropped it, then offline for months."""
    assert tracker.record(
        [
            fact(
                "PlatformRegistered",
                "8chan",
                name="8chan",
                occurred_at="2013-10-01",
                hosting_provider="Cloudflare",
            ),
            fact(
                "HostingTerminated",
                "8chan",
                occurred_at="2019-08-05T04:00:00Z",
                provider="Cloudflare",
            ),
            fact(
                "HostingRestored",
                "8chan",
                occurred_at="2019-08-05T10:00:00Z",
                provider="BitMitigate",
            ),
            fact(
                "HostingTerminated",
                "8chan",
                occurred_at="2019-08-05T16:00:00Z",
                provider="BitMitigate",
            ),
            fact("HostingRestored", "8chan", occurred_at="2019-11-02", provider="VanwaTech"),
        ]
    ).committed


def test_changes_list_every_change_inside_the_period(tracker):
    eightchan(tracker)
    start, end = at("2019-08-05T13:00:00Z"), at("2019-11-30T00:00:00Z")
    [change] = tracker.queries.changes(start, end).subjects
    assert change.subject.key == "8chan"
    web = [
        (t.at, t.before, t.after, t.event.fields["provider"])
        for t in change.transitions
        if t.channel == "web"
    ]
    assert web == [
        (at("2019-08-05T16:00:00Z"), "online", "offline", "BitMitigate"),
        (at("2019-11-02T00:00:00Z"), "offline", "online", "VanwaTech"),
    ]
    assert change.channels["web"] == ("online", "online")
    assert tracker.queries.changes(start, end, net=True).subjects == []


def documents(report: Report) -> dict:
    return json.loads(render(report, "json").content)


def test_every_format_parses_back_to_the_json(example):
    report = example.report(*JANUARY)
    document = documents(report)
    jsonschema.validate(document, json_schema())
    tables = document["tables"]
    assert set(tables) == set(SECTIONS)

    with zipfile.ZipFile(io.BytesIO(render(report, "csv").content)) as archive:
        assert json.loads(archive.read("header.json")) == document["header"]
        for name, rows in tables.items():
            parsed = list(csv.DictReader(io.StringIO(archive.read(f"{name}.csv").decode())))
            as_text = [{k: csv_text(v) for k, v in row.items()} for row in rows]
            assert parsed == as_text, name
    one = render(report, "csv", "outages")
    assert one.media_type == "text/csv" and one.filename.endswith("-outages.csv")

    with zipfile.ZipFile(io.BytesIO(render(report, "parquet").content)) as archive:
        for name, rows in tables.items():
            table = pq.read_table(io.BytesIO(archive.read(f"{name}.parquet")))
            assert table.num_rows == len(rows), name
    outages = pq.read_table(io.BytesIO(render(report, "parquet", "outages").content))
    assert outages.schema.field("start").type == pa.timestamp("us", tz="UTC")
    assert outages.schema.field("time_in_period_seconds").type == pa.float64()
    assert outages.schema.field("opened_by_sources").type == pa.list_(pa.string())
    first = outages.to_pylist()[0]
    assert first["time_in_period_seconds"] == tables["outages"][0]["time_in_period_seconds"]
    assert first["start"].isoformat().replace("+00:00", "Z") == tables["outages"][0]["start"]
    assert first["opened_by_sources"] == tables["outages"][0]["opened_by_sources"]

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows, self.svgs, self.external = 0, 0, []

        def handle_starttag(self, tag, attrs):
            self.rows += tag == "tr"
            self.svgs += tag == "svg"
            self.external += [
                v for k, v in attrs if k in ("src", "href") and tag in ("link", "script", "img")
            ]

    page = Cells()
    page.feed(render(report, "html").content.decode())
    header_rows = sum(1 for rows in tables.values() if rows)
    assert page.rows == sum(len(rows) for rows in tables.values()) + header_rows
    assert page.svgs == len(document["header"]["covers"]) and page.external == []

    markdown = render(report, "md").content.decode()
    assert "489660" not in markdown and "5 d 16 h 1 min" in markdown
    body_rows = [
        line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line
    ]
    assert len(body_rows) == sum(len(rows) for rows in tables.values()) + header_rows


def test_a_report_of_one_kind_or_of_the_subjects_a_provider_acted_on(example):
    accounts = example.report(*JANUARY, kind="account")
    assert {key.kind for key in accounts.subjects} == {"account"} and len(accounts.subjects) == 3
    amazon = example.report(*JANUARY, provider="amazon web services")  # matched as providers are
    assert [key.key for key in amazon.subjects] == ["parler"]
    assert {a.provider for a in amazon.providers} == {"Amazon Web Services"}
    assert example.report("2022-01-01", "2022-02-01", provider="Amazon Web Services").subjects == []


def test_a_period_must_end_after_it_starts(example):
    with pytest.raises(ValueError, match="must end after it starts"):
        example.report("2021-02-01", "2021-02-01")


def report_of(tracker: Services, start: str, end: str) -> Report:
    return tracker.queries.report(parse_instant(start), parse_instant(end), version="test")


def bound(report: Report) -> dict[tuple[str, str, str, str | None], float]:
    """The accountability table: (provider, subject, channel, region) -> seconds."""
    return {
        (a.provider, a.subject.key, a.channel, a.region): a.time.total_seconds()
        for a in report.accountability
    }


def test_accountability_credits_each_binding_measure_and_no_mitigating_restoration(tracker):
    """Gab in 2018: its host and its registrar both kept it offline (each gets the full
    time); Parler in 2021: the front that served a notice page is not a cause."""
    gab = [
        fact(
            "PlatformRegistered",
            "gab",
            name="Gab",
            occurred_at="2016-08-15",
            hosting_provider="Joyent",
            registrar="GoDaddy",
        ),
        fact("HostingTerminated", "gab", occurred_at="2018-10-29", provider="Joyent"),
        fact("DomainSuspended", "gab", occurred_at="2018-10-29", provider="GoDaddy"),
        fact("DomainRestored", "gab", occurred_at="2018-11-03", provider="GoDaddy"),
        fact("HostingRestored", "gab", occurred_at="2018-11-04", provider="Epik"),
    ]
    assert tracker.record(gab).committed
    autumn = tracker.queries.report(
        parse_instant("2018-10-01"), parse_instant("2018-12-01"), version="test"
    )
    assert bound(autumn) == {
        ("Joyent", "gab", "web", None): 6 * 24 * H,
        ("GoDaddy", "gab", "web", None): 5 * 24 * H,
    }
    assert tracker.record(example_facts()).committed
    january = report_of(tracker, *JANUARY)
    providers = {provider for provider, subject, _, _ in bound(january) if subject == "parler"}
    assert "DDoS-Guard" not in providers and "Amazon Web Services" in providers


def test_accountability_in_a_country(tracker):
    regional = Path(__file__).resolve().parents[2] / "examples" / "regional-2024-2025.jsonl"
    facts = [p.fact for p in parse_lines(regional.read_text().splitlines()) if p.fact]
    assert tracker.record(facts).committed
    year = tracker.queries.report(
        parse_instant("2024-01-01"), parse_instant("2025-01-01"), version="test"
    )
    assert {k: v for k, v in bound(year).items() if k[1] == "x"} == {
        ("Anatel", "x", channel, "BR"): 3_402_000 for channel in ("web", "ios", "android")
    }
    [table] = [t for name, t in tables(year).items() if name == "accountability"]
    assert ("Anatel", "x", "platform", "web", "BR", 3_402_000, 1) in [r[:7] for r in table.rows]


HOSTILE = {
    "provider": '=HYPERLINK("http://x.example","c")',
    "reason": "@SUM(1+1)\r<script>alert(1)</script> [click](javascript:alert(1)) | -2+3\r\nline",
}


def test_hostile_text_is_inert_in_csv_and_markdown_and_read_back_by_every_tool(tracker, tmp_path):
    import duckdb

    registered = fact("PlatformRegistered", "p", name="P", occurred_at="2021-01-01")
    cut = fact("HostingTerminated", "p", occurred_at="2021-01-05", **HOSTILE)
    assert tracker.record([registered, cut]).committed
    report = tracker.report(*JANUARY)
    text = render(report, "csv", "events").content.decode()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    [hostile] = [row for row in rows if row["type"] == "HostingTerminated"]
    for name, value in HOSTILE.items():  # whole, and no longer a formula
        assert hostile[name] == "'" + value
    path = tmp_path / "events.csv"
    path.write_text(text, newline="")
    arrow = pa.csv.read_csv(path)
    assert (
        arrow.num_rows == len(rows) and arrow.column("reason")[1].as_py() == "'" + HOSTILE["reason"]
    )
    duck = duckdb.sql(f"SELECT provider, reason FROM read_csv('{path}', all_varchar = true)")
    assert duck.fetchall()[1] == ("'" + HOSTILE["provider"], "'" + HOSTILE["reason"])
    markdown = render(report, "md", None).content.decode()
    assert "<script>" not in markdown and not re.search(r"(?<!\\)\]\(javascript:", markdown)
    assert "\\<script\\>alert(1)\\</script\\>" in markdown
