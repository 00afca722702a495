"""Filters with operators, per-row comparisons and Plausible's Pages columns in a real Chromium,
on the 7-day demo: an "is not" and a "contains" filter added through the sidebar's "Add a
filter" box show as chips and the cards settle on `pipeline.stats.metrics`' numbers for the same
events; a comparison turned on in the sidebar gives the Pages tables a change per row, and Top
pages shows time on page and scroll depth."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.sync_api import Locator, Page, expect

from dashboard.format import WORD_JOINER
from dashboard.view import (
    View,
    comparison_dates,
    filters_from_params,
    period_dates,
    utc_bounds,
)
from pipeline import load_events
from pipeline.config import Settings
from pipeline.local.demo import DEMO_SITE, load_demo
from pipeline.resources import create_resources
from pipeline.stats import metrics
from tests.dashboard.test_click_filter_browser import card, exceptions, open_app, settle
from tests.dashboard.test_dashboard_browser import browser, dashboard_env, streamlit_server

pytestmark = pytest.mark.integration
__all__ = ["browser"]  # the module-scoped Chromium fixture, shared


def number(cell: str) -> float | None:
    """A cell of the grid's accessible mirror, which holds the numbers under the formatted
    text (the text itself is tests/dashboard/test_tables.py's): None for an empty one."""
    return None if cell.strip() in ("", "None", "null", "NaN", "nan") else float(cell)


def same(cell: str, expected: object) -> bool:
    got = number(cell)
    if expected is None or (isinstance(expected, float) and expected != expected):
        return got is None
    return got is not None and abs(got - float(expected)) < 1e-6


@pytest.fixture(scope="module")
def demo(moto_server) -> Iterator[tuple[str, Settings]]:
    settings = Settings.for_prefix(f"fo{os.getpid()}", endpoint_url=moto_server)
    create_resources(settings)
    load_demo(settings, now=datetime.now(UTC), days=7, progress=False)
    with streamlit_server("streamlit_app.py", dashboard_env(settings, DEMO_SITE)) as url:
        yield url, settings


def events_of(settings: Settings, first, last):
    return load_events(DEMO_SITE, *utc_bounds(first, last, "UTC"), settings=settings)


def url_filters(url: str) -> tuple[metrics.Filter, ...]:
    """The filters the page's URL holds, read as the dashboard reads them."""
    params: dict[str, list[str]] = {}
    for key, value in parse_qsl(urlsplit(url).query):
        params.setdefault(key, []).append(value)
    filters, notes = filters_from_params(params)
    assert notes == []
    return filters


def sidebar(page: Page) -> Locator:
    return page.locator('[data-testid="stSidebar"]')


def choose(page: Page, testid: str, label: str, typed: str) -> None:
    """Type into the select (single or multi) labelled `label` and take the first match; a
    multiselect must then show the value as a tag (typed again if Enter took nothing)."""
    box = sidebar(page).locator(f'[data-testid="{testid}"]').filter(has_text=label).first
    for _ in range(3):
        box.locator("input").click()
        page.keyboard.type(typed)
        page.wait_for_timeout(400)
        page.keyboard.press("Enter")
        if testid == "stMultiSelect":
            page.keyboard.press("Escape")  # a multiselect stays open over what is below it
        settle(page)
        if testid != "stMultiSelect" or box.locator("[data-tag]").count():
            return
        page.keyboard.press("Escape")  # the typed text goes with the open list
    raise AssertionError(f"nothing was picked in {label!r}")


def open_filter_box(page: Page) -> None:
    """Open the sidebar's "Add a filter" box: a click while the first run's widgets are still
    being wired up can be lost, so it is tried again until the box shows its first field."""
    dimension = sidebar(page).locator('[data-testid="stSelectbox"]').filter(has_text="Dimension")
    for _ in range(3):
        sidebar(page).get_by_text("Add a filter").click()
        settle(page)
        if dimension.count() and dimension.first.is_visible():
            return
    raise AssertionError("the Add a filter box did not open")


def operator(page: Page, word: str) -> None:
    radio = sidebar(page).locator('[data-testid="stRadio"]')
    radio.locator("label").filter(has_text=re.compile(f"^{word}$")).click()
    settle(page)


def click_changing_filters(page: Page, target: Locator) -> None:
    """Click `target` until the URL's filters change, as a person clicks again when nothing
    happened: with both cores busy, the first "Add filter" click after a value was picked
    was now and then lost (no rerun; the value stayed picked and the button enabled)."""
    before = url_filters(page.url)
    for _click in range(3):
        expect(target).to_be_enabled(timeout=30_000)  # "Add filter" waits for a picked value
        target.click()
        for _ in range(60):  # 15 s: the URL is written by the rerun the click starts
            if url_filters(page.url) != before:
                settle(page)
                return
            page.wait_for_timeout(250)
        settle(page)
        if url_filters(page.url) != before:
            return
    raise AssertionError("the click changed no filter")


def add_filter(page: Page) -> None:
    click_changing_filters(page, sidebar(page).get_by_role("button", name="Add filter"))


def chips(page: Page) -> list[str]:
    found = page.get_by_role("button", name=re.compile("^✕"))
    return [found.nth(i).inner_text().replace(WORD_JOINER, "") for i in range(found.count())]


def cards_equal_metrics(page: Page, events) -> None:
    expected = metrics.summary(metrics.select(events, url_filters(page.url)))
    assert expected.visitors > 0, "the filters should leave some visitors"
    assert (card(page, "Unique visitors"), card(page, "Total pageviews")) == (
        expected.visitors,
        expected.pageviews,
    )


def grid(table: Locator) -> tuple[list[str], list[list[str]]]:
    """A dataframe's headers and the text of its visible rows (the grid's accessible mirror)."""
    mirror = table.locator('table[role="grid"]')
    headers = [h.strip() for h in mirror.locator("th").all_inner_texts()]
    rows = []
    for row in mirror.locator("tbody tr").all():
        rows.append([c.strip() for c in row.locator("td").all_inner_texts()])
    return headers, rows


def test_is_not_and_contains_filters_from_the_sidebar_match_the_metrics(demo, browser):
    url, settings = demo
    view = View(site=DEMO_SITE, period="7d")
    week = events_of(settings, *period_dates(view, datetime.now(UTC).date()))
    top = metrics.breakdown(week, "path")["value"].tolist()
    page = open_app(browser, f"{url}/?period=7d")
    open_filter_box(page)

    # Page is not <the second most visited page>: typed in full, picked from the values.
    choose(page, "stSelectbox", "Dimension", "Page")
    operator(page, "is not")
    choose(page, "stMultiSelect", "Page is not", top[1])
    add_filter(page)
    assert url_filters(page.url) == (metrics.Filter("path", "is_not", (top[1],)),)
    assert chips(page) == [f"✕ Page is not {top[1]}"]
    assert exceptions(page) == 0
    cards_equal_metrics(page, week)

    # Source contains "GOO" (any case): typed text, a second filter AND-ed with the first.
    choose(page, "stSelectbox", "Dimension", "Source")
    operator(page, "contains")
    field = sidebar(page).get_by_label("Source contains")
    field.fill("GOO")
    field.press("Enter")
    settle(page)
    add_filter(page)
    assert metrics.Filter("referrer_source", "contains", ("GOO",)) in url_filters(page.url)
    assert "fc.referrer_source=GOO" in page.url
    assert chips(page) == [f"✕ Page is not {top[1]}", "✕ Source contains GOO"]
    cards_equal_metrics(page, week)
    assert exceptions(page) == 0

    # The chip's ✕ removes its filter only.
    click_changing_filters(page, page.get_by_role("button", name=re.compile("^✕ Page is not")))
    assert url_filters(page.url) == (metrics.Filter("referrer_source", "contains", ("GOO",)),)
    cards_equal_metrics(page, week)
    page.close()


def test_the_value_list_is_searched_case_insensitively(demo, browser):
    url, settings = demo
    page = open_app(browser, f"{url}/?period=7d")
    open_filter_box(page)
    choose(page, "stSelectbox", "Dimension", "sour")  # "Source"
    choose(page, "stMultiSelect", "Source is", "goog")  # "Google", found from lower case
    add_filter(page)
    assert url_filters(page.url) == (metrics.Filter("referrer_source", "is", ("Google",)),)
    assert chips(page) == ["✕ Source is Google"]
    week = events_of(
        settings, *period_dates(View(site=DEMO_SITE, period="7d"), datetime.now(UTC).date())
    )
    cards_equal_metrics(page, week)
    assert exceptions(page) == 0
    page.close()


def test_a_comparison_shows_a_change_per_row_and_pages_show_engagement(demo, browser):
    url, settings = demo
    page = open_app(browser, f"{url}/top_pages?period=today")
    headers, _ = grid(page.locator('[data-testid="stDataFrame"]').first)
    assert "Change" not in headers  # no comparison, no change
    for column in ("Visitors", "Pageviews", "Bounce rate", "Time on page", "Scroll depth"):
        assert column in headers, headers

    # Compare with the previous period (yesterday) from the sidebar.
    choose(page, "stSelectbox", "Compare with", "Previous p")
    assert "compare=previous" in page.url
    assert exceptions(page) == 0
    today = datetime.now(UTC).date()
    first, last = period_dates(View(site=DEMO_SITE, period="today"), today)
    expected = metrics.with_change(
        metrics.breakdown(events_of(settings, first, last), "path"),
        metrics.breakdown(events_of(settings, *comparison_dates(first, last, "previous")), "path"),
    ).set_index("value")
    checked = 0
    for tab in ("Top pages", "Entry pages", "Exit pages"):
        page.get_by_role("tab", name=tab, exact=True).click()
        settle(page, quiet_ms=500)
        table = next(t for t in page.locator('[data-testid="stDataFrame"]').all() if t.is_visible())
        headers, rows = grid(table)
        assert "Change" in headers, (tab, headers)
        at = headers.index("Change")
        assert rows, tab
        if tab == "Top pages":
            # Each row's change is metrics.with_change of the two days' breakdowns, and its
            # time on page and scroll depth metrics.breakdown's.
            for row in rows:
                wanted = expected.loc[row[0]]
                assert same(row[at], wanted["change"]), (row, wanted)
                assert same(row[headers.index("Time on page")], wanted["time_on_page"]), row
                assert same(row[headers.index("Scroll depth")], wanted["scroll_depth"]), row
                checked += 1
            assert any(number(row[at]) is not None for row in rows), "yesterday had visits"
        if tab == "Exit pages":
            assert "Exit rate" in headers and "Exits" in headers
    assert checked > 0
    assert exceptions(page) == 0
    page.close()
