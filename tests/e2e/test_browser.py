"""The pages in headless Chromium, served by the real `deplatform demo` process.

Screenshots are saved under test-artifacts/ (kept by CI as artifacts)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import DEPLATFORM

CHROMIUM = Path(os.environ.get("DEPLATFORM_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"), reason="Debian's chromium is not installed"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    port = free_port()
    process = subprocess.Popen(
        [DEPLATFORM, "demo", "--port", str(port)],
        cwd=tmp_path_factory.mktemp("demo"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, COLUMNS="200"),
    )
    address = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.2)
    yield address
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


@pytest.mark.parametrize(
    ("as_of", "parler", "web", "twitter"),
    [
        ("2021-01-10T12:00", "partial", "online", "banned"),
        ("2021-01-12T00:00", "offline", "offline", "banned"),
    ],
)
def test_the_board_at_two_moments(demo, browser, as_of, parler, web, twitter):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(demo)
    page.fill("#as_of", as_of)
    page.click("button[type=submit]")
    page.wait_for_url(f"**as_of={as_of.replace(':', '%3A')}**")
    cell = 'tr[data-subject="{}"][data-channel="{}"] .status'
    assert page.inner_text(cell.format("parler", "overall")) == parler
    assert page.inner_text(cell.format("parler", "web")) == web
    assert page.inner_text(cell.format("twitter:realDonaldTrump", "overall")) == twitter
    page.screenshot(path=ARTIFACTS / f"board-{as_of[:10]}.png", full_page=True)
    page.close()


@pytest.mark.parametrize(
    ("as_of", "last"), [("2021-01-12T00:00", "offline"), ("2021-01-18T12:00", "partial")]
)
def test_the_parler_timeline_at_two_moments(demo, browser, as_of, last):
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.goto(f"{demo}subjects/parler?as_of={as_of}")
    assert page.inner_text("h1 .status") == last
    web = page.locator('rect.interval[data-channel="web"]')
    assert web.last.get_attribute("class") == f"interval {last}"
    assert "Amazon Web Services" in page.inner_text("table")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # no sideways page
    page.screenshot(path=ARTIFACTS / f"parler-{as_of[:10]}.png", full_page=True)
    page.close()


def test_the_reports_page_shows_the_report_and_links_every_format(demo, browser):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"{demo}reports")
    page.fill("input[name=from]", "2021-01-01")
    page.fill("input[name=to]", "2021-02-01")
    page.fill("input[name=subject]", "parler")
    page.click("button[type=submit]")
    page.wait_for_url("**/reports?from=2021-01-01**")
    formats = page.locator("a[data-format]").evaluate_all("links => links.map(a => a.textContent)")
    assert formats == ["json", "csv", "md", "html", "parquet"]
    report = page.frame_locator("iframe.report")
    web = report.locator('rect.interval[data-channel="web"]')
    assert "offline" in [web.nth(n).get_attribute("class").split()[1] for n in range(web.count())]
    assert "5 d 16 h 1 min" in report.locator("body").inner_text()
    page.screenshot(path=ARTIFACTS / "report-2021-01.png", full_page=True)
    page.close()


SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"  # the README's


def serious_violations(page) -> list[str]:
    """What axe-core finds wrong and serious on the page (headings, labels, contrast, names,
    colour alone...)."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} on {len(v['nodes'])} element(s)"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def new_page(browser, width: int):
    # axe-core is injected by the test: the pages' own policy allows no script.
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    return context.new_page()


def test_the_board_at_a_past_moment_with_a_window_and_filters(demo, browser):
    page = new_page(browser, 1400)
    page.goto(f"{demo}?as_of=2021-01-12T00:00&from=2021-01-01&to=2021-01-31")
    assert "Daily, 2021-01-01 to 2021-01-31" in page.inner_text("table")
    since = page.inner_text('tr[data-subject="parler"][data-channel="overall"] td.since')
    assert "2021-01-11" in since and "Amazon Web Services" in since
    page.select_option("#status", "offline")
    page.click("text=Filter")
    page.wait_for_url("**status=offline**")
    subjects = page.locator('tr[data-channel="overall"]').evaluate_all(
        "rows => rows.map(r => r.dataset.subject)"
    )
    assert subjects == ["parler"] and "from=2021-01-01" in page.url  # the window is kept
    page.fill("#q", "trump")
    page.select_option("#status", "")
    page.click("text=Filter")
    page.wait_for_url("**q=trump**")
    shown = page.locator('tr[data-channel="overall"]').evaluate_all(
        "rows => rows.map(r => r.dataset.subject)"
    )
    assert shown and all("trump" in s.lower() for s in shown)
    assert serious_violations(page) == []
    page.goto(f"{demo}?as_of=2021-01-12T00:00")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "board-2021-01-12.png", full_page=True)
    page.close()


def test_a_subject_page_on_a_phone_has_readable_details_and_passes_axe(demo, browser):
    page = new_page(browser, 390)
    page.goto(f"{demo}subjects/parler?as_of=2021-01-18T12:00")
    marker = page.locator("svg.timeline a").filter(has=page.locator("path.event")).nth(2)
    target = marker.get_attribute("href")
    marker.click()
    page.wait_for_url(f"**{target}")
    row = page.locator(f"tr{target}")
    assert row.is_visible() and row.inner_text().strip()  # its details, without hovering
    assert "rferl.org" in page.inner_text("table.events")  # sources named by their site
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    assert "Cite this view" in page.inner_text("main")
    assert serious_violations(page) == []
    page.screenshot(path=ARTIFACTS / "parler-phone.png", full_page=True)
    wide = new_page(browser, 1400)
    wide.goto(f"{demo}subjects/parler?as_of=2021-01-18T12:00")
    wide.screenshot(path=SCREENSHOTS / "parler-timeline.png", full_page=False)
    wide.close()
    page.close()


def test_an_error_page_a_provider_page_and_the_api_docs_without_network(demo, browser):
    page = new_page(browser, 1400)
    answer = page.goto(f"{demo}subjects/parlor")
    assert answer.status == 404 and "did you mean 'parler'" in page.inner_text("main")
    assert page.locator("h1").inner_text() == "Unknown subject"
    page.goto(f"{demo}providers/Amazon%20Web%20Services")
    bound, actions = (table.inner_text() for table in page.locator("table").all())
    assert "in force since 2021-01-11 (ongoing)" in bound and "parler" in bound
    assert "hosting terminated" in actions and "parler" in actions
    assert serious_violations(page) == []
    page.screenshot(path=ARTIFACTS / "provider-aws.png", full_page=True)
    page.goto(f"{demo}providers")
    assert "Amazon Web Services" in page.inner_text("table")
    assert serious_violations(page) == []
    page.screenshot(path=ARTIFACTS / "providers.png", full_page=True)
    # Nothing but this server answers: the docs' assets must come from it.
    local = demo.rstrip("/")
    page.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(local) else route.abort(),
    )
    page.goto(f"{demo}docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    assert page.locator(".swagger-ui .opblock").count() > 10
    page.screenshot(path=ARTIFACTS / "docs-offline.png")
    page.close()


def test_a_country_page_the_providers_index_and_a_subject_with_a_lane_per_country(demo, browser):
    page = new_page(browser, 1400)
    page.goto(f"{demo}regions/BR?as_of=2024-09-01T00:00")
    assert page.locator("h1").inner_text() == "Brazil (BR)"
    row = page.locator("table.events tbody tr", has=page.locator('a[href="/subjects/x"]'))
    assert "Anatel blocked access on 2024-08-31" in row.inner_text()
    assert "here only" in row.inner_text()
    lane = page.locator('svg.timeline rect.interval.offline[data-channel="x"]')
    assert lane.count() == 1  # X's status in Brazil: offline while blocked
    assert serious_violations(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "country-brazil.png", full_page=True)
    page.goto(f"{demo}providers")
    anatel = page.locator("tr", has_text="Anatel").inner_text()
    assert "Brazil: web, ios, android" in anatel
    assert serious_violations(page) == []
    page.screenshot(path=SCREENSHOTS / "providers.png", full_page=True)
    page.goto(f"{demo}subjects/tiktok?as_of=2025-01-19T06:00&from=2025-01-15&to=2025-02-20")
    lanes = page.locator("svg.timeline > text").all_text_contents()
    assert "in US" in lanes  # the United States' own answer has a lane
    offline = page.locator('svg.timeline rect.interval.offline[data-channel="in US"]')
    assert offline.count() == 1
    assert "TikTok shut it down on 2025-01-19" in page.inner_text("ul.countries")
    assert serious_violations(page) == []
    page.screenshot(path=SCREENSHOTS / "tiktok-countries.png", full_page=False)
    page.close()


PHONE_PAGES = [
    "?as_of=2021-01-12T00:00",
    "subjects/parler?as_of=2021-01-18T12:00",
    "providers/Amazon%20Web%20Services",
    "providers",
    "regions/BR?as_of=2024-09-01T00:00",
    "reports?from=2021-01-01&to=2021-02-01&format=html",
]


def test_every_page_reads_on_a_phone_without_scrolling_sideways(demo, browser):
    page = new_page(browser, 400)
    for path in PHONE_PAGES:
        page.goto(f"{demo}{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= page.evaluate("window.innerWidth"), (path, width)
        sideways = page.evaluate(
            "Array.from(document.querySelectorAll('*')).filter(e => e.scrollWidth > "
            "e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible').length"
        )
        assert sideways == 0, path  # nothing scrolls inside either
    page.goto(f"{demo}?as_of=2021-01-12T00:00")
    parler = page.locator('tr[data-subject="parler"][data-channel="overall"]')
    assert parler.locator("svg.bars").bounding_box()["width"] > 300  # the bars, on screen
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("table.board").first.screenshot(path=SCREENSHOTS / "board-phone.png")
    page.close()
