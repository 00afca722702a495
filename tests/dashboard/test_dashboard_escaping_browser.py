"""The dashboard in Chromium with hostile event data and URL parameters: an image in a page
path fetches nothing, a link in `?site=` is no link, `**bold**` and `$$x$$` in a UTM source
render as text; the Explorer's CSV download has its formula cells neutralised."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, Page

from dashboard.export import FORMULA_STARTS
from dashboard.format import WORD_JOINER
from pipeline.config import Settings
from pipeline.consume.consumer import Consumer
from pipeline.enrich.sites import new_site, register_site
from pipeline.ingest.contract import build_message, encode_message
from pipeline.resources import create_resources
from tests.conftest import CHROME_UA
from tests.dashboard.test_dashboard_browser import (
    browser,
    dashboard_env,
    recording_server,
    streamlit_server,
    wait_until_idle,
)

pytestmark = pytest.mark.integration
__all__ = ["browser"]  # the module-scoped Chromium fixture, shared

SITE = "hostile.test"
PHISHING_SITE = "Your account expired: [log in again](https://evil.test/login)"
BOLD, MATHS = "**bold**", "$$x$$"
FORMULAS = {
    "utm_medium": "-2+3",
    "utm_campaign": "+cmd|' /C calc'!A0",
    "utm_term": "@SUM(1+1)",
    "utm_content": "=1+1",  # the pipeline trims spaces and tabs off UTM values
}
GOAL = '=HYPERLINK("https://evil.test","click")'
PER_GROUP = 6  # distinct visitors: above the insights' threshold (5) from a zero baseline


def leak_path(leak: str) -> str:
    return f"/![x]({leak}/leak.png)"


def hit(query: dict[str, str], ip: str, when: datetime, request_id: str) -> dict[str, str]:
    body = encode_message(
        build_message(
            urlencode(query, quote_via=quote),
            {"User-Agent": CHROME_UA},
            ip,
            int(when.timestamp() * 1000),
            request_id,
        )
    )
    return {"messageId": request_id, "body": body}


def page_url(path: str, **utm: str) -> str:
    return f"https://{SITE}{quote(path, safe='/')}" + (f"?{urlencode(utm)}" if utm else "")


def store_hostile_traffic(settings: Settings, leak: str) -> None:
    """Today: six visitors of the leaking path and six of `/` (with formula UTM fields and a
    formula goal), all from a `**bold**` UTM source; six from `$$x$$`. One visit 20 days ago
    gives the series the two weeks of history that insights need: the five insights are all
    visitors, `**bold**`, `/`, the leaking path and `$$x$$`."""
    now = datetime.now(UTC) - timedelta(minutes=2)
    consumer = Consumer(settings)
    old = now - timedelta(days=20)
    first = hit({"d": SITE, "u": page_url("/old")}, "198.51.100.200", old, "old")
    assert consumer.process([first], now=old + timedelta(minutes=1)).stored == 1
    records = []
    for i in range(PER_GROUP):
        at = now + timedelta(milliseconds=i)
        leaking = page_url(leak_path(leak), utm_source=BOLD)
        records.append(hit({"d": SITE, "u": leaking}, f"203.0.113.{i + 1}", at, f"leak-{i}"))
        bold = page_url("/", utm_source=BOLD, **FORMULAS)
        records.append(hit({"d": SITE, "u": bold}, f"203.0.113.{i + 101}", at, f"bold-{i}"))
        maths = page_url("/", utm_source=MATHS)
        records.append(hit({"d": SITE, "u": maths}, f"198.51.100.{i + 1}", at, f"maths-{i}"))
    goal = {
        "d": SITE,
        "u": page_url("/", utm_source=BOLD),
        "n": GOAL,
        "p": json.dumps({"@plan": "=1+1"}),
    }
    records.append(hit(goal, "203.0.113.101", now, "goal"))
    outcome = consumer.process(records, now=now + timedelta(seconds=1))
    assert outcome.stored == len(records), outcome


@pytest.fixture(scope="module")
def leak_server() -> Iterator[tuple[str, list[str]]]:
    with recording_server() as server:
        yield server


@pytest.fixture(scope="module")
def dashboard(moto_server, leak_server) -> Iterator[str]:
    settings = Settings.for_prefix(f"esc{os.getpid()}", endpoint_url=moto_server)
    create_resources(settings)
    register_site(settings, new_site(SITE))
    store_hostile_traffic(settings, leak_server[0])
    with streamlit_server("streamlit_app.py", dashboard_env(settings, SITE)) as url:
        yield url


def visible_text(page: Page) -> str:
    return (
        page.locator('[data-testid="stMainBlockContainer"]').inner_text().replace(WORD_JOINER, "")
    )


def open_page(browser: Browser, url: str, requested: list[str]) -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.on("request", lambda request: requested.append(request.url))
    page.goto(url)
    page.get_by_role("heading", level=1).first.or_(page.locator('[data-testid="stAlert"]')).first.wait_for(timeout=90_000)  # fmt: skip
    wait_until_idle(page)
    return page


def rendered_from_data(page: Page, leak: str) -> list[str]:
    """Markup that could only come from the hostile values."""
    checks = {
        "image from the data": f'img[src^="{leak}"]',
        "link to evil.test": 'a[href*="evil.test"]',
        "link to the leak server": f'a[href^="{leak}"]',
        "bold from the data": 'strong:has-text("bold")',
        "maths": ".katex, .katex-display, math",
    }
    return [name for name, selector in checks.items() if page.locator(selector).count()]


def test_event_data_and_url_parameters_render_as_text_and_fetch_nothing(
    dashboard, browser, leak_server
):
    leak, leaked = leak_server
    requested: list[str] = []
    filters = {"f.path": leak_path(leak), "f.utm_source": BOLD}
    views = {
        # Insights quote the leaking path and both UTM sources.
        "insights": (f"{dashboard}/?site={SITE}", [leak_path(leak), BOLD, MATHS]),
        # The filter chips show values from the URL.
        "chips": (f"{dashboard}/?{urlencode({'site': SITE, **filters})}", [leak_path(leak), BOLD]),
        # A site from the URL in the empty state's sentence, and on the health page.
        "site": (f"{dashboard}/?{urlencode({'site': PHISHING_SITE})}", [PHISHING_SITE.lower()]),
        "health": (f"{dashboard}/health?{urlencode({'site': PHISHING_SITE})}", [PHISHING_SITE.lower()]),
    }  # fmt: skip
    problems = []
    for name, (url, expected) in views.items():
        page = open_page(browser, url, requested)
        text = visible_text(page)
        problems += [f"{name}: {value!r} not shown as text" for value in expected if value not in text]  # fmt: skip
        problems += [f"{name}: {found}" for found in rendered_from_data(page, leak)]
        assert page.locator('[data-testid="stException"]').count() == 0, name
        page.close()
    assert problems == [], "\n".join(problems)
    hosts = {urlsplit(url).netloc for url in requested}
    assert urlsplit(leak).netloc not in hosts and "evil.test" not in hosts
    assert leaked == []


def test_the_csv_download_neutralises_formula_cells(dashboard, browser, tmp_path):
    page = open_page(browser, f"{dashboard}/explorer?site={SITE}&period=7d", [])
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download CSV").click()
    saved = tmp_path / "events.csv"
    download.value.save_as(saved)
    page.close()
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"), newline="")))
    assert len(rows) == 3 * PER_GROUP + 1  # this week's events (the old visit is older)
    for field, value in FORMULAS.items():
        assert {row[field] for row in rows if row[field]} == {"'" + value}
    assert [row["name"] for row in rows if GOAL in row["name"]] == ["'" + GOAL]
    assert any(row["props"] == "'@plan==1+1" for row in rows)
    # No text cell anywhere starts a formula; numbers (a negative one would) are not text.
    starting = [cell for row in rows for cell in row.values() if cell.startswith(FORMULA_STARTS)]
    assert [cell for cell in starting if not is_number(cell)] == []


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
