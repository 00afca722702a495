"""A report's unsubscribe link opened in real Chromium on a running dashboard: the recipient is
removed, one sentence is shown and nothing of the dashboard; the same link again is refused."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pipeline.config import Settings
from pipeline.ops import recipients
from tests.conftest import create_test_resources
from tests.dashboard.test_dashboard_browser import (
    browser,  # noqa: F401 - a fixture
    dashboard_env,
    streamlit_server,
    wait_until_idle,
)

pytestmark = pytest.mark.integration
SITE = "example.com"


@pytest.fixture(scope="module")
def dashboard(moto_server) -> Iterator[tuple[str, Settings]]:
    settings = Settings.for_prefix(f"un{os.getpid()}", endpoint_url=moto_server)
    create_test_resources(settings)
    with streamlit_server("streamlit_app.py", dashboard_env(settings, SITE)) as url:
        yield url, settings


def said(page) -> str:
    """The page's one sentence, as read (md_escape's invisible word joiners, which keep a
    domain from turning into a link, left out)."""
    alert = page.locator('[data-testid="stAlert"]').first
    alert.wait_for(timeout=90_000)
    wait_until_idle(page)
    return alert.inner_text().replace("\u2060", "").strip()


def test_the_unsubscribe_link_removes_the_recipient_in_chromium(dashboard, browser):  # noqa: F811
    url, settings = dashboard
    ann = recipients.add_recipient(settings, SITE, "ann@example.org", {"weekly", "alerts"})
    recipients.add_recipient(settings, SITE, "bob@example.org", {"weekly"})
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(f"{url}/?unsubscribe={ann.token}")
        assert said(page) == "You will no longer receive e-mail reports for example.com."
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.locator('[data-testid="stSidebar"]').count() == 0  # nothing else shown
        left = recipients.read(settings, SITE).recipients
        assert [p.email for p in left] == ["bob@example.org"]
        page.reload()
        assert said(page) == "This unsubscribe link is not valid (already used or mistyped)."
        assert [p.email for p in recipients.read(settings, SITE).recipients] == ["bob@example.org"]
    finally:
        page.close()
