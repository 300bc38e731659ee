"""The pages through the real ASGI app (on SQLite and PostgreSQL): what a reader sees."""

from __future__ import annotations

import re
from html import unescape
from xml.etree import ElementTree

import pytest

from tests.helpers import AUTH, EXAMPLE_EVENTS, LATE_REHOSTING, WORKED_EXAMPLE


def rows(html: str) -> dict[tuple[str, str], str]:
    """(subject, channel) -> the status shown on the board."""
    row = r'<tr data-subject="([^"]+)" data-channel="([^"]+)">'
    found = re.findall(row + r'.*?<span class="status \w+">(\w+)</span>', html, re.S)
    return {(subject, channel): status for subject, channel, status in found}


def test_the_board_shows_every_subject_per_channel_at_a_chosen_moment(loaded):
    page = loaded.get("/", params={"as_of": "2021-01-10T12:00"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    board = rows(page.text)
    assert board[("parler", "overall")] == "partial"
    assert (board[("parler", "web")], board[("parler", "ios")], board[("parler", "android")]) == (
        "online",
        "partial",
        "partial",
    )
    assert board[("twitter:realDonaldTrump", "overall")] == "banned"
    assert page.text.count('role="img"') == len(board)  # a labelled 90-day bar per row
    assert 'label for="as_of"' in page.text and "<h1>" in page.text


def test_the_board_as_known_before_anything_was_recorded_is_empty(loaded):
    page = loaded.get("/", params={"as_of": "2021-01-12", "known_at": "2020-01-01T00:00:00Z"})
    assert rows(page.text) == {} and "None at that moment." in page.text


def test_a_subject_page_draws_its_channels_intervals_and_events(loaded):
    page = loaded.get("/subjects/parler", params={"as_of": "2021-01-12T00:00"})
    assert page.status_code == 200
    intervals = re.findall(r'<rect class="interval (\w+)" data-channel="(\w+)"', page.text)
    assert ("offline", "web") in intervals and ("online", "web") in intervals
    # Over its whole life up to as_of: the registration, the delistings and the cut.
    assert page.text.count('<path class="event"') == 4
    assert "Amazon Web Services" in page.text and "hosting terminated" in page.text
    assert loaded.get("/subjects/nowhere").status_code == 404


def test_the_atom_feed_lists_recorded_events(loaded):
    feed = loaded.get("/feed.atom")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    atom = "{http://www.w3.org/2005/Atom}"
    entries = ElementTree.fromstring(feed.text).findall(f"{atom}entry")
    assert len(entries) == 12
    assert any("hosting terminated: parler" in e.find(f"{atom}title").text for e in entries)


def test_hostile_text_is_shown_as_text_in_pages_and_the_feed(loaded):
    hostile = {
        "type": "DomainSuspended",
        "platform": "parler",
        "occurred_at": "2021-02-01",
        "provider": "<b>Evil & Co</b>",
        "reason": "<script>alert(1)</script>",
        "sources": ['https://example.org/?a=1&b="><x'],
    }
    assert loaded.post("/events", json=hostile, headers=AUTH).status_code == 201
    page = loaded.get("/subjects/parler").text
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
    assert '"><x' not in page
    feed = loaded.get("/feed.atom").text
    titles = [
        e.find("{http://www.w3.org/2005/Atom}title").text
        for e in ElementTree.fromstring(feed)
        if e.tag.endswith("entry")
    ]
    assert "domain suspended: parler (<b>Evil & Co</b>), 2021-02-01" in titles


@pytest.mark.parametrize(("as_of", "overall", "channels", "twitter", "facebook"), WORKED_EXAMPLE)
def test_board_and_timeline_show_the_worked_example(
    loaded, as_of, overall, channels, twitter, facebook
):
    board = rows(loaded.get("/", params={"as_of": as_of}).text)
    shown = tuple(board[("parler", c)] for c in ("overall", "web", "ios", "android"))
    assert shown == (overall, *channels)
    assert board.get(("twitter:realDonaldTrump", "overall"), "active") == twitter  # no event yet
    assert board.get(("facebook:DonaldTrump", "overall"), "active") == facebook
    page = loaded.get("/subjects/parler", params={"as_of": as_of}).text
    assert f'<span class="status {overall}">{overall}</span></h1>' in page


def test_the_board_is_paged(client):
    accounts = [
        {
            "type": "AccountBanned",
            "account": f"net:user{n}",
            "occurred_at": "2021-01-01",
            "provider": "Net",
        }
        for n in range(60)
    ]
    assert client.post("/events", json=accounts, headers=AUTH).status_code == 201
    first = client.get("/", params={"as_of": "2021-02-01"})
    assert len({s for s, _ in rows(first.text)}) == 50 and "page 1 of 2" in first.text
    following = (
        re.search(r'<a href="([^"]+)" rel="next">', first.text).group(1).replace("&amp;", "&")
    )
    second = client.get(following)
    assert len({s for s, _ in rows(second.text)}) == 10 and "page 2 of 2" in second.text
    assert {s for s, _ in rows(first.text)}.isdisjoint({s for s, _ in rows(second.text)})


def test_pages_and_the_feed_answer_head_requests(loaded):
    for path in ("/", "/subjects/parler", "/feed.atom", "/reports"):
        answer = loaded.head(path)
        assert answer.status_code == 200 and answer.content == b"", path


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/subjects/8kun", 404, "8kun"),
        ("/?as_of=12/01/2021", 422, "as_of"),
        ("/reports?from=junk", 422, "from"),
        ("/no/such/page", 404, "Not found"),
    ],
)
def test_errors_on_pages_are_pages_and_the_api_keeps_problem_details(loaded, path, status, says):
    page = loaded.get(path, headers={"Accept": "text/html,*/*"})
    assert page.status_code == status and page.headers["content-type"].startswith("text/html")
    assert "<h1>" in page.text and says in page.text and '"type"' not in page.text
    api = loaded.get("/subjects/8kun/status", headers={"Accept": "text/html"})
    assert api.headers["content-type"] == "application/problem+json"


def test_the_api_docs_load_their_assets_from_this_server(loaded):
    docs = loaded.get("/docs")
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and all(a.startswith("/") for a in assets), assets  # no CDN
    assert all(loaded.get(a).status_code == 200 for a in assets)


def test_a_provider_page_says_what_it_did_to_whom_and_the_outage_it_opened(loaded):
    page = loaded.get("/providers/amazon web services")  # providers match whatever their case
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
    assert "hosting terminated" in text and "parler" in text
    # AWS cut Parler off at 2021-01-11T07:59Z; it was offline until DDoS-Guard on the 17th.
    assert "5 d 16 h 1 min" in text
    # Its termination kept Parler offline, then partial behind DDoS-Guard's notice page.
    assert "Time its measures bound" in text and "(ongoing)" in text
    front = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", loaded.get("/providers/DDoS-Guard").text))
    assert "None of its actions is a measure in force" in front
    subject = loaded.get("/subjects/parler").text
    assert 'href="/providers/Amazon%20Web%20Services"' in subject
    unknown = loaded.get("/providers/nobody")
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("text/html")


def test_the_providers_index_ranks_those_whose_measures_cut_subjects_off(loaded):
    page = loaded.get("/providers", params={"as_of": "2021-02-01"})
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
    assert "Amazon Web Services" in text and "Twitter" in text
    assert "DDoS-Guard" not in text  # a partial restoration is no measure
    assert 'href="/providers/Amazon%20Web%20Services"' in page.text


def test_the_board_says_since_when_and_filters_by_status_kind_provider_and_search(loaded):
    def board(query: str) -> dict[str, str]:
        page = loaded.get(f"/?as_of=2021-01-12&{query}")
        assert page.status_code == 200, page.text
        cells = re.findall(
            r'data-subject="([^"]+)" data-channel="overall">.*?class="since">(.*?)</td>',
            page.text,
            re.S,
        )
        return {
            key: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", since)).strip() for key, since in cells
        }

    everyone = board("")
    assert everyone["parler"] == "2021-01-11 hosting terminated by Amazon Web Services"
    assert everyone["twitter:realDonaldTrump"] == "2021-01-08 account banned by Twitter"
    assert set(board("status=offline")) == {"parler"}
    assert set(board("kind=account")) == set(everyone) - {"parler"}
    assert set(board("q=TRUMP")) == set(everyone) - {"parler"}
    assert set(board("provider=amazon+web+services")) == {"parler"}
    kept = loaded.get("/?as_of=2021-01-12&status=offline").text
    assert 'name="status" value="offline"' in kept  # the moment's form keeps the filters
    assert loaded.get("/?status=sideways").status_code == 422


def test_the_board_bars_cover_a_chosen_window_with_its_dates(loaded):
    page = loaded.get("/?as_of=2021-03-01&from=2021-01-01&to=2021-02-01").text
    assert "Daily, 2021-01-01 to 2021-02-01" in page and "(31 days)" in page
    bars = re.search(r'data-subject="parler" data-channel="web">.*?<svg(.*?)</svg>', page, re.S)
    assert bars and bars.group(1).count("<rect") == 31
    assert "did not exist" in page  # the legend names every colour
    assert loaded.get("/?from=2021-02-01&to=2021-01-01").status_code == 422


def test_listings_filter_by_search_and_provider(loaded):
    accounts = loaded.get("/accounts", params={"q": "trump", "as_of": "2021-01-12"}).json()
    assert accounts["total"] == 3
    platforms = loaded.get("/platforms", params={"provider": "ddos-guard"}).json()
    assert [p["subject"] for p in platforms["items"]] == ["parler"]
    assert loaded.get("/platforms", params={"provider": "nobody"}).json()["total"] == 0


def test_the_example_cites_its_sources_named_by_their_site(loaded):
    page = loaded.get("/subjects/parler").text
    links = re.findall(r'<a href="(https://[^"]+)" rel="noopener">([^<]+)</a>', page)
    assert links and all(name in url and "source" not in name for url, name in links)
    assert (
        "https://www.rferl.org/a/parler-network-russian-support-far-right/31051724.html",
        "rferl.org",
    ) in links


def test_each_subject_has_an_atom_feed_with_authors_and_sources(loaded):
    atom = "{http://www.w3.org/2005/Atom}"
    feed = loaded.get("/subjects/parler/feed.atom")
    assert feed.status_code == 200 and feed.headers["content-type"] == "application/atom+xml"
    root = ElementTree.fromstring(feed.text)
    assert root.find(f"{atom}author/{atom}name").text  # RFC 4287: a feed names an author
    entries = root.findall(f"{atom}entry")
    assert entries and all("parler" in e.find(f"{atom}title").text for e in entries)
    assert all(e.find(f"{atom}author/{atom}name").text for e in entries)
    related = [
        link.get("href") for e in entries for link in e.findall(f"{atom}link[@rel='related']")
    ]
    assert (
        "https://www.rferl.org/a/parler-network-russian-support-far-right/31051724.html" in related
    )
    assert 'href="/subjects/parler/feed.atom"' in loaded.get("/subjects/parler").text
    assert loaded.head("/subjects/parler/feed.atom").status_code == 200


def test_a_permalink_pins_the_view_and_a_citation_names_it(loaded):
    page = loaded.get("/subjects/parler?as_of=2021-01-12").text
    permalink = unescape(re.search(r'<a href="([^"]+)" rel="bookmark">Permalink</a>', page)[1])
    pinned = dict(p.split("=", 1) for p in permalink.split("?", 1)[1].split("&"))
    assert pinned["as_of"].startswith("2021-01-12T00%3A00%3A00") and pinned["known_at"]
    before = loaded.get(permalink)
    text = re.search(r'<blockquote class="citation">(.*?)</blockquote>', page, re.S).group(1)
    assert "Parler (parler): status as of 2021-01-12T00:00:00Z" in text and "dataset" in text
    # Something recorded later does not change what the permalink shows.
    assert loaded.post("/events", json=LATE_REHOSTING, headers=AUTH).status_code == 201
    now_answer = loaded.get("/subjects/parler/status", params={"as_of": "2021-01-12"}).json()
    assert now_answer["status"] == "partial"  # the record changed: rehosted, storeless
    after = loaded.get(permalink)
    offline = 'class="status offline">offline'
    assert offline in before.text and offline in after.text
    csl_url = unescape(re.search(r'<a href="([^"]+)">CSL-JSON</a>', page)[1])
    csl = loaded.get(csl_url)
    assert csl.headers["content-type"] == "application/vnd.citationstyles.csl+json"
    [item] = csl.json()
    assert item["type"] == "dataset" and item["URL"].split("?")[0].endswith("/subjects/parler")


def test_a_subject_timeline_spans_its_life_with_an_axis_lanes_and_readable_markers(client):
    events = [
        {
            "type": "PlatformRegistered",
            "platform": "kf",
            "name": "KF",
            "occurred_at": "2013-01-01",
            "hosting_provider": "H",
        },
        {
            "type": "ServiceTerminated",
            "platform": "kf",
            "occurred_at": "2022-09-03T12:00:00Z",
            "provider": "Cloudflare",
            "service": "ddos_protection",
        },
        {
            "type": "HostingTerminated",
            "platform": "kf",
            "occurred_at": "2022-09-05T10:00:00Z",
            "provider": "H",
        },
        {
            "type": "HostingRestored",
            "platform": "kf",
            "occurred_at": "2022-09-05T13:00:00Z",
            "provider": "Other",
            "scope": "full",
        },
    ]
    assert client.post("/events", json=events, headers=AUTH).status_code == 201
    page = client.get("/subjects/kf", params={"as_of": "2023-01-01"}).text
    svg = page[
        page.index('<svg class="timeline"') : page.index(
            "</svg>", page.index('<svg class="timeline"')
        )
    ]
    ticks = re.findall(r'font-size="10">(\d{4})</text>', svg)
    assert ticks and ticks == sorted(ticks) and "2014" in ticks  # years across its life
    offline = re.search(
        r'class="interval offline" data-channel="web" x="[\d.]+" y="\d+" width="([\d.]+)"', svg
    )
    assert offline and float(offline[1]) >= 3  # three hours in ten years, still visible
    assert 'data-service="ddos_protection"' in svg  # a lane for the service Cloudflare cut
    assert ">ddos protection: Cloudflare</text>" in svg  # named by who provided it
    # The two hosting events, hours apart, are drawn apart, and each leads to its details.
    tips = re.findall(
        r'<a href="#event-([^"]+)"><path class="event" data-event="[^"]+" d="M([\d.]+),([\d.]+)',
        svg,
    )
    assert len(tips) == 4 and len({(x, y) for _, x, y in tips}) == 4
    assert all(f'id="event-{anchor}"' in page for anchor, _, _ in tips)
    assert (
        'href="http://testserver/subjects/kf?as_of=2023-01-01&amp;from=2022-01-01&amp;to=2023-01-01"'
        in page
    )
    zoomed = client.get(
        "/subjects/kf", params={"as_of": "2023-01-01", "from": "2022-09-01", "to": "2022-10-01"}
    ).text
    assert re.search(r'font-size="10">2022-09-0\d</text>', zoomed)  # days when zoomed in


def test_the_board_bars_have_a_date_axis(loaded):
    months = loaded.get("/?as_of=2021-01-12").text
    shown = re.findall(r'<span style="left: [\d.]+%">(\d{4}-\d{2})</span>', months)
    assert list(dict.fromkeys(shown)) == [
        "2020-11",
        "2020-12",
        "2021-01",
    ]  # month starts in the 90 days up to 2021-01-12
    weeks = loaded.get("/?as_of=2021-03-01&from=2021-01-01&to=2021-02-01").text
    assert re.findall(r'<span style="left: [\d.]+%">(\d{2}-\d{2})</span>', weeks)[:2] == [
        "01-04",
        "01-11",
    ]  # Mondays, in a window of weeks


def test_text_xml_forbids_never_reaches_a_feed(client):
    """Refused at input; a store written before that rule may hold some: the feed leaves it out."""
    from dataclasses import replace

    from adapters.interchange import to_new_fact

    assert (
        client.post(
            "/events", json=dict(EXAMPLE_EVENTS[0], note="a\u0001b"), headers=AUTH
        ).status_code
        == 422
    )
    older = to_new_fact(dict(EXAMPLE_EVENTS[0], note="fine"))
    older = replace(older, fields=older.fields | {"note": "a\u0001\u000b\u001b[2Jb\ufffe"})
    assert client.app.state.services.record([older]).committed
    feed = client.get("/feed.atom")
    entries = ElementTree.fromstring(feed.content).findall("{http://www.w3.org/2005/Atom}entry")
    assert len(entries) == 1


def test_feed_entries_are_dated_when_the_record_learned_them_and_retractions_say_what(loaded):
    atom = "{http://www.w3.org/2005/Atom}"
    history = loaded.get("/subjects/parler/history").json()
    cut = next(e for e in history if e["type"] == "HostingTerminated")
    retracted = loaded.post(
        f"/events/{cut['event_id']}/retract", json={"reason": "test"}, headers=AUTH
    )
    assert retracted.status_code == 201
    feed = ElementTree.fromstring(loaded.get("/feed.atom").content)
    newest, *others = feed.findall(f"{atom}entry")
    assert newest.findtext(f"{atom}title") == (
        "retracted: hosting terminated of parler by Amazon Web Services on 2021-01-11"
    )
    recorded = {e["event_id"]: e["recorded_at"] for e in history}
    for entry in others:  # each dated by its recording, the valid time in its title
        event_id = entry.findtext(f"{atom}id").rsplit(":", 1)[1]
        published = entry.findtext(f"{atom}published")
        assert published == entry.findtext(f"{atom}updated") == recorded.get(event_id, published)
        occurred = re.search(r", (\d{4}-\d{2}-\d{2})$", entry.findtext(f"{atom}title"))
        assert occurred and not published.startswith(occurred.group(1))


def test_accounts_count_as_active_before_their_first_fact_on_the_board(loaded):
    board = loaded.get(
        "/", params={"as_of": "2021-01-12", "from": "2020-10-14", "to": "2021-01-12"}
    )
    for account in ("twitter:realDonaldTrump", "facebook:DonaldTrump"):
        row = re.search(
            rf'<tr data-subject="{account}" data-channel="overall">(.*?)</tr>', board.text, re.S
        )
        assert row, account
        share = float(re.findall(r"<td class=\"share\"[^>]*>([\d.]+)%</td>", row.group(1))[-1])
        assert share > 90  # active until January 2021: the quarter before counts
        assert "did not exist" not in row.group(1)


def test_a_cited_view_says_what_the_record_learned_since_that_changes_it(loaded):
    cited = {"as_of": "2021-01-12T00:00:00Z", "known_at": loaded.get("/healthz").json()["head"]}
    pinned = loaded.get("/subjects/parler/status", params={"as_of": cited["as_of"]})
    cited["known_at"] = pinned.json()["known_at"]
    still = loaded.get("/subjects/parler/status", params=cited).json()
    assert still["revised_since"] == []
    assert "Since this was cited" not in loaded.get("/subjects/parler", params=cited).text
    history = loaded.get("/subjects/parler/history").json()
    cut = next(e for e in history if e["type"] == "HostingTerminated")
    assert (
        loaded.post(
            f"/events/{cut['event_id']}/retract", json={"reason": "wrong host"}, headers=AUTH
        ).status_code
        == 201
    )
    revised = loaded.get("/subjects/parler/status", params=cited).json()
    assert [e["event_id"] for e in revised["revised_since"]] == [cut["event_id"]]
    assert revised["status"] == still["status"]  # the cited answer itself stands as it was
    page = " ".join(loaded.get("/subjects/parler", params=cited).text.split())
    assert "Since this was cited, 1 fact changed it." in page and "since retracted" in page


def test_timeline_markers_are_labelled_where_there_is_room(loaded):
    whole = loaded.get("/subjects/parler", params={"as_of": "2021-01-18T12:00:00Z"}).text
    assert '<text class="marker-label"' in whole and ">platform registered</text>" in whole
    january = loaded.get(
        "/subjects/parler",
        params={"as_of": "2021-01-18T12:00:00Z", "from": "2021-01-08", "to": "2021-01-20"},
    ).text
    labels = re.findall(r'class="marker-label"[^>]*>([^<]+)</text>', january)
    assert "hosting terminated" in labels  # zoomed in, the January facts have room


def test_feed_readers_read_every_feed_well_formed(loaded):
    import feedparser

    for path in ("/feed.atom", "/subjects/parler/feed.atom", "/regions/BR/feed.atom"):
        feed = feedparser.parse(loaded.get(path).content)
        assert not feed.bozo, (path, feed.get("bozo_exception"))
    entries = feedparser.parse(loaded.get("/feed.atom").content).entries
    assert len(entries) == 12 and all(e.published == e.updated for e in entries)
