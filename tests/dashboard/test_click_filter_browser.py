"""Click-to-filter in a real Chromium, on the 7-day demo: a row click on every table of every
page filters the dashboard through the URL, the top numbers are `pipeline.metrics`' for that
filter, the chip removes it, and the app goes idle (no rerun loop, no exception). Also the
"Add a filter" box, a hostile URL, and the empty state of a site whose hits were all dropped.

Streamlit's dataframe is a canvas (glide-data-grid): a row is selected by clicking its row
marker (the checkbox column on the left) at computed coordinates; the grid's accessible
<table> mirror gives the row count and the clicked row's text."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

import pycountry
import pytest
from playwright.sync_api import Browser, Locator, Page

from dashboard.format import WORD_JOINER
from dashboard.view import View, period_dates, utc_bounds
from pipeline import load_events
from pipeline.config import Settings
from pipeline.consume.consumer import Consumer
from pipeline.enrich.sites import new_site, register_site
from pipeline.ingest.contract import build_message, encode_message
from pipeline.local.demo import DEMO_SITE, load_demo
from pipeline.resources import create_resources
from pipeline.stats import metrics
from tests.conftest import CHROME_UA
from tests.dashboard.test_dashboard_browser import (
    browser,
    dashboard_env,
    streamlit_server,
    wait_until_idle,
)

pytestmark = pytest.mark.integration
__all__ = ["browser"]  # the module-scoped Chromium fixture, shared

HEADER_PX, ROW_PX = 35, 35  # glide-data-grid's default header and row heights in Streamlit
DROPPED_SITE = "dropped.test"
DROPPED_HITS = 3
# A table's first header → the filters its row click must set (versions set two).
FILTERS_BY_HEADER = {
    "Source": ("referrer_source",),
    "Referrer": ("referrer",),
    "UTM source": ("utm_source",),
    "UTM medium": ("utm_medium",),
    "UTM campaign": ("utm_campaign",),
    "UTM term": ("utm_term",),
    "UTM content": ("utm_content",),
    "Country": ("country",),
    "Region": ("region",),
    "City": ("city",),
    "Page": ("path",),
    "Entry page": ("path",),
    "Exit page": ("path",),
    "Browser": ("browser",),
    "Browser version": ("browser", "browser_version"),
    "OS": ("os",),
    "OS version": ("os", "os_version"),
    "Device": ("device",),
    "Screen size": ("screen",),
    "Goal": ("name",),
}
# Every app page with breakdown tables, and its tabs (None: no tabs).
PAGES = {
    "": [None],
    "top_pages": ["Top pages", "Entry pages", "Exit pages"],
    "sources": ["Sources", "Referrers", "UTM source", "UTM medium", "UTM campaign", "UTM term", "UTM content"],
    "geography": ["Countries", "Regions", "Cities"],
    "devices": ["Browser", "Browser version", "OS", "OS version", "Device", "Screen size"],
    "goals": [None],
}  # fmt: skip


@pytest.fixture(scope="module")
def demo(moto_server) -> Iterator[tuple[str, Settings]]:
    settings = Settings.for_prefix(f"cf{os.getpid()}", endpoint_url=moto_server)
    create_resources(settings)
    load_demo(settings, now=datetime.now(UTC), days=7, progress=False)
    # A registered site whose every hit comes from a page on another host: all dropped.
    register_site(settings, new_site(DROPPED_SITE))
    now = datetime.now(UTC) - timedelta(minutes=5)
    foreign = [foreign_hit(f"203.0.113.{i}", now, f"drop-{i}") for i in range(DROPPED_HITS)]
    assert Consumer(settings).process(foreign, now=now).stored == 0
    with streamlit_server("streamlit_app.py", dashboard_env(settings, DEMO_SITE)) as url:
        yield url, settings


def foreign_hit(ip: str, when: datetime, request_id: str) -> dict[str, str]:
    """A pixel hit for DROPPED_SITE from a page on another host."""
    query = urlencode({"d": DROPPED_SITE, "u": "https://elsewhere.example/"})
    ms = int(when.timestamp() * 1000)
    body = encode_message(build_message(query, {"User-Agent": CHROME_UA}, ip, ms, request_id))
    return {"messageId": request_id, "body": body}


@pytest.fixture(scope="module")
def week_events(demo) -> object:
    """The demo's last 7 days as the dashboard reads them, for the expected numbers."""
    _, settings = demo
    view = View(site=DEMO_SITE, period="7d")
    first, last = period_dates(view, datetime.now(UTC).date())
    return load_events(DEMO_SITE, *utc_bounds(first, last, "UTC"), settings=settings)


def filters_in(url: str) -> dict[str, str]:
    return {k[2:]: v for k, v in parse_qsl(urlsplit(url).query) if k.startswith("f.")}


def settle(page: Page, quiet_ms: int = 1500) -> None:
    """Idle, with a bound that a rerun loop cannot outlast."""
    page.wait_for_timeout(300)  # let the click's rerun start
    wait_until_idle(page, quiet_ms=quiet_ms, timeout_ms=45_000)


def open_app(browser: Browser, url: str) -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(url)
    page.get_by_role("heading", level=1).first.or_(
        page.locator('[data-testid="stAlert"]').first
    ).first.wait_for(timeout=90_000)
    settle(page)
    return page


def exceptions(page: Page) -> int:
    return page.locator('[data-testid="stException"]').count()


def visible_tables(page: Page) -> list[Locator]:
    tables = page.locator('[data-testid="stDataFrame"]')
    return [tables.nth(i) for i in range(tables.count()) if tables.nth(i).is_visible()]


def rows_and_header(table: Locator) -> tuple[int, str]:
    grid = table.locator('table[role="grid"]')
    rows = int(grid.get_attribute("aria-rowcount") or "1") - 1
    return rows, grid.locator("th").first.inner_text().strip()


def first_cell(table: Locator, row: int) -> str:
    return table.locator(f'tr[aria-rowindex="{row + 2}"] td').first.inner_text().strip()


def click_row(page: Page, table: Locator, row: int) -> str:
    """Tick row `row`'s marker; returns that row's first cell as the grid shows it."""
    table.scroll_into_view_if_needed()
    text = first_cell(table, row)
    box = table.bounding_box()
    assert box, "the table is not on screen"
    page.mouse.click(box["x"] + 15, box["y"] + HEADER_PX + ROW_PX * row + ROW_PX / 2)
    return text


def reads_as(shown: str, dimension: str, value: str) -> bool:
    """Whether a table cell showing `shown` is the row of `value` (countries show their name)."""
    if dimension == "country":
        country = pycountry.countries.get(alpha_2=value)
        names = {getattr(country, n, None) for n in ("name", "common_name")} - {None}
        return shown == value or any(shown.endswith(name) for name in names)
    return shown == value


def card(page: Page, label: str) -> int:
    metric = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    value = metric.locator('[data-testid="stMetricValue"]').inner_text()
    return int(value.replace(",", "").strip())


def remove_chips(page: Page) -> None:
    chips = page.get_by_role("button", name=re.compile("^✕"))
    while chips.count():
        chips.first.click()
        settle(page)
    assert filters_in(page.url) == {}


def check_click(page: Page, table: Locator, row: int, where: str, events) -> list[str]:
    """Click `row` of `table`; the problems found (empty when all is right)."""
    _, header = rows_and_header(table)
    shown = click_row(page, table, row)
    settle(page)
    problems = []
    found = filters_in(page.url)
    expected = FILTERS_BY_HEADER.get(header)
    if expected is None:
        return [f"{where}: unexpected table {header!r}"]
    if tuple(found) != expected:
        problems.append(f"{where} row {row}: filters {found} in the URL, expected {expected}")
    elif not reads_as(shown, expected[0], " ".join(found.values())):
        problems.append(f"{where} row {row}: clicked {shown!r}, filtered by {found}")
    if exceptions(page):
        problems.append(f"{where} row {row}: an exception is shown")
    if page.get_by_role("button", name=re.compile("^✕")).count() != len(found):
        problems.append(f"{where} row {row}: {len(found)} filter(s) but not as many chips")
    if "period=7d" not in page.url:
        problems.append(f"{where} row {row}: the period changed ({page.url})")
    if where.startswith("overview") and found:
        expected_summary = metrics.summary(metrics.filter_events(events, found))
        got = (card(page, "Unique visitors"), card(page, "Total pageviews"))
        if got != (expected_summary.visitors, expected_summary.pageviews):
            problems.append(
                f"{where} row {row} ({found}): cards {got}, metrics "
                f"{(expected_summary.visitors, expected_summary.pageviews)}"
            )
    remove_chips(page)
    # No endless rerun: the status widget stays away for three seconds.
    settle(page, quiet_ms=3000)
    if exceptions(page):
        problems.append(f"{where} row {row}: an exception after removing the chip")
    return problems


@pytest.mark.parametrize("path", list(PAGES), ids=[p or "overview" for p in PAGES])
def test_a_row_click_on_every_table_filters_and_the_chip_removes_it(
    demo, browser, week_events, path
):
    url, _ = demo
    page = open_app(browser, f"{url}/{path}?period=7d")
    problems: list[str] = []
    clicked = 0
    for tab in PAGES[path]:
        if tab is not None:
            page.get_by_role("tab", name=tab, exact=True).click()
            settle(page, quiet_ms=500)
        count = len(visible_tables(page))
        for index in range(count):
            if tab is not None:
                page.get_by_role("tab", name=tab, exact=True).click()
            if index >= len(visible_tables(page)):
                break  # a filter can hide a later table (Goals' funnel on one event)
            table = visible_tables(page)[index]
            rows, header = rows_and_header(table)
            if header not in FILTERS_BY_HEADER:
                continue  # not a breakdown (e.g. the funnel)
            # The second row (the reported crash) and, on the overview, the first (the loop).
            picks = [0, 1] if path == "" else [min(1, rows - 1)]
            for pick in picks[:rows]:
                # A "(none)" row (no value) is no filter a URL can carry: take the next one.
                named = [r for r in range(rows) if first_cell(table, r) != "(none)"]
                row = min(named, key=lambda r: abs(r - pick)) if named else pick
                if tab is not None:
                    page.get_by_role("tab", name=tab, exact=True).click()
                where = f"{path or 'overview'}/{tab or header}"
                problems += check_click(page, visible_tables(page)[index], row, where, week_events)
                clicked += 1
    page.close()
    assert problems == [], "\n".join(problems)
    assert clicked >= 1


def test_a_hostile_url_falls_back_and_says_the_filter_matches_nothing(demo, browser):
    url, _ = demo
    hostile = "[click](https://evil.test/x) **bold** " + "y" * 200
    query = urlencode({"period": "forever", "f.nope": "1", "f.utm_campaign": hostile})
    page = open_app(browser, f"{url}/?{query}")
    assert exceptions(page) == 0
    assert "period=30d" in page.url and "f.nope" not in page.url
    chip = page.get_by_role("button", name=re.compile("^✕"))
    assert chip.count() == 1
    text = chip.first.inner_text().replace(WORD_JOINER, "")
    assert text.startswith("✕ UTM campaign is [click](https://evil.test/x) **bold**")
    assert text.endswith("…") and len(text) < 60
    assert page.locator('a[href*="evil.test"]').count() == 0
    main = page.locator('[data-testid="stMainBlockContainer"]').inner_text()
    assert "No events match UTM campaign is" in main.replace(WORD_JOINER, "")
    page.get_by_role("button", name="Remove all filters").click()
    settle(page)
    assert filters_in(page.url) == {}
    assert page.get_by_role("heading", level=1).count() == 1
    page.close()


def test_a_site_whose_hits_were_all_dropped_says_how_many_and_why(demo, browser):
    url, _ = demo
    page = open_app(browser, f"{url}/?site={DROPPED_SITE}&period=7d")
    text = page.locator('[data-testid="stMainBlockContainer"]').inner_text()
    text = text.replace(WORD_JOINER, "")
    assert f"{DROPPED_HITS} hit(s) arrived in this period and were dropped" in text
    assert "all as foreign_host" in text
    assert "not one of the site's hostnames" in text
    page.get_by_test_id("stPageLink-NavLink").filter(has_text="Pipeline health").click()
    page.get_by_role("heading", name="Pipeline health").wait_for(timeout=60_000)
    settle(page)
    assert exceptions(page) == 0
    page.close()


def test_show_all_lists_every_row_and_a_click_below_the_top_ten_filters_by_that_row(
    demo, browser, week_events
):
    url, _ = demo
    page = open_app(browser, f"{url}/top_pages?period=7d")
    every = metrics.breakdown(week_events, "path")
    assert len(every) > 10, "the demo week has more than ten pages"
    table = visible_tables(page)[0]
    assert rows_and_header(table) == (10, "Page")
    page.get_by_role("tabpanel", name="Top pages").get_by_text(f"Show all ({len(every)})").click()
    settle(page)
    table = visible_tables(page)[0]
    rows, _ = rows_and_header(table)
    assert rows == len(every)
    last = rows - 1
    shown = click_row(page, table, last)
    settle(page)
    assert filters_in(page.url) == {"path": shown}
    assert shown == every["value"].iloc[last]
    assert exceptions(page) == 0
    remove_chips(page)
    settle(page, quiet_ms=3000)
    page.close()
