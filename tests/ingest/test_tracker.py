"""The tracking script in a real headless Chromium (Debian's, driven by Playwright).

Pages are served from 127.0.0.1 under made-up `.test` host names (Chromium maps them to
127.0.0.1), the script comes from the running local collector, and every assertion is on
what `pipeline.load_events` returns after the worker stored it.
"""

from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from bench.browser import CHROMIUM_ARGS, chromium_path
from pipeline.enrich.useragents import parse_client
from pipeline.ingest import tracker
from pipeline.local.emulator import free_port
from tests.support import Pipeline, wait_for

pytestmark = pytest.mark.integration
PAGES = Path(__file__).resolve().parents[1] / "pages"
SITE = "site.test"
NOT_AUTOMATED = "Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => false})"


class PageServer(ThreadingHTTPServer):
    """Serves the test pages; `collector` and `attributes` fill their placeholders."""

    daemon_threads = True
    collector = ""
    attributes = ""


class PageHandler(BaseHTTPRequestHandler):
    server: PageServer

    def do_GET(self) -> None:
        if self.path.startswith("/files/"):
            body, kind = b"%PDF-1.4 test", "application/pdf"
        else:
            name = "site.html"
            if self.path.startswith(("/from", "/long")):
                name = self.path[1:5] + ".html"
            html = (PAGES / name).read_text()
            for key, value in {
                "collector": self.server.collector,
                "attributes": self.server.attributes,
                "port": str(self.server.server_address[1]),
            }.items():
                html = html.replace("{" + key + "}", value)
            body, kind = html.encode(), "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_server() -> Iterator[PageServer]:
    server = PageServer(("127.0.0.1", free_port()), PageHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    args = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP *.test 127.0.0.1"]
    with sync_playwright() as playwright:
        # Headless Chromium names itself "HeadlessChrome", which the bot filter (rightly)
        # drops. Playwright's per-context user agent does not reach the requests a page
        # makes while it unloads (an engagement sent on leaving is finished by the browser
        # after the page is gone), so the whole browser runs as the ordinary Chrome it is.
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


@pytest.fixture
def tracked(server_settings, page_server) -> Iterator[Pipeline]:
    running = Pipeline(server_settings)
    page_server.collector = running.collector.url
    page_server.attributes = "data-outbound-links data-file-downloads"
    yield running
    running.close()


class Visit:
    """One browser context with what its pages sent and logged."""

    def __init__(self, browser: Browser, automated: bool = False, gpc: bool = False) -> None:
        probe = browser.new_page()
        real_ua = probe.evaluate("navigator.userAgent").replace("HeadlessChrome", "Chrome")
        probe.close()
        # Headless Chromium names itself "HeadlessChrome", which the bot filter (rightly)
        # drops; the visitor under test is an ordinary Chrome.
        self.context: BrowserContext = browser.new_context(user_agent=real_ua)
        self.user_agent = real_ua
        if not automated:
            self.context.add_init_script(NOT_AUTOMATED)
        if gpc:
            self.context.add_init_script(
                "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
            )
        self.pixel_requests: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.page: Page = self.context.new_page()
        self.page.on(
            "request", lambda r: self.pixel_requests.append(r.url) if "/pixel?" in r.url else None
        )
        self.page.on(
            "console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None
        )
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))

    def wait_for_pixel_requests(self, count: int, timeout_ms: int = 10_000) -> None:
        # Playwright delivers request events only while it runs, so wait through it.
        for _ in range(timeout_ms // 100):
            if len(self.pixel_requests) >= count:
                return
            self.page.wait_for_timeout(100)
        raise AssertionError(f"{len(self.pixel_requests)} pixel requests, expected {count}")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser) -> Iterator[Visit]:
    current = Visit(browser)
    yield current
    current.close()


def site_url(page_server: PageServer, path: str = "/landing") -> str:
    return f"http://{SITE}:{page_server.server_address[1]}{path}"


def events(tracked: Pipeline, count: int):
    """The stored events once `count` of them are not engagement (a page left sends one,
    tests/ingest/test_tracker_engagement.py checks them)."""
    wait_for(lambda: (tracked.events(SITE)["name"] != "engagement").sum() >= count)
    return tracked.events(SITE)


NOT_CLICKS = ["pageview", "Queued", "engagement"]


def test_a_page_load_is_one_pageview_with_path_referrer_screen_and_browser(
    tracked, page_server, visit
):
    visit.page.goto(f"http://ref.test:{page_server.server_address[1]}/from.html")
    visit.page.click("#to-site")
    visit.page.wait_for_load_state("load")
    stored = events(tracked, 2)  # the pageview, and the call queued before the script loaded
    pageview = stored[stored["name"] == "pageview"].iloc[0]
    client = parse_client(visit.user_agent)
    assert pageview["path"] == "/landing"
    assert pageview["url"] == f"{SITE}/landing?utm_source=nl&utm_campaign=nov"
    assert (pageview["referrer"], pageview["referrer_source"]) == ("ref.test/", "ref.test")
    assert pageview["screen_width"] == visit.page.evaluate("innerWidth")
    assert (pageview["browser"], pageview["browser_version"], pageview["os"]) == (
        "Chrome",
        client.browser_version,
        "Linux",
    )
    assert client.browser_version == re.search(r"Chrome/(\d+)", visit.user_agent).group(1)
    assert (stored["name"] == "pageview").sum() == 1
    assert visit.console_errors == [] and visit.page_errors == []


def test_the_snippet_copied_onto_another_host_counts_nothing(tracked, page_server, visit):
    # Someone pastes the site's snippet (data-domain="site.test") into a page of their own.
    visit.page.goto(f"http://copycat.test:{page_server.server_address[1]}/landing")
    visit.wait_for_pixel_requests(2)  # the pageview and the queued event are still sent...
    wait_for(lambda: tracked.drops(SITE).get("foreign_host", 0) == 2)  # ...and refused
    assert len(tracked.events(SITE)) == 0


def test_spa_navigations_are_pageviews_and_a_same_path_replace_is_not(tracked, page_server, visit):
    visit.page.goto(site_url(page_server))
    visit.page.evaluate("history.pushState({}, '', '/app/a')")
    visit.page.evaluate("history.pushState({}, '', '/app/b?tab=1')")
    visit.page.evaluate("history.replaceState({}, '', '/app/b?tab=2')")
    visit.page.evaluate("history.back()")
    visit.wait_for_pixel_requests(5)  # 4 pageviews + the queued event
    stored = events(tracked, 5)
    pageviews = stored[stored["name"] == "pageview"]["path"].tolist()
    # Hits travel concurrently, so arrival order (the stored time) may differ from click order.
    assert sorted(pageviews) == sorted(["/landing", "/app/a", "/app/b", "/app/a"])


def test_custom_events_from_code_from_the_queue_and_from_markup(tracked, page_server, visit):
    visit.page.goto(site_url(page_server))
    visit.page.evaluate("analytics('Purchase', {props: {plan: 'pro', seats: 3, trial: false}})")
    visit.page.click("#signup span")  # a click inside the marked element counts
    stored = events(tracked, 4)
    props = {row["name"]: row["props"] for _, row in stored.iterrows() if row["name"] != "pageview"}
    assert props == {
        "Queued": {"early": "yes"},
        "Purchase": {"plan": "pro", "seats": "3", "trial": "false"},
        "Signup": {"plan": "pro"},
    }


def test_hash_routing_when_asked(tracked, page_server, visit):
    page_server.attributes = "data-hash"
    visit.page.goto(site_url(page_server))
    visit.page.evaluate("location.hash = '#/settings'")
    visit.page.evaluate("location.hash = '#/settings'")  # the same route again: no pageview
    visit.page.evaluate("location.hash = '#/billing?tab=2'")
    stored = events(tracked, 4)
    assert sorted(stored[stored["name"] == "pageview"]["path"].tolist()) == sorted(
        [
            "/landing",
            "/landing#/settings",
            "/landing#/billing",
        ]
    )


def test_plain_anchors_are_not_pageviews_without_hash_routing(tracked, page_server, visit):
    visit.page.goto(site_url(page_server))
    visit.page.evaluate(
        "location.hash = '#/settings'; analytics('Done', {callback: () => { window.called = true }})"
    )
    stored = events(tracked, 3)
    assert stored[stored["name"] == "pageview"]["path"].tolist() == ["/landing"]
    assert visit.page.evaluate("window.called") is True


def test_an_outbound_click_and_a_file_download(tracked, page_server, visit):
    visit.page.goto(site_url(page_server))
    visit.page.click("#download")
    visit.page.goto(site_url(page_server))
    visit.page.click("#outbound")
    visit.page.wait_for_url(re.compile("elsewhere.test"))
    stored = events(tracked, 6)
    port = page_server.server_address[1]
    named = stored[~stored["name"].isin(NOT_CLICKS)]
    assert sorted(zip(named["name"], named["props"], strict=True)) == [
        ("File Download", {"url": f"http://{SITE}:{port}/files/report.pdf"}),
        ("Outbound Link: Click", {"url": f"http://elsewhere.test:{port}/landing"}),
    ]


SECRET_LINKS = {
    # A presigned download elsewhere, one on the site behind a session id, an outbound link.
    "presigned": "https://bucket.s3.test/report.pdf?X-Amz-Signature=SECRET&X-Amz-Credential=SECRET#tok",
    "session": "/files/report.pdf;jsessionid=SECRET?utm_campaign=nov&reset=SECRET#tok",
    "outbound": "https://other.test/file?X-Amz-Signature=SECRET#tok",
}


def test_link_urls_lose_query_fragment_and_path_parameters_before_they_are_sent(
    tracked, page_server, visit
):
    # The links' hosts are not served: the browser gets an empty page for them.
    visit.page.route("https://*.test/**", lambda route: route.fulfill(body="elsewhere"))
    for link_id, href in SECRET_LINKS.items():
        visit.page.goto(site_url(page_server))
        visit.page.evaluate(
            "([id, href]) => { const a = document.createElement('a'); a.id = id; a.href = href;"
            " a.textContent = id; document.body.append(a) }",
            [f"secret-{link_id}", href],
        )
        visit.page.click(f"#secret-{link_id}")
        visit.page.wait_for_load_state("load")
    stored = events(tracked, 9)  # a pageview and the queued event per visit, and the clicks
    named = stored[~stored["name"].isin(NOT_CLICKS)]
    port = page_server.server_address[1]
    assert sorted(zip(named["name"], [props["url"] for props in named["props"]], strict=True)) == [
        ("File Download", f"http://{SITE}:{port}/files/report.pdf?utm_campaign=nov"),
        ("File Download", "https://bucket.s3.test/report.pdf"),
        ("Outbound Link: Click", "https://other.test/file"),
    ]
    assert all(props.keys() == {"url"} for props in named["props"])
    # Stripped in the browser already: the secrets never travel to the collector.
    sent = " ".join(unquote(url) for url in visit.pixel_requests)
    clicks_and_pages = [url for url in visit.pixel_requests if "n=engagement" not in url]
    assert len(clicks_and_pages) == 9 and "SECRET" not in sent and "tok" not in sent


def test_internal_links_are_not_outbound(tracked, page_server, visit):
    visit.page.goto(site_url(page_server))
    visit.page.click("#internal")
    visit.page.wait_for_url(re.compile("/about"))
    stored = events(tracked, 4)
    assert set(stored["name"]) - {"engagement"} == {"pageview", "Queued"}


@pytest.mark.parametrize(
    ("automated", "gpc"),
    [
        pytest.param(True, False, id="navigator.webdriver"),
        pytest.param(False, True, id="global-privacy-control"),
    ],
)
def test_automated_browsers_and_opted_out_visitors_send_nothing(
    tracked, page_server, browser, automated, gpc
):
    current = Visit(browser, automated=automated, gpc=gpc)
    try:
        current.page.goto(site_url(page_server))
        current.page.evaluate("analytics('Signup'); history.pushState({}, '', '/next')")
        current.page.click("#signup")
        current.page.wait_for_timeout(500)
        assert current.pixel_requests == []
        assert current.page_errors == []
    finally:
        current.close()


def test_localhost_is_skipped_unless_asked(tracked, page_server, visit):
    local = f"http://127.0.0.1:{page_server.server_address[1]}/landing"
    visit.page.goto(local)
    visit.page.wait_for_timeout(500)
    assert visit.pixel_requests == []
    page_server.attributes = "data-local"
    visit.page.goto(local)
    visit.wait_for_pixel_requests(2)


def test_the_page_keeps_working_when_the_collector_is_down(tracked, page_server, visit):
    page_server.attributes = f'data-api="http://127.0.0.1:{free_port()}/pixel"'
    visit.page.goto(site_url(page_server))
    visit.page.evaluate(
        "analytics('Signup', {props: {plan: 'pro'}}); history.pushState({}, '', '/next')"
    )
    visit.page.click("#counter")
    visit.page.click("#counter")
    assert visit.page.text_content("#counter") == "2"
    assert visit.page_errors == []


def test_wrong_arguments_are_ignored_or_trimmed_without_throwing(tracked, page_server, visit):
    visit.page.goto(site_url(page_server))
    visit.page.evaluate(
        """() => {
            analytics(); analytics(5); analytics(''); analytics(null, {props: {a: 1}});
            analytics('NotObject', {props: 'plan=pro'});
            analytics('ArrayProps', {props: [1, 2]});
            const many = {}; for (let i = 0; i < 40; i++) many['k' + i] = 'v' + i;
            analytics('ManyProps', {props: many});
            analytics('LongValue', {props: {text: 'x'.repeat(100000)}});
            analytics('HugeProps', {props: Object.fromEntries([...Array(30)].map((_, i) => ['k' + i, 'y'.repeat(1000)]))});
            analytics('N'.repeat(500));
        }"""
    )
    stored = events(tracked, 8)
    props = {
        row["name"]: row["props"]
        for _, row in stored.iterrows()
        if row["name"] not in ("pageview", "Queued")
    }
    assert props == {
        "NotObject": {},
        "ArrayProps": {},
        "ManyProps": {f"k{i}": f"v{i}" for i in range(30)},
        "LongValue": {"text": "x" * 500},
        "HugeProps": {},  # 30 times 500 characters is over the 4,000-character budget of a hit
        "N" * 120: {},
    }
    assert visit.page_errors == []


def test_script_is_served_minified_with_caching_headers(tracked):
    url = f"{tracked.collector.url}/script.js"
    response = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/javascript")
    assert "max-age=3600" in response.headers["Cache-Control"]
    assert response.content == tracker.minified() and b"\n" not in response.content
    assert len(response.content) < len(tracker.SOURCE.read_bytes()) / 2
    zipped = requests.get(url, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=5)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.raw.read()) == tracker.minified()
    again = requests.get(url, headers={"If-None-Match": response.headers["ETag"]}, timeout=5)
    assert again.status_code == 304 and again.content == b""
