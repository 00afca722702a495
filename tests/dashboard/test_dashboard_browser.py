"""`streamlit run` in a real headless Chromium: every page renders, screenshots are saved, and
an event whose path is markup shows as text and runs nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, sync_playwright

from bench.browser import CHROMIUM_ARGS, chromium_path
from pipeline.config import Settings, resource_env
from pipeline.consume.consumer import Consumer
from pipeline.ingest.contract import build_message, encode_message
from pipeline.local.demo import DEMO_SITE, load_demo
from pipeline.local.emulator import free_port
from pipeline.ops import recipients, reports
from pipeline.resources import create_resources
from tests.conftest import CHROME_UA

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
XSS_PATH = "/<img src=x onerror=alert(1)>"
PAGES = {"": "Overview", "top_pages": "Pages", "sources": "Sources", "geography": "Geography", "devices": "Devices", "goals": "Goals & funnels", "realtime": "Real time", "explorer": "Explorer", "health": "Pipeline health"}  # fmt: skip


@pytest.fixture(scope="module")
def dashboard(moto_server, tmp_path_factory) -> Iterator[str]:
    settings = Settings.for_prefix(f"ui{os.getpid()}", endpoint_url=moto_server)
    create_resources(settings)
    now = datetime.now(UTC)
    load_demo(settings, now=now, days=7, progress=False)
    xss = encode_message(
        build_message(
            f"d={DEMO_SITE}&u=https%3A%2F%2F{DEMO_SITE}{requests.utils.quote(XSS_PATH)}&n=%3Cscript%3Ealert(2)%3C%2Fscript%3E",
            {"User-Agent": CHROME_UA},
            "203.0.113.9",
            int((now - timedelta(minutes=3)).timestamp() * 1000),
            "xss-1",
        )
    )
    assert Consumer(settings).process([{"messageId": "xss", "body": xss}]).stored == 1
    # An engagement for a page its visitor never viewed (another address, no pageview): no
    # page counts it, the health page says so, and the live feed shows no engagement.
    orphan = encode_message(
        build_message(
            f"d={DEMO_SITE}&u=https%3A%2F%2F{DEMO_SITE}%2Fnever-viewed&n=engagement&e=5000&sd=40",
            {"User-Agent": CHROME_UA},
            "203.0.113.77",
            int((now - timedelta(minutes=2)).timestamp() * 1000),
            "orphan-1",
        )
    )
    assert Consumer(settings).process([{"messageId": "orphan", "body": orphan}]).stored == 1
    # A weekly report SES refuses (its sender is not verified): the health page says why.
    recipients.add_recipient(settings, DEMO_SITE, "ann@example.org", {"weekly"})
    sending = settings.with_overrides(report_sender="reports@example.org")
    assert reports.run_due(sending, now=now)["report_failures"] == 1
    with streamlit_server("streamlit_app.py", dashboard_env(settings, DEMO_SITE)) as url:
        yield url


def dashboard_env(settings: Settings, site: str) -> dict[str, str]:
    """The dashboard's environment for `settings` (an endpoint on moto's server), opening `site`."""
    return os.environ | resource_env(settings) | {"PIPELINE_SITE": site}


@contextmanager
def streamlit_server(
    script: str | Path, env: dict[str, str], timeout_s: float = 90
) -> Iterator[str]:
    """`streamlit run script` on a free port of 127.0.0.1 until the block ends. Any error while
    waiting counts as "not up yet"; the server is stopped whatever happens."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while not _healthy(url):
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with {process.returncode} before answering")
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer within {timeout_s:.0f} s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def recording_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that records the path of every request it gets: the address
    an injected image or link would make a browser fetch."""
    seen: list[str] = []

    class Record(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:  # the test reads `seen`, not stderr
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/_stcore/health", timeout=1).ok
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def wait_until_idle(page, quiet_ms: int = 1500, timeout_ms: int = 90_000) -> None:
    """Until Streamlit's "running" indicator has stayed away for `quiet_ms` (it flickers off
    between reruns), so the checks below see the whole page, not its first lines."""
    quiet = 0
    for _ in range(timeout_ms // 250):
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        quiet = 0 if running else quiet + 250
        if quiet >= quiet_ms:
            return
        page.wait_for_timeout(250)
    raise AssertionError("the page was still running")


@pytest.mark.parametrize("path", list(PAGES), ids=[name or "overview" for name in PAGES])
def test_every_page_renders_in_chromium_without_an_exception(
    dashboard, browser, artifacts_dir, path
):
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{dashboard}/{path}?period=7d")
    page.get_by_role("heading", level=1).first.wait_for(timeout=90_000)
    # Not "networkidle": the map asks an unreachable basemap host, which may never settle.
    page.wait_for_load_state("load")
    wait_until_idle(page)
    page.screenshot(path=str(artifacts_dir / f"dashboard-{path or 'overview'}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert dialogs == []
    page.close()


def test_markup_in_event_data_shows_as_text_and_runs_nothing(dashboard, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{dashboard}/realtime")
    page.get_by_text("Live feed").wait_for(timeout=90_000)
    page.wait_for_timeout(2000)
    feed = page.locator('[data-testid="stDataFrame"]').last
    feed.wait_for()
    page.goto(f"{dashboard}/explorer?period=today")
    page.get_by_text("events").first.wait_for(timeout=60_000)
    page.get_by_label("Search every column").fill("onerror")
    page.keyboard.press("Enter")
    page.get_by_text("1 events").wait_for(timeout=30_000)
    assert dialogs == []
    assert page.locator("img[src=x]").count() == 0
    page.close()


def test_engagement_stays_out_of_the_live_feed_and_the_health_page_counts_orphans_and_report_errors(
    dashboard, browser
):
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(f"{dashboard}/realtime")
    page.get_by_text("Live feed").wait_for(timeout=90_000)
    wait_until_idle(page)
    feed = page.locator('[data-testid="stDataFrame"]').last
    cells = feed.locator('table[role="grid"] tbody td').all_inner_texts()
    assert "Pageview" in cells  # the feed has the demo's recent hits
    assert not any(cell.strip() == "engagement" for cell in cells)
    page.goto(f"{dashboard}/health")
    page.get_by_text("Dropped hits, last 30 days").wait_for(timeout=90_000)
    wait_until_idle(page)
    assert page.get_by_text("count for no page").count() == 1
    page.get_by_text("Reports and notifications").wait_for(timeout=30_000)
    assert page.get_by_text("No sender configured").count() == 1
    refused = page.locator('[data-testid="stAlert"]', has_text="SES rejected the message")
    # The page shows the text, not Markdown: only md_escape's invisible word joiners remain.
    assert refused.count() == 1 and refused.inner_text().replace("\u2060", "").startswith(
        f"{DEMO_SITE}: weekly report for "
    )
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()
