"""The dashboard's speed as a user sees it, in real Chromium (issue 13's targets).

Each run starts `streamlit run streamlit_app.py` as `make run` does (no AWS configured, so the
embedded demo) and measures, in headless Debian Chromium driven by Playwright:

- (a) process start → the Overview's six cards show numbers (target ≤ 10 s);
- (b) every unfiltered interaction, click → settled page (target ≤ 1.5 s each): period → 12
  months, compare with the previous period on 12 months, → month to date, → today, back to 30
  days, the chart's metric, a switch to Pages, Sources, Geography, Devices and back to Overview;
  a time-zone change is reported apart (another zone than the site's may read raw events);
- (c) a filter added by clicking a row of Top sources, and removed by its chip ✕ (≤ 3 s).

"Settled" is measured in the page: Streamlit's app root carries `data-test-script-state`; the
clock stops when, after the click, a script run has started and ended, no status widget shows,
the expected content is there (URL, title, cards with digits), and all of that stays so for
`QUIET_S` (so a run that reruns itself is not taken as settled). A measure that raises, shows
an exception, or never settles is reported as failed and the run goes on from a fresh page.

Each interaction is timed twice per run: first (cold query caches, what a user sees the first
time) and again (cached). Figures are the median over runs, each on a fresh server. Not a
timed test: run it on a quiet machine and copy its table into bench/RESULTS.md with `uptime`.

Run: `python -m bench.dashboard_speed [--runs 5] [--root DIR]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from bench.browser import launch
from pipeline.local.emulator import free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 180
STEP_TIMEOUT_S = int(os.environ.get("SPEED_STEP_TIMEOUT_S", "120"))
FILTER_TIMEOUT_S = 45  # 15× the target: a rerun loop must not cost two minutes a run
QUIET_S = 0.6
VIEWPORT = {"width": 1500, "height": 1100}
TARGETS = {"start": 10.0, "interaction": 1.5, "filter": 3.0}
# Variables that would point the dashboard at an AWS other than the embedded demo.
BACKEND_VARIABLES = ("AWS_", "PIPELINE_")

# Runs in the page before Streamlit's own code: samples the script-run state every 10 ms, so a
# run that starts and ends between two Python-side polls is still seen.
MONITOR_JS = """
window.__speed = {starts: 0, state: null, settledAt: null};
setInterval(() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const state = app ? app.getAttribute('data-test-script-state') : null;
  if (state !== window.__speed.state) {
    if (state === 'running') window.__speed.starts += 1;
    window.__speed.state = state;
  }
}, 10);
"""
CARDS_JS = """() => {
  const values = [...document.querySelectorAll('[data-testid="stMetricValue"]')];
  return values.length >= 6 && values.every(v => /\\d/.test(v.textContent));
}"""
# True once the page has been settled (and `expected` true) for `quiet` ms; records when.
SETTLED_JS = """([before, quiet, expected]) => {
  const s = window.__speed;
  const ok = s.starts > before && s.state === 'notRunning'
    && !document.querySelector('[data-testid="stStatusWidget"]')
    && (new Function('return (' + expected + ')()'))();
  if (!ok) { s.settledAt = null; return false; }
  if (s.settledAt === null) s.settledAt = performance.now();
  return performance.now() - s.settledAt >= quiet;
}"""


class Failed(Exception):
    """A measure that did not reach its settled page."""


@dataclass(frozen=True)
class Step:
    name: str
    kind: str  # "interaction", "zone" or "filter": which target applies
    act: Callable[[Page], None]  # what the user does, up to (not including) the timed click
    click: Callable[[Page], None]  # the timed click
    expected: str  # JS function: the settled page shows what the click asked for


def _params_js(*checks: str) -> str:
    """JS: the URL's query satisfies every check (`key=value`, `!key=value` or `!key`)."""
    tests = []
    for check in checks:
        negate, body = check.startswith("!"), check.lstrip("!")
        key, _, value = body.partition("=")
        test = f"p.get({key!r}) === {value!r}" if value else f"p.has({key!r})"
        if key.endswith("*"):
            test = f"[...p.keys()].some(k => k.startsWith({key[:-1]!r}))"
        tests.append(f"!({test})" if negate else test)
    return "new URLSearchParams(location.search)", " && ".join(tests) or "true"


def expect(*params: str, path: str | None = None, title: str = "", cards: bool = False) -> str:
    """JS function: URL params, path, page title and cards as a settled page shows them."""
    query, tests = _params_js(*params)
    parts = [tests, "!document.querySelector('[data-testid=\"stException\"]')"]
    if path is not None:
        parts.append(f"location.pathname.replace(/\\/$/, '') === {('/' + path).rstrip('/')!r}")
    if title:
        parts.append(
            "[...document.querySelectorAll('[data-testid=\"stMain\"] h1')]"
            f".some(h => h.textContent.trim().startsWith({title!r}))"
        )
    if cards:
        parts.append(f"({CARDS_JS})()")
    return f"() => {{ const p = {query}; return {' && '.join(parts)}; }}"


def _sidebar_select(label: str) -> Callable[[Page], None]:
    """Open the sidebar's selectbox `label` (Streamlit 1.67: a react-aria combobox)."""

    def open_box(page: Page) -> None:
        page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name=label).click()
        page.get_by_role("listbox", name=label).wait_for()

    return open_box


def _option(text: str) -> Callable[[Page], None]:
    def click(page: Page) -> None:
        page.get_by_role("listbox").get_by_role("option", name=text, exact=True).click()

    return click


def _nothing(page: Page) -> None:
    pass


def _nav(title: str) -> Callable[[Page], None]:
    def click(page: Page) -> None:
        page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()

    return click


def _radio(value: str) -> Callable[[Page], None]:
    def click(page: Page) -> None:
        page.locator('[data-testid="stRadio"] label').filter(has_text=value).first.click()

    return click


def _table_row(key: str, row: int) -> Callable[[Page], None]:
    """Tick row `row` (0 = first) of the st.dataframe with this key: the row-marker column."""

    def click(page: Page) -> None:
        # The key may carry a generation suffix ("top_sources-1": a new key clears a selection).
        holder = f'.st-key-{key}, [class*="st-key-{key}-"]'
        grid = page.locator(holder).locator('[data-testid="stDataFrameResizable"]').first
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()  # in the viewport: a click outside it reaches nothing
        if box is None:
            raise Failed(f"table {key} not shown")
        header, height = 35, 35  # glide-data-grid's default header and row heights
        page.mouse.click(box["x"] + 15, box["y"] + header + height * row + height / 2)

    return click


def _chip(page: Page) -> None:
    page.locator('[class*="st-key-chip-"] button').first.click()


def steps() -> list[Step]:
    """The measured interactions, in order; each starts from the page the last one left."""
    period, compare = _sidebar_select("Period"), _sidebar_select("Compare with")
    zone = _sidebar_select("Time zone")
    overview = {"path": "", "cards": True}
    # The chart comes first: on today's code a fresh session's first selectbox change lands on
    # its first option (Today), whatever was clicked; any other interaction before avoids it.
    return [
        Step("chart metric → pageviews", "interaction", _nothing, _radio("pageviews"),
             expect(**overview)),
        Step("period → Last 12 months", "interaction", period, _option("Last 12 months"),
             expect("period=12mo", **overview)),
        Step("compare → previous period (12 months)", "interaction", compare,
             _option("Previous period"), expect("period=12mo", "compare=previous", **overview)),
        Step("compare → none (12 months)", "interaction", compare, _option("No comparison"),
             expect("period=12mo", "!compare", **overview)),
        Step("period → Month to date", "interaction", period, _option("Month to date"),
             expect("period=mtd", **overview)),
        Step("period → Today", "interaction", period, _option("Today"),
             expect("period=today", **overview)),
        Step("period → Last 30 days", "interaction", period, _option("Last 30 days"),
             expect("period=30d", **overview)),
        Step("page → Pages", "interaction", _nothing, _nav("Pages"),
             expect(path="top_pages", title="Pages")),
        Step("page → Sources", "interaction", _nothing, _nav("Sources"),
             expect(path="sources", title="Sources")),
        Step("page → Geography", "interaction", _nothing, _nav("Geography"),
             expect(path="geography", title="Geography")),
        Step("page → Devices", "interaction", _nothing, _nav("Devices"),
             expect(path="devices", title="Devices")),
        Step("page → Overview", "interaction", _nothing, _nav("Overview"), expect(**overview)),
        Step("time zone → Asia/Tokyo", "zone", zone, _option("Asia/Tokyo"),
             expect("tz=Asia/Tokyo", **overview)),
        Step("time zone → UTC", "zone", zone, _option("UTC"), expect("!tz", **overview)),
        Step("filter added (row 2 of Top sources)", "filter", _nothing, _table_row("top_sources", 1),
             expect("f.referrer_source", **overview)),
        Step("filter removed (chip ✕)", "filter", _nothing, _chip,
             expect("!f.*", **overview)),
    ]  # fmt: skip


def _settle(
    page: Page, before: int, began: float, expected: str, timeout_s: float = STEP_TIMEOUT_S
) -> float:
    """Seconds from `began` (page clock, ms) to the settled page; Failed if it never settles."""
    try:
        page.wait_for_function(
            SETTLED_JS,
            arg=[before, QUIET_S * 1000, expected],
            timeout=timeout_s * 1000,
            polling=20,
        )
    except Exception as exc:
        raise Failed(f"not settled: {type(exc).__name__}; {_diagnosis(page, expected)}") from exc
    return (page.evaluate("window.__speed.settledAt") - began) / 1000


def _diagnosis(page: Page, expected: str) -> str:
    """What the page shows when it did not settle: the reason a measure failed."""
    try:
        return page.evaluate(
            """(expected) => JSON.stringify({
              url: location.pathname + location.search, runs: window.__speed,
              status: !!document.querySelector('[data-testid="stStatusWidget"]'),
              exception: !!document.querySelector('[data-testid="stException"]'),
              expected: (new Function('return (' + expected + ')()'))()})""",
            expected,
        )
    except Exception as exc:  # the page itself is gone: say so
        return type(exc).__name__


def measure(page: Page, step: Step) -> float:
    step.act(page)
    before = page.evaluate("window.__speed.starts")
    began = page.evaluate("performance.now()")
    step.click(page)
    timeout = FILTER_TIMEOUT_S if step.kind == "filter" else STEP_TIMEOUT_S
    return _settle(page, before, began, step.expected, timeout)


def streamlit_env() -> dict[str, str]:
    """This environment without the variables that would configure an AWS backend."""
    return {k: v for k, v in os.environ.items() if not k.startswith(BACKEND_VARIABLES)}


def start_server(root: Path, port: int) -> subprocess.Popen:
    # `make run`'s command, with a free port: the venv's streamlit beside this interpreter.
    streamlit = Path(sys.executable).parent / "streamlit"
    return subprocess.Popen(
        [str(streamlit), "run", "streamlit_app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port)],
        cwd=root, env=streamlit_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def first_numbers(page: Page, url: str, started: float) -> float:
    """Seconds from `started` (perf_counter at process start) to cards with digits."""
    deadline = started + START_TIMEOUT_S
    while True:
        try:
            page.goto(url, timeout=5_000)
            break
        except Exception:  # not listening yet: any error means "try again"
            if time.perf_counter() > deadline:
                raise Failed("server did not answer") from None
            time.sleep(0.05)
    remaining = max(deadline - time.perf_counter(), 1)
    page.wait_for_function(CARDS_JS, timeout=remaining * 1000, polling=20)
    return time.perf_counter() - started


def _fresh(page: Page, url: str) -> None:
    """Back to the default view on a new page load, after a failed measure."""
    page.goto(url, timeout=STEP_TIMEOUT_S * 1000)
    page.wait_for_function(CARDS_JS, timeout=STEP_TIMEOUT_S * 1000, polling=50)
    _settle(page, -1, 0, expect(path=""))


def one_run(browser: Browser, root: Path, passes: int) -> dict[str, list[float | None]]:
    """One fresh server: start-up, then every step `passes` times (first, again)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    results: dict[str, list[float | None]] = {}
    started = time.perf_counter()
    process = start_server(root, port)
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(MONITOR_JS)
    try:
        page = context.new_page()
        try:
            results["make run → first numbers"] = [first_numbers(page, url, started)]
            _settle(page, -1, 0, expect(path="", cards=True))
        except Exception as exc:
            print(f"  start-up failed: {exc}", file=sys.stderr)
            results["make run → first numbers"] = [None]
            return results
        for n in range(passes):
            for step in steps():
                try:
                    seconds: float | None = measure(page, step)
                except Exception as exc:
                    print(f"  {step.name} (pass {n + 1}) failed: {exc}", file=sys.stderr)
                    seconds = None
                    _fresh(page, url)
                results.setdefault(step.name, []).append(seconds)
                print(f"  {step.name} (pass {n + 1}): {_fmt(seconds)}", file=sys.stderr)
        return results
    finally:
        context.close()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _fmt(seconds: float | None) -> str:
    return "failed" if seconds is None else f"{seconds:.2f} s"


def _median(values: list[float | None]) -> str:
    ok = [v for v in values if v is not None]
    if not ok:
        return "failed"
    failed = len(values) - len(ok)
    return f"{statistics.median(ok):.2f}" + (f" ({failed} failed)" if failed else "")


def _target(name: str) -> float:
    if name.startswith("make run"):
        return TARGETS["start"]
    kind = next((s.kind for s in steps() if s.name == name), "interaction")
    return TARGETS["filter"] if kind == "filter" else TARGETS["interaction"]


def table(runs: list[dict[str, list[float | None]]], passes: int) -> str:
    """Markdown: median (s) per measure and pass, over runs, with the target."""
    names = list(dict.fromkeys(name for run in runs for name in run))
    head = ["measure", "target", "first", *(["again"] if passes > 1 else [])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        cells = [name, f"≤ {_target(name):g} s"]
        for n in range(1 if name.startswith("make run") else passes):
            cells.append(_median([run[name][n] for run in runs if len(run.get(name, [])) > n]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _uptime() -> str:
    """The load averages, as `uptime` prints them (read from the kernel, no subprocess)."""
    one, five, fifteen = os.getloadavg()
    return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f}"


def run(runs: int = 5, root: Path = ROOT, passes: int = 2) -> str:
    """Every measure, `runs` fresh servers; the markdown table with the machine's load."""
    load_before = _uptime()
    collected = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            for n in range(runs):
                print(f"run {n + 1}/{runs}", file=sys.stderr)
                collected.append(one_run(browser, root, passes))
        finally:
            browser.close()
    return "\n".join(
        [
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, median of {runs} run(s), seconds",
            f"load before: `{load_before}`",
            f"load after: `{_uptime()}`",
            "",
            table(collected, passes),
            "",
            "raw: " + json.dumps(collected),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh servers (median over them)")
    parser.add_argument("--passes", type=int, default=2, help="1: first only; 2: and again")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to run")
    args = parser.parse_args()
    print(run(args.runs, args.root.resolve(), args.passes))


if __name__ == "__main__":
    main()
