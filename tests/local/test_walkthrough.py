"""The README's local walkthrough, executed: `make local` as the Makefile runs it, the README's
snippet (as local mode prints it) in a page on 127.0.0.1, a real Chromium visiting it and
following a link, and the dashboard, started with the README's command, counting the visitor.

Everything comes from the README's section: its commands, its snippet, its default ports. When
the README drifts from what the code does, this test fails.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from bench.browser import CHROMIUM_ARGS, chromium_path
from pipeline import load_drops, load_events
from pipeline.local.emulator import free_port
from pipeline.local.mode import parse_args
from pipeline.stack import settings_from_env
from tests.dashboard.test_dashboard_browser import streamlit_server, wait_until_idle
from tests.servers import stop, wait_until_up
from tests.support import wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Collect from a page on this machine"
NOT_AUTOMATED = "Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => false})"
SITE = "example.com"


@dataclass(frozen=True)
class Walkthrough:
    start: str  # the command that starts local collection
    snippet: str  # the tag to paste, with the default port
    dashboard_env: dict[str, str]  # the dashboard command's variables
    dashboard: str  # the dashboard command itself


def _command(block: str) -> str:
    lines = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    commands = [line for line in lines if line]
    assert len(commands) == 1, commands
    return commands[0]


def read_walkthrough(readme: str) -> Walkthrough:
    assert SECTION in readme, f"the README has no {SECTION!r} section"
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)
    assert [kind for kind, _ in blocks] == ["sh", "html", "sh"], blocks
    words = shlex.split(_command(blocks[2][1]))
    env = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word))
    return Walkthrough(
        start=_command(blocks[0][1]),
        snippet=blocks[1][1].strip(),
        dashboard_env=env,
        dashboard=" ".join(word for word in words if word.split("=", 1)[0] not in env),
    )


def make_recipe(target: str) -> list[str]:
    """The Makefile's one-line recipe for `target`, as words."""
    makefile = (ROOT / "Makefile").read_text()
    found = re.search(rf"^{target}:.*\n\t(.+)$", makefile, flags=re.M)
    assert found, f"no {target} target in the Makefile"
    return shlex.split(found.group(1))


def test_the_readme_walkthrough_names_what_the_code_does():
    walk = read_walkthrough((ROOT / "README.md").read_text())
    defaults = parse_args([])
    assert walk.start == "make local"
    assert make_recipe("local") == ["$(PY)", "-m", "pipeline.local"]
    assert walk.dashboard == "make run"
    assert make_recipe("run")[1:3] == ["run", "streamlit_app.py"]
    # The README's ports are local mode's defaults, and its snippet has what the tracker needs
    # on a 127.0.0.1 page (data-local: without it the script sends nothing there).
    assert f'src="http://127.0.0.1:{defaults.collector_port}/script.js"' in walk.snippet
    assert re.match(r"^<script defer data-local data-domain=\"[^\"]+\" src=", walk.snippet)
    assert walk.dashboard_env == {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{defaults.emulator_port}"}


class LocalMode:
    """The README's `make local` (the Makefile's recipe) on free ports and a temp data dir."""

    def __init__(self, tmp: Path) -> None:
        defaults = parse_args([])
        self.default_ports = (defaults.emulator_port, defaults.collector_port)
        self.emulator_port, self.collector_port = free_port(), free_port()
        command = [sys.executable if word == "$(PY)" else word for word in make_recipe("local")]
        self.stderr = (tmp / "local-stderr.log").open("w")
        self.process = subprocess.Popen(
            [*command, "--emulator-port", str(self.emulator_port),
             "--collector-port", str(self.collector_port), "--data-dir", str(tmp / "data")],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def with_ports(self, text: str) -> str:
        """`text` from the README with this run's ports for the default ones."""
        emulator, collector = self.default_ports
        return text.replace(f"127.0.0.1:{collector}", f"127.0.0.1:{self.collector_port}").replace(
            f"127.0.0.1:{emulator}", f"127.0.0.1:{self.emulator_port}"
        )

    def printed(self, label: str) -> str:
        for line in self.lines:
            if line.startswith(label):
                return line[len(label) :].strip()
        return ""


@contextmanager
def local_mode(tmp: Path) -> Iterator[LocalMode]:
    run = LocalMode(tmp)
    try:
        try:
            wait_until_up(f"http://127.0.0.1:{run.collector_port}/health", run.process)
            wait_for(lambda: bool(run.printed("Dashboard:")), timeout=30)
        except (RuntimeError, AssertionError) as exc:
            run.stderr.flush()
            log = (tmp / "local-stderr.log").read_text()[-3000:]
            raise AssertionError(f"local mode did not start ({exc}):\n{log}") from exc
        yield run
    finally:
        stop(run.process)
        run.stderr.close()


@contextmanager
def page_server(snippet: str) -> Iterator[str]:
    """A two-page site on 127.0.0.1 whose pages carry `snippet` in their head."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            title = "Pricing" if self.path.startswith("/pricing") else "Home"
            body = (
                f"<!doctype html><html><head><title>{title}</title>{snippet}</head>"
                f'<body><h1>{title}</h1><a id="next" href="/pricing">Pricing</a></body></html>'
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # The engagement a page sends as it unloads is finished by the browser itself, with
        # the browser's own user agent ("HeadlessChrome", a bot): the whole browser runs as
        # the ordinary Chrome it is (a context's user agent does not reach those requests).
        probe = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            agent = probe.new_page().evaluate("navigator.userAgent")
        finally:
            probe.close()
        launched = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=[*CHROMIUM_ARGS, f"--user-agent={agent.replace('HeadlessChrome', 'Chrome')}"],
        )
        try:
            yield launched
        finally:
            launched.close()


def visit_and_click(browser: Browser, url: str) -> None:
    """A person's visit: open the page, follow its link. Headless Chromium calls itself
    "HeadlessChrome" and sets navigator.webdriver, which the bot filter and the tracker
    (rightly) refuse; this visitor is an ordinary Chrome."""
    probe = browser.new_page()
    ua = probe.evaluate("navigator.userAgent").replace("HeadlessChrome", "Chrome")
    probe.close()
    context = browser.new_context(user_agent=ua)
    context.add_init_script(NOT_AUTOMATED)
    try:
        page = context.new_page()
        with page.expect_response(lambda r: "/pixel?" in r.url, timeout=30_000):
            page.goto(url)
        with page.expect_response(lambda r: "/pixel?" in r.url, timeout=30_000):
            page.click("#next")
        page.get_by_role("heading", name="Pricing").wait_for()
    finally:
        context.close()


def visitors_shown(page) -> int:
    card = page.locator('[data-testid="stMetric"]').filter(has_text="Unique visitors").first
    card.wait_for(timeout=90_000)
    value = card.locator('[data-testid="stMetricValue"]').inner_text()
    return int(re.sub(r"[^\d]", "", value) or 0)


def test_the_readme_walkthrough_counts_a_chromium_visit_on_the_dashboard(
    tmp_path, browser, artifacts_dir
):
    walk = read_walkthrough((ROOT / "README.md").read_text())
    with local_mode(tmp_path) as run:
        snippet = run.with_ports(walk.snippet)
        # What local mode prints is what the README shows, with this run's ports.
        assert run.printed("Snippet:") == snippet
        assert run.printed("Script:") == f"http://127.0.0.1:{run.collector_port}/script.js"
        dashboard_env = {name: run.with_ports(value) for name, value in walk.dashboard_env.items()}
        shown_command = " ".join(f"{k}={v}" for k, v in dashboard_env.items()) + " make run"
        assert run.printed("Dashboard:").startswith(shown_command)
        assert "127.0.0.1" in "".join(run.lines)  # it says which page hosts it counts

        started = datetime.now(UTC)
        with page_server(snippet) as site_url:
            visit_and_click(browser, f"{site_url}/")

        settings = settings_from_env(endpoint_url=dashboard_env["AWS_ENDPOINT_URL"])
        window = (started - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=5))

        def stored():
            return load_events(SITE, *window, settings=settings)

        wait_for(lambda: len(stored()) >= 2, timeout=60)
        events = stored()
        pageviews = events[events["name"] == "pageview"]
        assert sorted(pageviews["path"]) == ["/", "/pricing"]
        # Leaving a page sends its engagement (engaged time, scroll depth): never another path.
        assert set(events["name"]) <= {"pageview", "engagement"}
        assert set(events.loc[events["name"] == "engagement", "path"]) <= {"/", "/pricing"}
        assert set(events["hostname"]) == {"127.0.0.1"}
        assert set(events["browser"]) == {"Chrome"} and events["visitor"].nunique() == 1
        assert load_drops(SITE, *window, settings=settings).sum() == 0  # nothing foreign_host

        env = os.environ | dashboard_env
        with streamlit_server(make_recipe("run")[2], env) as dashboard:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            try:
                page.goto(f"{dashboard}/")
                page.get_by_role("heading", level=1).first.wait_for(timeout=90_000)
                wait_until_idle(page)
                # md_escape puts invisible word joiners in the title; a reader doesn't see them.
                title = page.get_by_role("heading", level=1).first.inner_text()
                assert SITE in title.replace("\u2060", "")
                assert f"site={SITE}" in page.url
                assert visitors_shown(page) >= 1
                assert page.locator('[data-testid="stException"]').count() == 0
            except Exception:
                page.screenshot(path=str(artifacts_dir / "walkthrough-failed.png"), full_page=True)
                raise
            finally:
                page.close()
    assert run.process.poll() is not None  # stopped
