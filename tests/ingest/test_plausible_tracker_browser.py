"""Plausible's official npm tracker, unchanged, in a real headless Chromium (Debian's, driven by
Playwright), pointed at the local collector's `POST /api/event`.

The package is fetched with `npm pack` at test time (tests/plausible_npm.py) and loaded as its
README shows: `import { init, track } from '@plausible-analytics/tracker'`, the bare name
resolved by an import map. Pages are served from 127.0.0.1 under made-up `.test` host names
(the tracker ignores localhost), and every assertion is on what the tracker sent (read off the
browser's requests) against what `pipeline.load_events` returns after the worker stored it,
then on one number of the dashboard in Chromium.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, sync_playwright

from bench.browser import CHROMIUM_ARGS, chromium_path
from pipeline.config import Settings
from pipeline.enrich.urls import strip_link_url, strip_url
from pipeline.local.emulator import free_port
from tests.conftest import create_test_resources
from tests.dashboard.test_dashboard_browser import dashboard_env, streamlit_server, wait_until_idle
from tests.plausible_npm import PACKAGE, NpmUnavailable, tracker_package
from tests.support import Pipeline, wait_for

pytestmark = pytest.mark.integration
SITE = "site.test"
ENDPOINT_PATH = "/api/event"
# Headless Chromium sets navigator.webdriver, which the tracker (rightly) refuses to count; the
# visitor under test is an ordinary browser.
NOT_AUTOMATED = "Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => false})"
MODULE_URL = f"/node_modules/{PACKAGE}/plausible.js"

# The app a site would write: init once, a custom event with props on a button, a client-side
# route change, a download and an outbound link. Tall, so scroll depth is a real fraction.
APP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>App</title>
<script type="importmap">{"imports": {"%(package)s": "%(module)s"}}</script>
<script type="module">
  import { init, track } from '%(package)s'
  init({ domain: '%(site)s', endpoint: '%(endpoint)s', outboundLinks: true, fileDownloads: true,
         hashBasedRouting: %(hash)s })
  window.answers = []
  document.getElementById('signup').addEventListener('click', () =>
    track('Signup', { props: { plan: 'pro' }, callback: (result) => window.answers.push(result) }))
  document.getElementById('next').addEventListener('click', () =>
    history.pushState({}, '', '/app/second'))
  document.getElementById('route').addEventListener('click', () => { location.hash = '#/pricing' })
  window.trackerReady = true
</script></head>
<body style="margin:0"><div style="height:4000px">
<h1>App</h1>
<button id="signup">Sign up</button> <button id="next">Next</button>
<button id="route">Pricing</button>
<a id="download" href="/files/report.pdf">Report</a>
<a id="outbound" href="http://elsewhere.test:%(port)s/landing">Elsewhere</a>
</div></body></html>
"""


class PageServer(ThreadingHTTPServer):
    daemon_threads = True
    collector = ""
    package: Path


class PageHandler(BaseHTTPRequestHandler):
    server: PageServer

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        headers = {}
        if path == MODULE_URL:
            body, kind = (self.server.package / "plausible.js").read_bytes(), "text/javascript"
        elif path.startswith("/files/"):
            body, kind = b"%PDF-1.4 test", "application/pdf"
            headers["Content-Disposition"] = 'attachment; filename="report.pdf"'
        elif path.startswith(("/app", "/hash")):
            html = APP_PAGE % {
                "package": PACKAGE,
                "module": MODULE_URL,
                "site": SITE,
                "endpoint": f"{self.server.collector}{ENDPOINT_PATH}",
                "hash": "true" if path.startswith("/hash") else "false",
                "port": self.server.server_address[1],
            }
            body, kind = html.encode(), "text/html; charset=utf-8"
        else:
            body, kind = b"<!doctype html><title>Elsewhere</title><h1>Elsewhere</h1>", "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def package(request: pytest.FixtureRequest) -> Path:
    # pytest's cache folder (.pytest_cache, ignored by git) when there is one, else /tmp's.
    cache = getattr(request.config, "cache", None)
    folder = (
        cache.mkdir("plausible-npm") if cache else Path(tempfile.gettempdir()) / "plausible-npm"
    )
    try:
        return tracker_package(folder)
    except NpmUnavailable as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def settings_here(moto_server: str) -> Settings:
    """Resources of this module on the shared moto server (module-scoped: one pipeline and one
    dashboard for every test here)."""
    current = Settings.for_prefix(f"pt{uuid.uuid4().hex[:8]}", endpoint_url=moto_server)
    create_test_resources(current)
    return current


@pytest.fixture(scope="module")
def tracked(settings_here: Settings) -> Iterator[Pipeline]:
    running = Pipeline(settings_here)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def page_server(package: Path, tracked: Pipeline) -> Iterator[PageServer]:
    server = PageServer(("127.0.0.1", free_port()), PageHandler)
    server.collector = tracked.collector.url
    server.package = package
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    args = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP *.test 127.0.0.1"]
    with sync_playwright() as playwright:
        # Headless Chromium names itself "HeadlessChrome", which the bot filter (rightly)
        # drops; requests sent while a page unloads keep the browser's own user agent, so the
        # whole browser runs as the ordinary Chrome it is (as tests/ingest/test_tracker.py).
        probe = playwright.chromium.launch(executable_path=chromium_path(), args=args)
        try:
            agent = probe.new_page().evaluate("navigator.userAgent")
        finally:
            probe.close()
        agent = agent.replace("HeadlessChrome", "Chrome")
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), args=[*args, f"--user-agent={agent}"]
        )
        try:
            yield launched
        finally:
            launched.close()


class Visit:
    """One browser context, with every event body the tracker sent and the answers it got."""

    def __init__(self, browser: Browser) -> None:
        self.context: BrowserContext = browser.new_context(accept_downloads=True)
        self.context.add_init_script(NOT_AUTOMATED)
        self.sent: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self.page: Page = self.context.new_page()
        self.page.on("request", self._request)
        self.page.on("response", lambda r: self._is_event(r.request) and self.statuses.append(r.status))  # fmt: skip
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    @staticmethod
    def _is_event(request: Request) -> bool:
        return request.method == "POST" and request.url.endswith(ENDPOINT_PATH)

    def _request(self, request: Request) -> None:
        if self._is_event(request):
            self.sent.append(json.loads(request.post_data or "null"))

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_function("window.trackerReady === true", timeout=30_000)

    def wait_sent(self, count: int, timeout_ms: int = 15_000) -> None:
        # Playwright delivers request events only while it runs: wait through it.
        for _ in range(timeout_ms // 100):
            if len(self.sent) >= count:
                return
            self.page.wait_for_timeout(100)
        raise AssertionError(f"the tracker sent {len(self.sent)} events, expected {count}")

    def names(self) -> list[str]:
        return [body["n"] for body in self.sent]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Browser) -> Iterator[Visit]:
    current = Visit(browser)
    try:
        yield current
    finally:
        current.close()


def site_url(server: PageServer, path: str) -> str:
    return f"http://{SITE}:{server.server_address[1]}{path}"


def stored_after(tracked: Pipeline, predicate, timeout: float = 45.0) -> pd.DataFrame:
    """The stored events of the site once `predicate(frame)` holds."""
    wait_for(lambda: predicate(tracked.events(SITE)), timeout=timeout)
    return tracked.events(SITE)


def one(frame: pd.DataFrame, **where: str) -> pd.Series:
    chosen = frame
    for column, value in where.items():
        chosen = chosen[chosen[column] == value]
    assert len(chosen) == 1, f"{len(chosen)} stored events with {where}"
    return chosen.iloc[0]


def path_of(body: dict[str, Any]) -> str:
    return strip_url(body["u"]).path


def test_the_npm_tracker_pageviews_spa_navigation_events_clicks_and_engagement_are_stored(
    tracked, page_server, visit
):
    visit.open(site_url(page_server, "/app/start?utm_source=newsletter&token=secret"))
    visit.wait_sent(1)
    visit.page.mouse.wheel(0, 1500)  # the deepest scroll, reported with the page's engagement
    visit.page.wait_for_function("window.scrollY >= 1000")
    depth = visit.page.evaluate(
        "Math.round((scrollY + innerHeight) / document.documentElement.scrollHeight * 100)"
    )
    visit.page.click("#signup")
    visit.page.wait_for_function("window.answers.length === 1")
    # The tracker read Plausible's answer through CORS (an unreadable answer is an `error`).
    assert visit.page.evaluate("window.answers") == [{"status": 202}]
    visit.page.click("#next")  # pushState: the first page's engagement, then a pageview
    visit.wait_sent(4)
    visit.page.click("#download")
    visit.wait_sent(5)
    visit.page.click("#outbound")  # leaves the page: a click, then the last page's engagement
    visit.page.get_by_role("heading", name="Elsewhere").wait_for()

    assert set(visit.statuses) == {202}, visit.statuses
    names = visit.names()
    assert names[:6] == [
        "pageview", "Signup", "engagement", "pageview", "File Download", "Outbound Link: Click",
    ], names  # fmt: skip

    # The engagement of the page left by the outbound link is sent while it unloads, which
    # Playwright may not report: it is looked for in what was stored.
    def complete(frame: pd.DataFrame) -> bool:
        left = set(frame.loc[frame["name"] == "engagement", "path"])
        return {"/app/start", "/app/second"} <= left and len(frame) >= 7

    stored = stored_after(tracked, complete)
    assert sorted(stored["name"]) == sorted([*names[:6], "engagement"])
    start, second = stored[stored["name"] == "pageview"].sort_values("ts").iloc[:2].itertuples()
    assert (start.path, second.path) == ("/app/start", "/app/second")
    # Only utm_* of the query is kept, as for the pixel, and the browser is known without its
    # User-Agent being stored.
    assert (start.url, second.url) == (
        f"{SITE}/app/start?utm_source=newsletter",
        f"{SITE}/app/second",
    )
    assert start.utm_source == "newsletter"
    assert (start.browser, start.os, start.device) == ("Chrome", "Linux", "Desktop")
    assert "secret" not in stored.to_json(date_format="iso")

    signup = one(stored, name="Signup")
    assert (signup.path, signup.props) == ("/app/start", {"plan": "pro"})
    download = one(stored, name="File Download")
    outbound = one(stored, name="Outbound Link: Click")
    sent = {body["n"]: body for body in visit.sent}
    assert download.props == {"url": strip_link_url(sent["File Download"]["p"]["url"])}
    assert download.props["url"].endswith("/files/report.pdf")
    assert outbound.props == {
        "url": f"http://elsewhere.test:{page_server.server_address[1]}/landing"
    }
    assert (download.path, outbound.path) == ("/app/second", "/app/second")

    # Engagement: the engaged time and deepest scroll the tracker measured, per page left.
    first_engagement = visit.sent[2]
    assert first_engagement["sd"] == depth  # the viewport's bottom, as a share of the page
    engaged = stored[stored["name"] == "engagement"].sort_values("ts")
    left_first = engaged.iloc[0]
    assert left_first.path == "/app/start"
    assert (left_first.engagement_ms, left_first.scroll_depth) == (
        first_engagement["e"],
        first_engagement["sd"],
    )
    assert left_first.engagement_ms > 0
    assert set(engaged["path"]) == {"/app/start", "/app/second"}
    assert ((engaged["scroll_depth"] > 0) & (engaged["scroll_depth"] <= 100)).all()
    assert visit.errors == []


def test_hash_routes_and_the_dashboard_count_what_the_tracker_sent(
    tracked, settings_here, page_server, visit, browser
):
    visit.open(site_url(page_server, "/hash"))
    visit.wait_sent(1)
    visit.page.click("#route")
    visit.wait_sent(3)  # the first route's engagement, then the new route's pageview
    pageviews = [body for body in visit.sent if body["n"] == "pageview"]
    assert [body.get("h") for body in pageviews] == [1, 1]  # hash mode, as Plausible marks it
    assert pageviews[1]["u"].endswith("/hash#/pricing")

    stored = stored_after(tracked, lambda f: f["path"].str.startswith("/hash").sum() >= 3)
    paths = set(stored.loc[stored["name"] == "pageview", "path"])
    assert {"/hash", "/hash#/pricing"} <= paths  # the route is part of the page, as in Plausible
    assert visit.errors == []

    # The dashboard, in Chromium, shows the pageviews the tracker sent today.
    expected = int((stored["name"] == "pageview").sum())
    assert expected >= 2
    with streamlit_server("streamlit_app.py", dashboard_env(settings_here, SITE)) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        try:
            page.goto(f"{url}/?period=today")
            card = page.locator('[data-testid="stMetric"]').filter(has_text="Total pageviews").first
            card.wait_for(timeout=90_000)
            wait_until_idle(page)
            shown = card.locator('[data-testid="stMetricValue"]').inner_text()
        finally:
            page.close()
    assert int(re.sub(r"[^\d]", "", shown)) == expected


def test_without_npm_the_fixture_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on it
    with pytest.raises(NpmUnavailable, match=r"npm is not installed.*apt-get install npm"):
        tracker_package(tmp_path / "cache")
