"""The polish rules a browser shows, in real Chromium on `streamlit run` with a week of demo
data: no Deploy button, "—" for a change without a baseline, the bucket still filling drawn as
partial, one world map drawn offline with no request to any other host, and a server that puts
no inotify watch on `.venv`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipeline.config import Settings
from pipeline.local.demo import DEMO_SITE, load_demo
from pipeline.resources import create_resources
from tests.dashboard.test_dashboard_browser import (
    browser,  # noqa: F401  (a fixture)
    dashboard_env,
    streamlit_server,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dashboard(moto_server) -> Iterator[str]:
    settings = Settings.for_prefix(f"polish{os.getpid()}", endpoint_url=moto_server)
    create_resources(settings)
    # A week of data: "last 7 days" compared with the 7 days before has no baseline.
    load_demo(settings, now=datetime.now(UTC), days=7, progress=False)
    with streamlit_server("streamlit_app.py", dashboard_env(settings, DEMO_SITE)) as url:
        yield url


def settle(page, quiet_ms: int = 1500, timeout_ms: int = 120_000) -> None:
    """Until no script run has been shown for `quiet_ms`. Streamlit's status widget also holds
    the "File change. Rerun" prompt when a source file changes under the running server (other
    work in the same checkout): that prompt is not a run, so it does not count."""
    quiet, status = 0, page.locator('[data-testid="stStatusWidget"]')
    for _ in range(timeout_ms // 250):
        running = status.count() > 0 and "File change" not in " ".join(status.all_inner_texts())
        quiet = 0 if running else quiet + 250
        if quiet >= quiet_ms:
            return
        page.wait_for_timeout(250)
    raise AssertionError("the page was still running")


def open_settled(browser, url: str, requests: list[str] | None = None):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    if requests is not None:
        page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    page.get_by_role("heading", level=1).first.wait_for(timeout=90_000)
    page.wait_for_load_state("load")
    settle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    return page


def server_pid(url: str) -> int:
    """The pid of the `streamlit run` this module started, found by its port."""
    port = str(urlsplit(url).port)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(argv) and port.encode() in argv:
            return int(entry.name)
    raise AssertionError(f"no streamlit process on port {port}")


def inotify_inodes(pid: int) -> set[int]:
    """The inode of every directory the process watches with inotify."""
    watched: set[int] = set()
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            lines = info.read_text().splitlines()
        except OSError:  # a descriptor closed meanwhile
            continue
        for line in lines:
            if line.startswith("inotify wd:"):
                fields = dict(part.split(":", 1) for part in line.split()[1:] if ":" in part)
                watched.add(int(fields["ino"], 16))
    return watched


def test_overview_has_no_deploy_a_dash_for_no_baseline_and_a_partial_today(
    dashboard,
    browser,  # noqa: F811
    artifacts_dir,
):
    page = open_settled(browser, f"{dashboard}/?period=7d&compare=previous")
    page.screenshot(path=str(artifacts_dir / "polish-overview.png"), full_page=True)
    # The viewer toolbar: no Deploy button in the header.
    assert page.locator('[data-testid="stAppDeployButton"]').count() == 0
    assert page.get_by_role("button", name="Deploy").count() == 0
    # Six cards, each with "—" as its change (the week before holds no data), no arrow.
    deltas = page.locator('[data-testid="stMetricDelta"]')
    assert deltas.count() == 6
    assert {text.strip() for text in deltas.all_inner_texts()} >= {"—"}
    assert all(text.strip().startswith("—") for text in deltas.all_inner_texts())
    assert page.locator('[data-testid="stMetricDelta"] svg').count() == 0
    # Today is still filling: drawn as its own dotted, hollow-ended trace.
    legend = page.locator(".legendtext").evaluate_all("texts => texts.map(t => t.textContent)")
    assert "Visitors" in legend and "Visitors (so far)" in legend
    page.close()


def test_geography_draws_one_map_offline(dashboard, browser, artifacts_dir):  # noqa: F811
    seen: list[str] = []
    page = open_settled(browser, f"{dashboard}/geography?period=7d", seen)
    page.locator(".geo .choroplethlocation").first.wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts_dir / "polish-geography.png"), full_page=True)
    # One map: plotly's world with country shapes drawn from the app's own world file.
    assert page.locator('[data-testid="stDeckGlJsonChart"]').count() == 0
    assert page.locator(".js-plotly-plot .geo").count() == 1
    assert page.locator(".geo .choroplethlocation").count() > 0
    assert page.locator(".geo .countries path, .geo path.countries").count() > 0
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(dashboard))
    assert any(url.startswith(f"{origin}/app/static/world_110m.json") for url in seen)
    elsewhere = [
        url
        for url in seen
        if not url.startswith(f"{origin}/") and urlsplit(url).scheme not in ("data", "blob")
    ]
    assert elsewhere == []
    page.close()


def test_the_server_watches_nothing_inside_the_venv(dashboard, browser):  # noqa: F811
    # The watcher starts with the first session: open a page first.
    open_settled(browser, f"{dashboard}/?period=today").close()
    venv = ROOT / ".venv"
    venv_dirs = {os.stat(path).st_ino for path, _, _ in os.walk(venv)}
    assert len(venv_dirs) > 100  # the check looks at a real virtualenv
    assert inotify_inodes(server_pid(dashboard)) & venv_dirs == set()
