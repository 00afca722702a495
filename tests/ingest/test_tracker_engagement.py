"""Engagement events from the tracking script, in a real headless Chromium.

Headless Chromium keeps every page visible whatever happens to its tab or window (a second
tab brought to the front, a minimized window, a background target, a frozen lifecycle state:
all tried, none fires `visibilitychange`; microsoft/playwright#2286, w3c/webdriver#1718).
Leaving a page does fire the real `pagehide` and `visibilitychange`, and is used for that;
switching tabs is emulated the way a browser reports it to the page: `document.hidden` /
`visibilityState` change, then `visibilitychange` is dispatched. Time is the real clock.
Stored events come through the local pipeline (collector -> queue -> consumer).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from calmjs.parse import es5

from pipeline.ingest import tracker
from pipeline.stats import metrics
from tests.ingest import test_tracker as base
from tests.ingest.test_tracker import SITE, Visit, site_url
from tests.support import wait_for

# The fixtures of the tracker's browser tests (module-scoped ones start afresh here).
browser, page_server, tracked, visit = base.browser, base.page_server, base.tracked, base.visit

pytestmark = pytest.mark.integration
# Date.now() in the page and time.time() here read the same clock; a little slack for the
# rounding of either.
SLACK_MS = 100
SET_HIDDEN = """hidden => {
    Object.defineProperty(document, "hidden", {value: hidden, configurable: true});
    Object.defineProperty(document, "visibilityState",
        {value: hidden ? "hidden" : "visible", configurable: true});
    document.dispatchEvent(new Event("visibilitychange"));
}"""


def sent(visit: Visit) -> list[dict[str, str]]:
    """The pixel requests so far, as their query parameters, in the order they were made."""
    return [
        {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
        for url in visit.pixel_requests
    ]


def engagements(visit: Visit) -> list[dict[str, str]]:
    return [query for query in sent(visit) if query["n"] == "engagement"]


def wait_for_engagements(visit: Visit, count: int, timeout_ms: int = 10_000) -> None:
    for _ in range(timeout_ms // 100):
        if len(engagements(visit)) >= count:
            return
        visit.page.wait_for_timeout(100)
    raise AssertionError(f"{len(engagements(visit))} engagement requests, expected {count}")


def between(value: str, low_s: float, high_s: float) -> bool:
    """An engaged time (ms text) within the window the test measured around it."""
    return low_s * 1000 - SLACK_MS <= int(value) <= high_s * 1000 + SLACK_MS


def scroll_to(visit: Visit, fraction: float) -> None:
    """Scroll so that the viewport's bottom is at `fraction` of the document."""
    visit.page.evaluate(
        "f => scrollTo(0, f * document.documentElement.scrollHeight - innerHeight)", fraction
    )
    visit.page.wait_for_function("f => scrollY > 0", arg=fraction)


def test_the_script_stays_within_its_budget():
    # The budget the docs promise (docs/tracker.md): engagement included.
    assert len(tracker.gzipped()) <= tracker.BUDGET == 1300
    script = tracker.minified().decode()
    es5(script)  # still ES5 (raises on anything newer), after the minifier's rewrites
    assert "engagement" in script and "visibilitychange" in script and "pagehide" in script
    # No timer at all: engaged time comes from timestamps at visibility changes.
    assert "setInterval" not in script and "setTimeout" not in script


def test_the_minifier_shortens_booleans_without_changing_member_reads():
    assert tracker.minify("f({a: true}, false); g((true).toString())") == (
        "f({a:!0},!1);g((!0).toString())"
    )
    assert tracker.minify(tracker.SOURCE.read_text()) == tracker.minified().decode()


def test_a_long_page_reports_visible_time_and_depth_and_nothing_while_hidden(
    tracked, page_server, visit
):
    page = visit.page
    start = time.time()
    page.goto(site_url(page_server, "/long"))
    loaded = time.time()
    visit.wait_for_pixel_requests(1)
    page.wait_for_timeout(1000)
    scroll_to(visit, 0.5)
    before_hide = time.time()
    page.evaluate(SET_HIDDEN, True)  # the visitor switches to another tab...
    after_hide = time.time()
    wait_for_engagements(visit, 1)
    page.wait_for_timeout(3000)  # ...for three seconds: nothing is sent meanwhile
    page.evaluate("dispatchEvent(new Event('pagehide'))")  # nor when told again while hidden
    page.evaluate(SET_HIDDEN, True)
    page.wait_for_timeout(300)
    assert [query["n"] for query in sent(visit)] == ["pageview", "engagement"]
    before_show = time.time()
    page.evaluate(SET_HIDDEN, False)  # back to the tab, read to the end, switch away again
    after_show = time.time()
    page.wait_for_timeout(1000)
    scroll_to(visit, 1.0)
    before_second_hide = time.time()
    page.evaluate(SET_HIDDEN, True)
    after_second_hide = time.time()
    wait_for_engagements(visit, 2)
    before_last_show = time.time()
    page.evaluate(SET_HIDDEN, False)  # back once more, then leave the site for real
    after_last_show = time.time()
    page.wait_for_timeout(500)
    before_leaving = time.time()
    page.goto(f"http://ref.test:{page_server.server_address[1]}/from.html")
    left = time.time()

    first, second = engagements(visit)
    assert all(e["u"] == site_url(page_server, "/long") for e in (first, second))
    assert between(first["e"], before_hide - loaded, after_hide - start)
    assert between(second["e"], before_second_hide - after_show, after_second_hide - before_show)
    assert int(second["e"]) < 3000  # the three hidden seconds are not in it
    # 8,000 px of article under a 720 px viewport: half way is 50 %, the end is 100 %.
    assert (first["sd"], second["sd"]) == ("50", "100")
    assert visit.page_errors == []

    # The page was left for real: Playwright does not see what a page sends while it
    # unloads (the browser finishes it), the collector does.
    wait_for(lambda: (tracked.events(SITE)["name"] == "engagement").sum() == 3)
    stored = tracked.events(SITE)
    assert sorted(stored["name"]) == ["engagement"] * 3 + ["pageview"]
    kept = stored[stored["name"] == "engagement"]
    assert set(kept["path"]) == {"/long"}
    by_time = {int(row.engagement_ms): row.scroll_depth for row in kept.itertuples()}
    assert by_time.pop(int(first["e"])) == 50 and by_time.pop(int(second["e"])) == 100
    ((last_ms, last_depth),) = by_time.items()
    assert between(str(last_ms), before_leaving - after_last_show, left - before_last_show)
    assert last_depth == 100
    # One page seen, however long: the visit is still a bounce, and engagement does not make
    # it longer.
    (only,) = metrics.visits(stored).itertuples()
    assert only.pageviews == 1 and only.bounce and only.duration == 0


def test_an_spa_navigation_reports_the_page_being_left_before_the_new_pageview(
    tracked, page_server, visit
):
    page = visit.page
    page.goto(site_url(page_server, "/long"))
    visit.wait_for_pixel_requests(1)
    page.wait_for_timeout(500)
    scroll_to(visit, 0.25)
    page.evaluate("history.pushState({}, '', '/app/a?tab=1'); scrollTo(0, 0)")  # as routers do
    page.wait_for_timeout(300)
    page.evaluate("history.replaceState({}, '', '/app/a?tab=2')")  # same path: nothing
    page.evaluate("history.back()")
    visit.wait_for_pixel_requests(5)
    page.wait_for_timeout(300)
    port = page_server.server_address[1]
    assert [(query["n"], query["u"]) for query in sent(visit)] == [
        ("pageview", f"http://{SITE}:{port}/long"),
        ("engagement", f"http://{SITE}:{port}/long"),
        ("pageview", f"http://{SITE}:{port}/app/a?tab=1"),
        # The URL the page's pageview had (the spec's `u`), not the replaced query.
        ("engagement", f"http://{SITE}:{port}/app/a?tab=1"),
        ("pageview", f"http://{SITE}:{port}/long"),
    ]
    first, second = engagements(visit)
    assert int(first["e"]) >= 500 - SLACK_MS and int(second["e"]) >= 300 - SLACK_MS
    # The page left was scrolled to a quarter; the next one starts afresh, at the top.
    top = page.evaluate(
        "Math.round(document.documentElement.clientHeight / document.documentElement.scrollHeight * 100)"
    )
    assert (first["sd"], second["sd"]) == ("25", str(top)) and 0 < top < 25

    wait_for(lambda: len(tracked.events(SITE)) == 5)
    stored = tracked.events(SITE)
    kept = stored[stored["name"] == "engagement"]
    assert sorted(kept["path"]) == ["/app/a", "/long"]
    assert sorted(kept["engagement_ms"]) == sorted(int(e["e"]) for e in (first, second))
    (only,) = metrics.visits(stored).itertuples()
    assert only.pageviews == 3 and not only.bounce
