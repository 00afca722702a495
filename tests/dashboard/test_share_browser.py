"""Share links in a real headless Chromium: a valid link shows its site only, read only; a
revoked, expired or forged one is refused with one sentence; a password link asks for it; a
site whose hits were all dropped links to Pipeline health for an operator only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page

from pipeline.config import Settings
from pipeline.consume.consumer import Consumer
from pipeline.enrich.sites import new_site, register_site
from pipeline.ingest.contract import build_message, encode_message
from pipeline.ops import shares
from tests.conftest import CHROME_UA, GOOGLEBOT_UA, create_test_resources
from tests.dashboard.test_dashboard_browser import (
    browser,  # noqa: F401 - a fixture
    dashboard_env,
    streamlit_server,
    wait_until_idle,
)

pytestmark = pytest.mark.integration
SHARED, OTHER = "site.test", "example.com"  # both registered by create_test_resources
PAGEVIEWS = {SHARED: 3, OTHER: 5}
QUIET = "quiet.test"  # registered here; its only hit is a crawler's, dropped
REFUSED = {
    "forged": "This share link is not valid: it was revoked, or it was never made.",
    "revoked": "This share link is not valid: it was revoked, or it was never made.",
}


def pageview_records(site: str, count: int, now: datetime, user_agent: str) -> list[dict]:
    """`count` pageviews of `site` as SQS records, one per visitor, a few minutes ago."""
    records = []
    for n in range(count):
        body = encode_message(
            build_message(
                f"d={site}&u={quote(f'https://{site}/page-{n}', safe='')}",
                {"User-Agent": user_agent},
                f"203.0.113.{n + 10}",
                int((now - timedelta(minutes=3)).timestamp() * 1000),
                f"{site.replace('.', '-')}-{n}",
            )
        )
        records.append({"messageId": f"{site}-{n}", "body": body})
    return records


def store_pageviews(settings: Settings, site: str, count: int, now: datetime) -> None:
    records = pageview_records(site, count, now, CHROME_UA)
    assert Consumer(settings).process(records).stored == count


@pytest.fixture(scope="module")
def links(moto_server) -> Iterator[tuple[str, dict[str, str]]]:
    """The dashboard (on moto's server: an open local dashboard) and a link of each kind."""
    settings = Settings.for_prefix(f"sh{os.getpid()}", endpoint_url=moto_server)
    create_test_resources(settings)
    now = datetime.now(UTC)
    for site, count in PAGEVIEWS.items():
        store_pageviews(settings, site, count, now)
    register_site(settings, new_site(QUIET))
    crawled = Consumer(settings).process(pageview_records(QUIET, 1, now, GOOGLEBOT_UA))
    assert dict(crawled.dropped) == {"bot": 1}
    made = {
        "valid": shares.create_share(settings, SHARED)[0],
        "password": shares.create_share(settings, SHARED, password="correct horse")[0],
        "expired": shares.create_share(
            settings, SHARED, expires_days=1, now=now - timedelta(days=2)
        )[0],
        "revoked": shares.create_share(settings, SHARED)[0],
        "forged": "F" * 43,
        "quiet": shares.create_share(settings, QUIET)[0],
    }
    shares.revoke_share(settings, SHARED, made["revoked"][:6])
    REFUSED["expired"] = f"This share link expired on {now - timedelta(days=1):%Y-%m-%d %H:%M} UTC."
    with streamlit_server("streamlit_app.py", dashboard_env(settings, OTHER)) as url:
        yield url, made


def visible(locator) -> str:
    """What a reader sees (md_escape's invisible word joiners dropped)."""
    return locator.inner_text().replace("\u2060", "")


def pageviews_card(page: Page) -> str:
    card = page.locator('[data-testid="stMetric"]').filter(has_text="Total pageviews")
    return card.locator('[data-testid="stMetricValue"]').inner_text()


def test_a_valid_link_shows_its_site_only_whatever_the_url_says(links, browser: Browser):  # noqa: F811
    url, made = links
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    # The URL also names the other site: the link's site is shown all the same.
    page.goto(f"{url}/?share={made['valid']}&site={OTHER}")
    page.get_by_role("heading", level=1).first.wait_for(timeout=90_000)
    wait_until_idle(page)
    assert visible(page.get_by_role("heading", level=1).first).startswith(SHARED)
    assert pageviews_card(page) == str(PAGEVIEWS[SHARED])
    sidebar = visible(page.locator('[data-testid="stSidebar"]'))
    assert f"Site: {SHARED}" in sidebar and "Shared link: read only." in sidebar
    assert "Overview" in sidebar and "Pipeline health" not in sidebar
    # No site picker, no other site; the link stays in the address bar.
    assert page.get_by_role("combobox", name="Site").count() == 0
    assert OTHER not in visible(page.locator("body"))
    assert f"share={made['valid']}" in page.url and f"site={SHARED}" in page.url
    # The operator page's own address opens the link's overview, not the page.
    page.goto(f"{url}/health?share={made['valid']}")
    page.get_by_role("heading", level=1).first.wait_for(timeout=90_000)
    wait_until_idle(page)
    assert visible(page.get_by_role("heading", level=1).first).startswith(SHARED)
    assert page.get_by_text("Dead-letter queue").count() == 0
    page.close()


@pytest.mark.parametrize("kind", ["revoked", "expired", "forged"])
def test_a_link_that_opens_nothing_shows_one_sentence(links, browser: Browser, kind):  # noqa: F811
    url, made = links
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{url}/?share={made[kind]}")
    alert = page.locator('[data-testid="stAlertContainer"]')
    alert.first.wait_for(timeout=90_000)
    wait_until_idle(page)
    assert alert.count() == 1 and visible(alert).strip() == REFUSED[kind]
    # Nothing else: no heading, no card, no page list, no site.
    assert page.get_by_role("heading", level=1).count() == 0
    assert page.locator('[data-testid="stMetric"]').count() == 0
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0
    body = visible(page.locator("body"))
    assert SHARED not in body and OTHER not in body
    page.close()


def test_a_password_link_asks_for_its_password(links, browser: Browser):  # noqa: F811
    url, made = links
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{url}/?share={made['password']}")
    field = page.get_by_label("Password", exact=True)
    field.wait_for(timeout=90_000)
    assert page.get_by_text("This shared link needs a password.").count() == 1
    assert page.locator('[data-testid="stMetric"]').count() == 0
    field.fill("not the one")
    field.press("Enter")
    page.get_by_text("Wrong password.").wait_for(timeout=60_000)
    assert page.locator('[data-testid="stMetric"]').count() == 0
    page.get_by_label("Password", exact=True).fill("correct horse")
    page.get_by_label("Password", exact=True).press("Enter")
    page.get_by_role("heading", level=1).first.wait_for(timeout=90_000)
    wait_until_idle(page)
    assert pageviews_card(page) == str(PAGEVIEWS[SHARED])
    page.close()


def test_dropped_hits_link_to_pipeline_health_for_an_operator_only(links, browser: Browser):  # noqa: F811
    # A share link's viewer has no Pipeline health page: a link to it would fail the page.
    url, made = links
    dropped = "1 hit(s) arrived in this period and were dropped, all as bot"
    health = "Dropped hits by reason: Pipeline health"
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{url}/?share={made['quiet']}&period=today")
    warning = page.locator('[data-testid="stAlertContainer"]').filter(has_text="were dropped")
    warning.first.wait_for(timeout=90_000)
    wait_until_idle(page)
    assert dropped in visible(warning.first)
    assert page.get_by_text(health).count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0

    # The local dashboard's own visitor is an operator: the link is there, and it opens the page.
    page.goto(f"{url}/?site={QUIET}&period=today")
    warning = page.locator('[data-testid="stAlertContainer"]').filter(has_text="were dropped")
    warning.first.wait_for(timeout=90_000)
    wait_until_idle(page)
    assert dropped in visible(warning.first)
    page.get_by_text(health).click()
    page.get_by_text("Dead-letter queue").first.wait_for(timeout=90_000)
    wait_until_idle(page)
    assert "/health" in page.url
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()
