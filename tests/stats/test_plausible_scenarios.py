"""Plausible's published test scenarios, re-derived by hand, run against `pipeline.stats.metrics`.

Each test builds the same events as one scenario of Plausible's own test suite
(github.com/plausible/analytics, `test/...`, cited per test as `source: file :: test name`)
in our frame's shape, and asserts the number Plausible's test asserts, converted:
our rates are fractions 0..1 (Plausible shows a whole percent), durations are seconds
(Plausible rounds them). The arithmetic behind every expected number is written next to it.

Translation rules, applied throughout:
- Plausible's `user_id` is our `visitor`; a `build(...)` without `user_id` is a visitor of its own.
- A user crossing the UTC day boundary gets a new hash at 00:00; Plausible's session cache
  finds the visit under the previous salt's id (`prev_user_id`): that is our `prev_visitor`.
- Where Plausible's factory stamps several events of one visitor "now" (the same instant), the
  events are a second apart here so that their order is the order the test lists them in
  (Plausible's order there is its insertion order); no expected number depends on the second.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from pipeline.stats import metrics
from pipeline.stats.metrics import Filter
from tests.stats.conftest import engagement, ev, frame, percent, row

TS = "test/plausible_web/controllers/api/stats_controller/top_stats_test.exs"
PAGES = "test/plausible_web/controllers/api/stats_controller/pages_test.exs"
QUERY = "test/plausible_web/controllers/api/external_stats_controller/query_test.exs"
TOP = "test/plausible_web/controllers/api/external_stats_controller/query_time_on_page_test.exs"
CACHE = "test/plausible/session/cache_store_test.exs"
CACHE_SRC = "lib/plausible/session/cache_store.ex"


def page(*values: str, operator: str = "is") -> Filter:
    return Filter("path", operator, tuple(values))


def pages_report(events: pd.DataFrame, *filters: Filter) -> pd.DataFrame:
    return metrics.breakdown(metrics.select(events, filters), "path")


def assert_time(value: float, expected: float | None) -> None:
    """Plausible's time on page (rounded seconds; nil = no data, NaN here)."""
    if expected is None:
        assert value is None or math.isnan(value), value
    else:
        assert round(value) == expected


# --- Visitors, visits, pageviews, views per visit, bounce rate, visit duration ----------------


def test_counts_distinct_user_ids__top_stats_test():
    # source: TS :: "counts distinct user ids" — user U twice, one other visitor: 2 visitors.
    events = frame([ev(user="U"), ev("2021-01-01 12:00:01", user="U"), ev()])
    assert metrics.summary(events).visitors == 2


def test_counts_total_pageviews__top_stats_test():
    # source: TS :: "counts total pageviews" — the same three pageviews: 3.
    events = frame([ev(user="U"), ev("2021-01-01 12:00:01", user="U"), ev()])
    assert metrics.summary(events).pageviews == 3


def test_counts_total_visits__top_stats_test():
    # source: TS :: "counts total visits" — U at 00:00 and 00:01 (one visit), U again at 10:00
    # (a new visit: 9 h 59 min later), another visitor at 15:00: 3 visits.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "U"),
            ev("2021-01-01 00:01:00", "U"),
            ev("2021-01-01 10:00:00", "U"),
            ev("2021-01-01 15:00:00"),
        ]
    )
    assert metrics.summary(events).visits == 3


def test_counts_pages_per_visit__top_stats_test():
    # source: TS :: "counts pages per visit" — 4 pageviews in 3 visits (U's two pages are one
    # visit, two single-page visitors): 4 / 3 = 1.33.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "U"),
            ev("2021-01-01 00:01:00", "U"),
            ev("2021-01-01 00:02:00"),
            ev("2021-01-01 15:00:00"),
        ]
    )
    assert round(metrics.summary(events).views_per_visit, 2) == 1.33


def test_calculates_bounce_rate__top_stats_test():
    # source: TS :: "calculates bounce rate" — U's visit has 2 pageviews, the other visitor's 1:
    # 1 bounce of 2 visits = 50 %.
    events = frame([ev(user="U"), ev("2021-01-01 12:00:01", user="U"), ev()])
    assert percent(metrics.summary(events).bounce_rate) == 50


def test_calculates_average_visit_duration__top_stats_test():
    # source: TS :: "calculates average visit duration" — U 00:00 → 00:15 = 900 s, a one-page
    # visit = 0 s: (900 + 0) / 2 = 450 s.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "U"),
            ev("2021-01-01 00:15:00", "U"),
            ev("2021-01-01 00:15:00"),
        ]
    )
    assert round(metrics.summary(events).visit_duration) == 450


def test_aggregates_all_metrics_in_a_single_query__query_test():
    # source: QUERY :: "aggregates all metrics in a single query" — U 00:00 and 00:25 (one visit
    # of 1500 s: 25 min <= 30), another visitor at 00:00: pageviews 3, visits 2, 1.5 views per
    # visit, 2 visitors, bounce 1/2 = 50 %, duration (1500 + 0) / 2 = 750 s.
    events = frame(
        [ev("2021-01-01 00:00:00", "U"), ev("2021-01-01 00:25:00", "U"), ev("2021-01-01 00:00:00")]
    )
    got = metrics.summary(events)
    assert (got.pageviews, got.visits, got.views_per_visit, got.visitors) == (3, 2, 1.5, 2)
    assert (percent(got.bounce_rate), round(got.visit_duration)) == (50, 750)


def test_aggregate_views_per_visit_rounds_to_two_decimal_places__query_test():
    # source: QUERY :: "aggregate views_per_visit rounds to two decimal places" — two 2-page
    # visits and one 1-page visit: 5 / 3 = 1.67.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "U"),
            ev("2021-01-01 00:25:00", "U"),
            ev("2021-01-01 00:00:00", "456"),
            ev("2021-01-01 00:25:00", "456"),
            ev("2021-01-01 00:00:00"),
        ]
    )
    assert round(metrics.summary(events).views_per_visit, 2) == 1.67


def test_can_filter_by_source_keeps_whole_visits__query_test():
    # source: QUERY :: "can filter by source" — U arrives from Google at 00:00 and views a
    # second page at 00:25 (whose own referrer is the site): the visit filter keeps the visit
    # whole: 2 pageviews, 1 visitor, bounce 0 %, duration 1500 s.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "U", referrer_source="Google"),
            ev("2021-01-01 00:25:00", "U"),
            ev("2021-01-01 00:00:00"),
        ]
    )
    got = metrics.summary(metrics.select(events, [Filter("referrer_source", "is", ("Google",))]))
    assert (got.pageviews, got.visitors, percent(got.bounce_rate)) == (2, 1, 0)
    assert round(got.visit_duration) == 1500


def test_can_filter_by_no_source__query_test():
    # source: QUERY :: "can filter by no source/referrer" — U direct (00:00, 00:25), another
    # visitor from Google: "Direct / None" keeps U's visit: 2 pageviews, 1 visitor, 0 %, 1500 s.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "U"),
            ev("2021-01-01 00:25:00", "U"),
            ev("2021-01-01 00:00:00", referrer_source="Google"),
        ]
    )
    flt = Filter("referrer_source", "is", ("Direct / None",))
    got = metrics.summary(metrics.select(events, [flt]))
    assert (got.pageviews, got.visitors, percent(got.bounce_rate)) == (2, 1, 0)
    assert round(got.visit_duration) == 1500


def test_contains_referrer_filter__query_test():
    # source: QUERY :: "contains referrer filter" — referrers https://a.com (twice) and
    # https://ab.com; "contains a.com" matches the first two only ("ab.com" has no "a.com"): 2.
    events = frame(
        [
            ev(referrer="https://a.com"),
            ev(referrer="https://a.com"),
            ev(referrer="https://ab.com"),
        ]
    )
    flt = Filter("referrer", "contains", ("a.com",))
    assert metrics.summary(metrics.select(events, [flt])).visitors == 2


# --- Visits: the session rules ------------------------------------------------------------


def test_creates_a_session_from_an_event__cache_store_test():
    # source: CACHE :: "creates a session from an event" — one pageview: a bounced visit of
    # 0 s with 1 pageview, entry page = exit page = its path.
    table = metrics.visits(frame([ev(path="/landing")]))
    assert len(table) == 1
    visit = table.iloc[0]
    assert bool(visit["bounce"]) and visit["duration"] == 0 and visit["pageviews"] == 1
    assert visit["entry_page"] == visit["exit_page"] == "/landing"


def test_updates_session_counters__cache_store_test():
    # source: CACHE :: "updates session counters" — two pageviews 10 s apart: not a bounce,
    # 10 s, 2 pageviews.
    table = metrics.visits(frame([ev("2021-01-01 12:00:00", "U"), ev("2021-01-01 12:00:10", "U")]))
    visit = table.iloc[0]
    assert len(table) == 1 and not bool(visit["bounce"])
    assert (visit["duration"], visit["pageviews"]) == (10, 2)


def test_calculates_duration_correctly_for_out_of_order_events__cache_store_test():
    # source: CACHE :: "calculates duration correctly for out-of-order events" — the later
    # event arrives first; the visit still lasts 10 s (frame rows in arrival order).
    events = frame([ev("2021-01-01 12:00:00", "U"), ev("2021-01-01 12:00:10", "U")])
    arrived = events.iloc[::-1].reset_index(drop=True)
    assert metrics.visits(arrived).iloc[0]["duration"] == 10


def test_updating_pageview_specific_attributes__cache_store_test():
    # source: CACHE :: "updating pageview-specific attributes" — custom event, pageview
    # /path/2, pageview /path/3, custom event on /path/4: entry /path/2, exit /path/3,
    # 2 pageviews, 4 events (2 of them custom), not a bounce.
    events = frame(
        [
            ev("2021-01-01 12:00:00", "U", "custom_event", "/path/1"),
            ev("2021-01-01 12:00:01", "U", "pageview", "/path/2"),
            ev("2021-01-01 12:00:02", "U", "pageview", "/path/3"),
            ev("2021-01-01 12:00:03", "U", "custom_event", "/path/4"),
        ]
    )
    visit = metrics.visits(events).iloc[0]
    assert (visit["entry_page"], visit["exit_page"]) == ("/path/2", "/path/3")
    assert visit["pageviews"] == 2 and not bool(visit["bounce"])
    custom = visit["events"] if "events" in visit else visit["custom_events"]
    assert custom == 2


def test_does_not_update_session_counters_on_engagement_event__cache_store_test():
    # source: CACHE :: "does not update session counters on engagement event" — a pageview
    # and, 10 s later, an engagement event: still a bounce of 0 s with 1 pageview, 1 event.
    events = frame(
        [ev("2021-01-01 12:00:00", "U", path="/"), engagement("2021-01-01 12:00:10", "U", "/")]
    )
    table = metrics.visits(events)
    visit = table.iloc[0]
    assert len(table) == 1 and bool(visit["bounce"])
    assert (visit["duration"], visit["pageviews"]) == (0, 1)
    custom = visit["events"] if "events" in visit else visit["custom_events"]
    assert custom == 0


def test_engagement_events_do_not_affect_bounce_rate_and_visit_duration__query_test():
    # source: QUERY :: "engagement events do not affect bounce rate and visit duration" —
    # pageview 00:00:00, engagement 00:00:03: bounce 100 %, duration 0 s.
    events = frame(
        [ev("2021-01-01 00:00:00", "123"), engagement("2021-01-01 00:00:03", "123", "/")]
    )
    got = metrics.summary(events)
    assert (percent(got.bounce_rate), round(got.visit_duration)) == (100, 0)
    assert (got.visits, got.pageviews) == (1, 1)


def test_does_not_count_engagement_events_towards_the_events_metric__query_test():
    # source: QUERY :: "does not count engagement events towards the events metric in a simple
    # aggregate query" — a pageview and an engagement: 1 event (the pageview); so no
    # "engagement" row among event names and no custom event in the visit.
    events = frame(
        [ev("2021-01-01 00:00:00", "234"), engagement("2021-01-01 00:00:01", "234", "/")]
    )
    names = metrics.breakdown(events, "name")
    assert "engagement" not in set(names["value"].astype(str))
    assert row(names, "pageview")["visitors"] == 1


def test_returns_unique_users_in_the_last_5_minutes__current_visitors_test():
    # source: test/plausible_web/controllers/api/stats_controller/current_visitors_test.exs ::
    # "returns unique users in the last 5 minutes" — 123 (3 and 1 min ago) and 456 (3 min
    # ago) are current; 789's pageview is 7 min old and its engagement 3 min ago does not make
    # it current: 2.
    now = pd.Timestamp("2021-01-01 12:00:00", tz="UTC")
    events = frame(
        [
            ev("2021-01-01 11:57:00", "123"),
            ev("2021-01-01 11:57:00", "456"),
            ev("2021-01-01 11:59:00", "123"),
            ev("2021-01-01 11:53:00", "789"),
            engagement("2021-01-01 11:57:00", "789", "/"),
        ]
    )
    assert metrics.current_visitors(events, now) == 2


def test_engagement_keeps_a_visit_alive__cache_store_source():
    # source: CACHE_SRC (on_event/find_session: any event of the visit, engagement included,
    # is the "previous event" of the 30-minute rule). Pageview 10:00, engagement 10:25,
    # pageview 10:50: gaps 25 and 25 min, one visit of 2 pageviews lasting 10:00 → 10:50.
    events = frame(
        [
            ev("2021-01-01 10:00:00", "U", path="/a"),
            engagement("2021-01-01 10:25:00", "U", "/a", ms=5_000),
            ev("2021-01-01 10:50:00", "U", path="/b"),
        ]
    )
    table = metrics.visits(events)
    assert len(table) == 1
    assert (table.iloc[0]["pageviews"], table.iloc[0]["duration"]) == (2, 3000)
    # Without the engagement event, 50 minutes apart: two visits.
    assert len(metrics.visits(events[events["name"] != "engagement"])) == 2


def test_engagement_without_a_visit_is_ignored__cache_store_source():
    # source: CACHE_SRC with the rule: an engagement event has no session of its own.
    events = frame([engagement("2021-01-01 10:00:00", "U", "/a", ms=5_000)])
    got = metrics.summary(events)
    assert (got.visits, got.pageviews) == (0, 0)


@pytest.mark.parametrize(
    ("second", "visits"),
    [
        ("2021-01-01 10:29:59", 1),
        ("2021-01-01 10:30:00", 1),  # 30 minutes: the cache entry is still there
        ("2021-01-01 10:30:11", 2),  # past 30 min (+ the 10 s expiry check): a new visit
        ("2021-01-01 10:31:00", 2),
    ],
)
def test_thirty_minute_rule__cache_store_source_and_application_cache(second, visits):
    # source: CACHE_SRC :: find_session (`NaiveDateTime.diff(.., :minute) <= 30`) and
    # lib/plausible/application.ex, whose session cache entries live `global_ttl:
    # :timer.minutes(30)` after the last event (expired every `ttl_check_interval` of 10 s):
    # live, a visit continues up to a 30-minute gap and ends past it (30:00-30:10 varies in
    # Plausible itself; we end it at anything over 30:00).
    events = frame([ev("2021-01-01 10:00:00", "U"), ev(second, "U")])
    assert len(metrics.visits(events)) == visits


def test_visit_continues_across_the_utc_salt_change__top_stats_test():
    # source: TS :: "experimental session count" (also stats_controller/query_controller_test
    # :: "returns all top stats metrics") — users U and 2 each view a page at 23:59 and at
    # 00:01 the next day. In Plausible the 00:01 hit finds its session under the previous
    # salt's id, so the day of 2021-01-01 shows 2 visits of 2 pageviews each: 2.0 views per
    # visit, bounce 0 %, duration 120 s. Here the 00:01 hash differs and carries prev_visitor.
    # (3421 at 23:30 and 617235 on 01-03 have no event on 2021-01-01: left out.)
    events = frame(
        [
            ev("2020-12-31 23:59:00", "U-day1"),
            ev("2021-01-01 00:01:00", "U-day2", prev="U-day1"),
            ev("2020-12-31 23:59:00", "2-day1"),
            ev("2021-01-01 00:01:00", "2-day2", prev="2-day1"),
        ]
    )
    got = metrics.summary(events)
    assert (got.visits, got.views_per_visit) == (2, 2.0)
    assert (percent(got.bounce_rate), round(got.visit_duration)) == (0, 120)
    # Unique visitors of the day stay distinct hashes (Plausible: uniq(user_id)): 2.
    assert metrics.summary(events[events["ts"] >= "2021-01-01"]).visitors == 2


def test_salt_change_join_obeys_the_thirty_minute_rule__cache_store_source():
    # source: CACHE_SRC :: on_event — the previous salt's id is looked up with the same
    # 30-minute rule: 23:59 → 00:30:30 is 31.5 min (31 whole), a new visit; 23:59 → 00:29
    # is 30 min, the same visit.
    late = frame([ev("2020-12-31 23:59:00", "A1"), ev("2021-01-01 00:30:30", "A2", prev="A1")])
    in_time = frame([ev("2020-12-31 23:59:00", "A1"), ev("2021-01-01 00:29:00", "A2", prev="A1")])
    assert len(metrics.visits(late)) == 2
    assert len(metrics.visits(in_time)) == 1


# --- Page filter: bounce over entries, duration over visits containing the page -------------


def test_bounce_rate_is_0_when_the_page_in_filter_was_never_a_landing_page__top_stats_test():
    # source: TS :: "bounce_rate is 0 when the page in filter was never a landing page" —
    # U enters on /A, then views /; filtered for /: no visit entered on / → 0 %.
    events = frame(
        [ev("2021-01-01 00:00:00", "U", path="/A"), ev("2021-01-01 00:10:00", "U", path="/")]
    )
    got = metrics.summary(metrics.select(events, [page("/")]))
    assert percent(got.bounce_rate) == 0
    assert (got.visits, got.pageviews, got.visitors) == (1, 1, 1)


def test_page_filter_counts_bounces_of_entries_and_duration_of_visits__top_stats_test():
    # source: TS :: "calculates time on page instead when filtered for page" (its events) —
    # U: /pageA 00:00 → /pageB 00:15; another visitor: /pageA 00:15. Filtered for /pageA:
    # both visits contain /pageA (duration (900 + 0) / 2 = 450 s, as the issue states
    # Plausible's rule) and both entered there (bounce 1 of 2 = 50 %).
    events = frame(
        [
            ev("2021-01-01 00:00:00", "U", path="/pageA"),
            ev("2021-01-01 00:15:00", "U", path="/pageB"),
            ev("2021-01-01 00:15:00", path="/pageA"),
        ]
    )
    got = metrics.summary(metrics.select(events, [page("/pageA")]))
    assert (got.visits, got.pageviews, percent(got.bounce_rate)) == (2, 2, 50)
    assert round(got.visit_duration) == 450


def test_returns_all_page_filtered_top_stats_metrics__query_controller_test():
    # source: test/plausible_web/controllers/api/stats_controller/query_controller_test.exs ::
    # "returns all page-filtered top stats metrics" — U: /pageA 00:00 (engagements on /pageA
    # of 199 s and 1 s, scroll 0), /pageB 00:15; another visitor: /pageA 00:15. Filtered for
    # /pageA: 2 visitors, 2 visits, 2 pageviews, bounce 1/2 = 50 %, scroll depth 0,
    # time on page (199 + 1) s / 1 engaged visitor = 200 s.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "U", path="/pageA"),
            engagement("2021-01-01 00:15:00", "U", "/pageA", ms=199_000),
            ev("2021-01-01 00:15:00", "U", path="/pageB"),
            ev("2021-01-01 00:15:00", path="/pageA"),
            engagement("2021-01-01 00:15:00", "U", "/pageA", ms=1_000),
        ]
    )
    selection = metrics.select(events, [page("/pageA")])
    got = metrics.summary(selection)
    assert (got.visitors, got.visits, got.pageviews, percent(got.bounce_rate)) == (2, 2, 2, 50)
    report = metrics.breakdown(selection, "path")
    assert list(report["value"].astype(str)) == ["/pageA"]
    page_a = row(report, "/pageA")
    assert_time(page_a["time_on_page"], 200)
    assert round(page_a["scroll_depth"]) == 0


# --- Pages report: visitors, pageviews, bounce rate, time on page, scroll depth --------------


def test_returns_top_pages_by_visitors__pages_test():
    # source: PAGES :: "returns top pages by visitors" — six one-page visitors: / 3,
    # /register 2, /contact 1, in that order.
    paths = ["/", "/", "/", "/register", "/register", "/contact"]
    events = frame([ev(path=p) for p in paths])
    report = metrics.breakdown(events, "path")
    assert list(report["value"].astype(str)) == ["/", "/register", "/contact"]
    assert list(report["visitors"]) == [3, 2, 1]


def test_calculates_scroll_depth_and_engaged_time_on_page__dashboard_csv_export_test():
    # source: test/plausible_web/controllers/api/stats_controller/dashboard_csv_export_test.exs
    # :: "exports scroll depth metric in pages.csv" (the events of pages_test :: "calculates
    # scroll_depth", each engagement 60 s). Users 12: /blog (20 %) → /another (24 %);
    # 34: /blog (17 %) → /another (26 %) → /blog (60 %); 56: /blog (100 %).
    # /blog: 3 visitors, 4 pageviews; entered by 3 visits, 1 bounced (56; engagement does not
    # un-bounce) → 33 %; time 4 × 60 s / 3 visitors = 80 s; scroll = mean of each visitor's
    # deepest (20, 60, 100) = 60. /another: 2, 2, 0 %, 2 × 60 s / 2 = 60 s, (24 + 26) / 2 = 25.
    t0, t1, t2, t3 = (f"2020-01-01 00:0{i}:00" for i in range(4))
    events = frame(
        [
            ev(t0, "12", path="/blog"),
            engagement(t1, "12", "/blog", ms=60_000, scroll=20),
            ev(t1, "12", path="/another"),
            engagement(t2, "12", "/another", ms=60_000, scroll=24),
            ev(t0, "34", path="/blog"),
            engagement(t1, "34", "/blog", ms=60_000, scroll=17),
            ev(t1, "34", path="/another"),
            engagement(t2, "34", "/another", ms=60_000, scroll=26),
            ev(t2, "34", path="/blog"),
            engagement(t3, "34", "/blog", ms=60_000, scroll=60),
            ev(t0, "56", path="/blog"),
            engagement(t1, "56", "/blog", ms=60_000, scroll=100),
        ]
    )
    report = metrics.breakdown(events, "path")
    blog, another = row(report, "/blog"), row(report, "/another")
    assert (blog["visitors"], blog["pageviews"], percent(blog["bounce_rate"])) == (3, 4, 33)
    assert_time(blog["time_on_page"], 80)
    assert round(blog["scroll_depth"]) == 60
    assert (another["visitors"], another["pageviews"], percent(another["bounce_rate"])) == (
        2,
        2,
        0,
    )
    assert_time(another["time_on_page"], 60)
    assert round(another["scroll_depth"]) == 25


def test_aggregated_time_on_page_metric_based_on_engagement_data__query_time_on_page_test():
    # source: TOP :: "aggregated time_on_page metric based on engagement data" — /blog:
    # user 12 engaged 120 s + 20 s, user 13 60 s: (140 + 60) / 2 visitors = 100 s.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "12", path="/blog"),
            engagement("2021-01-01 00:10:00", "12", "/blog", ms=120_000),
            engagement("2021-01-01 00:11:00", "12", "/blog", ms=20_000),
            ev("2021-01-01 00:10:00", "13", path="/blog"),
            engagement("2021-01-01 00:10:00", "13", "/blog", ms=60_000),
        ]
    )
    assert_time(row(metrics.breakdown(events, "path"), "/blog")["time_on_page"], 100)


def _cutoff_scenario(with_engagement: bool) -> pd.DataFrame:
    # source: TOP :: describe "include.legacy_time_on_page_cutoff" — its setup's events.
    records = [
        ev("2021-01-01 00:00:00", "12", path="/"),
        engagement("2021-01-01 00:02:00", "12", "/", ms=100_000),
        ev("2021-01-01 00:02:00", "12", path="/blog"),
        engagement("2021-01-01 00:05:00", "12", "/blog", ms=100_000),
        ev("2021-01-01 00:05:00", "12", path="/"),
        engagement("2021-01-01 00:10:00", "12", "/", ms=100_000),
        ev("2021-01-01 00:10:00", "12", path="/blog"),
        engagement("2021-01-01 00:15:00", "12", "/blog", ms=100_000),
        ev("2021-01-02 01:00:00", "13", path="/pricing"),
        engagement("2021-01-02 01:02:00", "13", "/pricing", ms=30_000),
        ev("2021-01-02 01:00:00", "14", path="/"),
        engagement("2021-01-02 01:02:00", "14", "/", ms=30_000),
    ]
    if not with_engagement:
        records = [r for r in records if r["name"] != "engagement"]
    return frame(records)


def test_breakdown_with_engagement_data_uses_engaged_time__query_time_on_page_test():
    # source: TOP :: "breakdown with cutoff being before data (new time-on-page query used)"
    # without its imported rows — /: user 12 100 s + 100 s, user 14 30 s → 230 / 2 = 115 s;
    # /blog: user 12 200 s / 1 = 200 s (Plausible's 38 mixes in 9 imported visitors);
    # /pricing: 30 s.
    report = metrics.breakdown(_cutoff_scenario(with_engagement=True), "path")
    assert_time(row(report, "/")["time_on_page"], 115)
    assert_time(row(report, "/blog")["time_on_page"], 200)
    assert_time(row(report, "/pricing")["time_on_page"], 30)


def test_legacy_time_on_page_without_engagement_data__query_time_on_page_test():
    # source: TOP :: "breakdown with cutoff being after data (legacy query used)" — the same
    # pageviews with no engagement data, so the transition-based figure: / → /blog after
    # 120 s and again after 300 s, both user 12: 420 s per visitor; /blog → / after 180 s
    # (its second view is the visit's last): 180 s; /pricing never left for a page: none.
    report = metrics.breakdown(_cutoff_scenario(with_engagement=False), "path")
    assert_time(row(report, "/")["time_on_page"], 420)
    assert_time(row(report, "/blog")["time_on_page"], 180)
    assert_time(row(report, "/pricing")["time_on_page"], None)


def test_ignores_page_refresh_when_calculating_time_on_page__top_stats_test():
    # source: TS :: "ignores page refresh when calculating time on page" — / at 00:00, 00:01,
    # 00:02, then /exit at 00:03: 180 s on / for the one visitor.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "U", path="/"),
            ev("2021-01-01 00:01:00", "U", path="/"),
            ev("2021-01-01 00:02:00", "U", path="/"),
            ev("2021-01-01 00:03:00", "U", path="/exit"),
        ]
    )
    assert_time(row(pages_report(events, page("/")), "/")["time_on_page"], 180)


def test_does_not_calculate_time_on_page_with_only_single_page_visits__top_stats_test():
    # source: TS :: "doesn't calculate time on page with only single page visits" — U views /
    # at 00:00 and again at 00:10 and never another page: no transition, no engagement, so
    # no time on page (Plausible's top stats show 0 for "cannot be calculated"; NaN here).
    events = frame(
        [ev("2021-01-01 00:00:00", "U", path="/"), ev("2021-01-01 00:10:00", "U", path="/")]
    )
    assert_time(row(pages_report(events, page("/")), "/")["time_on_page"], None)


def test_time_on_page_when_filtered_for_page__top_stats_test():
    # source: TS :: "calculates time on page instead when filtered for page" — U: /pageA
    # 00:00 → /pageB 00:15 = 900 s; the other /pageA view is its visit's last: 900 s.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "U", path="/pageA"),
            ev("2021-01-01 00:15:00", "U", path="/pageB"),
            ev("2021-01-01 00:15:00", path="/pageA"),
        ]
    )
    assert_time(row(pages_report(events, page("/pageA")), "/pageA")["time_on_page"], 900)


def test_bounce_rate_and_time_on_page_for_pages_filtered_by_page_path__pages_test():
    # source: PAGES :: "calculates bounce_rate and time_on_page for pages filtered by page
    # path" — U: / 00:00, /about 00:01, / 00:02; V1: / 00:00; V2: /about 00:10. For /:
    # 2 visitors, 3 pageviews; entered by U (not bounced) and V1 (bounced): 50 %; time:
    # / → /about 60 s (U's second / is its last page): 60 s; no scroll data.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "U", path="/"),
            ev("2021-01-01 00:01:00", "U", path="/about"),
            ev("2021-01-01 00:02:00", "U", path="/"),
            ev("2021-01-01 00:00:00", path="/"),
            ev("2021-01-01 00:10:00", path="/about"),
        ]
    )
    report = pages_report(events, page("/"))
    assert list(report["value"].astype(str)) == ["/"]
    home = row(report, "/")
    assert (home["visitors"], home["pageviews"], percent(home["bounce_rate"])) == (2, 3, 50)
    assert_time(home["time_on_page"], 60)
    assert math.isnan(home["scroll_depth"])


def _or_scenario() -> pd.DataFrame:
    # source: PAGES :: "can filter using the | (OR) filter" / "... not_member filter type".
    return frame(
        [
            ev("2021-01-01 00:00:00", "U", path="/"),
            ev("2021-01-01 00:01:00", "U", path="/irrelevant"),
            ev("2021-01-01 00:02:00", "U", path="/"),
            ev("2021-01-01 00:00:00", path="/"),
            ev("2021-01-01 00:10:00", path="/about"),
        ]
    )


def test_can_filter_using_several_values_or__pages_test():
    # source: PAGES :: "can filter using the | (OR) filter" — is / or /about: / 2 visitors,
    # 3 pageviews, 50 %, 60 s (/ → /irrelevant); /about 1, 1, 100 % (a one-page visit), no time.
    report = pages_report(_or_scenario(), page("/", "/about"))
    assert list(report["value"].astype(str)) == ["/", "/about"]
    home, about = row(report, "/"), row(report, "/about")
    assert (home["visitors"], home["pageviews"], percent(home["bounce_rate"])) == (2, 3, 50)
    assert_time(home["time_on_page"], 60)
    assert (about["visitors"], about["pageviews"], percent(about["bounce_rate"])) == (1, 1, 100)
    assert_time(about["time_on_page"], None)


def test_can_filter_using_is_not_several_values__pages_test():
    # source: PAGES :: "can filter using the not_member filter type" — is not /irrelevant or
    # /about: only / remains: 2 visitors, 3 pageviews, 50 %, 60 s.
    report = pages_report(_or_scenario(), page("/irrelevant", "/about", operator="is_not"))
    assert list(report["value"].astype(str)) == ["/"]
    home = row(report, "/")
    assert (home["visitors"], home["pageviews"], percent(home["bounce_rate"])) == (2, 3, 50)
    assert_time(home["time_on_page"], 60)


def test_can_filter_using_contains_several_values__pages_test():
    # source: PAGES :: "can filter using the matches_member filter type" — contains /blog/ or
    # /articles/. U: /blog/post-1 00:00 → /blog/post-2 00:01; two one-page visitors on
    # /articles/post-1 (and one on /, filtered out). /articles/post-1: 2, 2, 100 %, no time;
    # /blog/post-1: 1, 1, 0 %, 60 s; /blog/post-2: 1, 1, 0 % (never an entry page), no time.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "U", path="/blog/post-1"),
            ev("2021-01-01 00:01:00", "U", path="/blog/post-2"),
            ev("2021-01-01 00:00:00", path="/"),
            ev("2021-01-01 00:10:00", path="/articles/post-1"),
            ev("2021-01-01 00:10:00", path="/articles/post-1"),
        ]
    )
    report = pages_report(events, page("/blog/", "/articles/", operator="contains"))
    assert list(report["value"].astype(str)) == [
        "/articles/post-1",
        "/blog/post-1",
        "/blog/post-2",
    ]
    articles, post1, post2 = (row(report, p) for p in report["value"].astype(str))
    assert (articles["visitors"], articles["pageviews"], percent(articles["bounce_rate"])) == (
        2,
        2,
        100,
    )
    assert_time(articles["time_on_page"], None)
    assert (post1["visitors"], percent(post1["bounce_rate"])) == (1, 0)
    assert_time(post1["time_on_page"], 60)
    assert (post2["visitors"], percent(post2["bounce_rate"])) == (1, 0)
    assert_time(post2["time_on_page"], None)


def test_returns_top_pages_by_visitors_by_hostname__pages_test():
    # source: PAGES :: "returns top pages by visitors by hostname" — hostname contains
    # ".example.com": / 3, /register 2 (123 twice, one other), /contact 1, /landing 1;
    # hostname is d.example.com: /register 2, / 1.
    events = frame(
        [
            ev(path="/", host="a.example.com"),
            ev(path="/", host="b.example.com"),
            ev(path="/", host="d.example.com"),
            ev("2021-01-01 12:00:00", "123", path="/landing", host="x.example.com"),
            ev("2021-01-01 12:00:01", "123", path="/register", host="d.example.com"),
            ev("2021-01-01 12:00:02", "123", path="/register", host="d.example.com"),
            ev(path="/register", host="d.example.com"),
            ev(path="/contact", host="e.example.com"),
        ]
    )
    wide = pages_report(events, Filter("hostname", "contains", (".example.com",)))
    assert list(wide["value"].astype(str)) == ["/", "/register", "/contact", "/landing"]
    assert list(wide["visitors"]) == [3, 2, 1, 1]
    one = pages_report(events, Filter("hostname", "is", ("d.example.com",)))
    assert list(one["value"].astype(str)) == ["/register", "/"]
    assert list(one["visitors"]) == [2, 1]


# --- Custom properties as filters ------------------------------------------------------------


def _author_pages() -> pd.DataFrame:
    # source: PAGES :: "returns top pages with :is filter on custom pageview props" (and the
    # :is_not one, whose third pageview is by a visitor of its own either way).
    return frame(
        [
            ev(path="/blog/john-1", props={"author": "John Doe"}),
            ev(path="/blog/other-post", props={"author": "other"}),
            ev(user="123", path="/"),
        ]
    )


def test_returns_top_pages_with_is_filter_on_custom_props__pages_test():
    # source: PAGES :: "returns top pages with :is filter on custom pageview props": only
    # /blog/john-1, 1 visitor.
    report = pages_report(_author_pages(), Filter("props.author", "is", ("John Doe",)))
    assert list(report["value"].astype(str)) == ["/blog/john-1"]
    assert list(report["visitors"]) == [1]


def test_returns_top_pages_with_is_not_filter_on_custom_props__pages_test():
    # source: PAGES :: "returns top pages with :is_not filter on custom pageview props": a
    # pageview without the key is "not John Doe" too: / 1 and /blog/other-post 1.
    report = pages_report(_author_pages(), Filter("props.author", "is_not", ("John Doe",)))
    assert sorted(report["value"].astype(str)) == ["/", "/blog/other-post"]
    assert list(report["visitors"]) == [1, 1]


def _prop_values() -> pd.DataFrame:
    # source: PAGES :: "... :matches_wildcard ..." / "... :matches_member filter on custom
    # pageview props" — prop values bar, foobar, baar, another key = bar, none, near.
    return frame(
        [
            ev(path="/1", props={"prop": "bar"}),
            ev(path="/2", props={"prop": "foobar"}),
            ev(path="/3", props={"prop": "baar"}),
            ev(path="/4", props={"another": "bar"}),
            ev(path="/5"),
            ev(path="/6", props={"prop": "near"}),
        ]
    )


def test_contains_filter_on_custom_props__pages_test():
    # source: PAGES :: "returns top pages with :matches_wildcard filter on custom pageview
    # props" — props.prop contains "bar": bar (/1) and foobar (/2); "baar" has no "bar";
    # /4's "bar" is under another key.
    report = pages_report(_prop_values(), Filter("props.prop", "contains", ("bar",)))
    assert sorted(report["value"].astype(str)) == ["/1", "/2"]


def test_contains_several_values_on_custom_props__pages_test():
    # source: PAGES :: "returns top pages with :matches_member filter on custom pageview
    # props" — contains "bar" or "nea": /1, /2, /6.
    report = pages_report(_prop_values(), Filter("props.prop", "contains", ("bar", "nea")))
    assert sorted(report["value"].astype(str)) == ["/1", "/2", "/6"]


def test_multiple_filters_on_custom_props_combine_with_and__pages_test():
    # source: PAGES :: "returns top pages with multiple filters on custom pageview props" —
    # prop = bar AND number = 1: only /1.
    events = frame(
        [
            ev(path="/1", props={"prop": "bar", "number": "1"}),
            ev(path="/2", props={"prop": "bar", "number": "2"}),
            ev(path="/3", props={"prop": "bar"}),
            ev(path="/4", props={"number": "bar"}),
            ev(path="/5"),
        ]
    )
    report = pages_report(
        events,
        Filter("props.prop", "is", ("bar",)),
        Filter("props.number", "is", ("1",)),
    )
    assert list(report["value"].astype(str)) == ["/1"]


def test_bounce_rate_and_time_on_page_with_is_filter_on_custom_props__pages_test():
    # source: PAGES :: "calculates bounce_rate and time_on_page with :is filter on custom
    # pageview props" — U: john-1 00:00 → /blog 00:01 → john-2 00:02; 456: john-2 00:00 →
    # /blog 00:10 (only the john-* views carry author = John Doe).
    # /blog/john-2: visitors 2, pageviews 2, entered once (456, not bounced) → 0 %, time:
    # 456's john-2 → /blog 600 s (U's john-2 is its last page) → 600 s.
    # /blog/john-1: 1, 1, entered by U (not bounced) → 0 %, john-1 → /blog 60 s.
    john = {"author": "John Doe"}
    events = frame(
        [
            ev("2021-01-01 00:00:00", "U", path="/blog/john-1", props=john),
            ev("2021-01-01 00:01:00", "U", path="/blog"),
            ev("2021-01-01 00:02:00", "U", path="/blog/john-2", props=john),
            ev("2021-01-01 00:00:00", "456", path="/blog/john-2", props=john),
            ev("2021-01-01 00:10:00", "456", path="/blog"),
        ]
    )
    report = pages_report(events, Filter("props.author", "is", ("John Doe",)))
    assert list(report["value"].astype(str)) == ["/blog/john-2", "/blog/john-1"]
    two, one = row(report, "/blog/john-2"), row(report, "/blog/john-1")
    assert (two["visitors"], two["pageviews"], percent(two["bounce_rate"])) == (2, 2, 0)
    assert_time(two["time_on_page"], 600)
    assert (one["visitors"], one["pageviews"], percent(one["bounce_rate"])) == (1, 1, 0)
    assert_time(one["time_on_page"], 60)


# --- Entry pages and exit pages ------------------------------------------------------------


def test_returns_top_entry_pages_by_visitors__pages_test():
    # source: PAGES :: "returns top entry pages by visitors" — two one-page visits on /page1;
    # U enters /page2 at 00:00 (→ /page2 00:15: 900 s) and again at 23:15 (a new visit, 0 s).
    # /page1: 2 visitors, 2 entrances, 0 s; /page2: 1 visitor, 2 entrances, (900 + 0)/2 = 450 s.
    events = frame(
        [
            ev("2021-01-01 00:00:00", path="/page1"),
            ev("2021-01-01 00:00:00", path="/page1"),
            ev("2021-01-01 00:00:00", "U", path="/page2"),
            ev("2021-01-01 00:15:00", "U", path="/page2"),
            ev("2021-01-01 23:15:00", "U", path="/page2"),
        ]
    )
    report = metrics.breakdown(events, "entry_page")
    assert list(report["value"].astype(str)) == ["/page1", "/page2"]
    page1, page2 = row(report, "/page1"), row(report, "/page2")
    assert (page1["visitors"], page1["visits"], round(page1["visit_duration"])) == (2, 2, 0)
    assert (page2["visitors"], page2["visits"], round(page2["visit_duration"])) == (1, 2, 450)


def test_returns_top_entry_pages_filtered_by_custom_props__pages_test():
    # source: PAGES :: "returns top entry pages filtered by custom pageview props" — author =
    # John Doe keeps the visits holding such a pageview: 123's (entered /blog, 00:00 → 00:01:
    # 60 s) and a one-page visit on /blog/john-2 (0 s). /blog: 1, 1, 60 s; john-2: 1, 1, 0 s.
    john = {"author": "John Doe"}
    events = frame(
        [
            ev("2021-01-01 00:00:00", "123", path="/blog"),
            ev("2021-01-01 00:01:00", "123", path="/blog/john-1", props=john),
            ev("2021-01-01 00:00:00", path="/blog/john-2", props=john),
            ev("2021-01-01 00:00:00", path="/blog/other-post", props={"author": "other"}),
            ev("2021-01-01 00:00:00", path="/blog"),
        ]
    )
    selection = metrics.select(events, [Filter("props.author", "is", ("John Doe",))])
    report = metrics.breakdown(selection, "entry_page")
    assert sorted(report["value"].astype(str)) == ["/blog", "/blog/john-2"]
    blog, john2 = row(report, "/blog"), row(report, "/blog/john-2")
    assert (blog["visitors"], blog["visits"], round(blog["visit_duration"])) == (1, 1, 60)
    assert (john2["visitors"], john2["visits"], round(john2["visit_duration"])) == (1, 1, 0)


def test_ignores_entry_and_exit_pages_from_sessions_with_only_custom_events__pages_test():
    # source: PAGES :: "ignores entry pages from sessions with only custom events" and
    # "ignores exit pages from sessions with only custom events": a lone Signup: no rows.
    events = frame([ev("2021-01-01 00:15:00", name="Signup", path="/")])
    assert metrics.breakdown(events, "entry_page").empty
    assert metrics.breakdown(events, "exit_page").empty


def test_returns_top_exit_pages_by_visitors__pages_test():
    # source: PAGES :: "returns top exit pages by visitors" — two one-page visits on /page1,
    # U: /page1 00:00 → /page2 00:15. /page1: 2 exits of 3 pageviews (exit rate 66 %, shown
    # truncated); /page2: 1 exit of 1 pageview (100 %).
    events = frame(
        [
            ev("2021-01-01 00:00:00", path="/page1"),
            ev("2021-01-01 00:00:00", path="/page1"),
            ev("2021-01-01 00:00:00", "U", path="/page1"),
            ev("2021-01-01 00:15:00", "U", path="/page2"),
        ]
    )
    report = metrics.breakdown(events, "exit_page")
    assert list(report["value"].astype(str)) == ["/page1", "/page2"]
    page1, page2 = row(report, "/page1"), row(report, "/page2")
    assert (page1["visitors"], page1["visits"]) == (2, 2)
    assert page1["exit_rate"] == pytest.approx(2 / 3) and math.floor(page1["exit_rate"] * 100) == 66
    assert (page2["visitors"], page2["visits"], page2["exit_rate"]) == (1, 1, 1.0)


def test_exit_pages_when_filtering_for_page__pages_test():
    # source: PAGES :: "calculates correct exit rate when filtering for page" — filtered for
    # /exit1: the visits holding it are user 1's (exits /exit1) and user 2's (/exit1 then
    # /exit2: exits /exit2); user 3 never saw /exit1. /exit1: 1 exit, /exit2: 1 exit.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "1", path="/exit1"),
            ev("2021-01-01 00:00:00", "2", path="/exit1"),
            ev("2021-01-01 00:00:01", "2", path="/exit2"),
            ev("2021-01-01 00:00:00", "3", path="/exit2"),
            ev("2021-01-01 00:00:01", "3", path="/should-not-appear"),
        ]
    )
    report = metrics.breakdown(metrics.select(events, [page("/exit1")]), "exit_page")
    assert sorted(report["value"].astype(str)) == ["/exit1", "/exit2"]
    assert list(report["visits"]) == [1, 1] and list(report["visitors"]) == [1, 1]


def test_returns_top_exit_pages_filtered_by_custom_props__pages_test():
    # source: PAGES :: "returns top exit pages filtered by custom pageview props" — only 123's
    # visit holds an author = John Doe pageview; it exits on /: / 1 visitor, 1 exit.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "123", path="/blog/john-1", props={"author": "John Doe"}),
            ev("2021-01-01 00:01:00", "123", path="/"),
            ev("2021-01-01 00:00:00", path="/blog/other-post", props={"author": "other"}),
            ev("2021-01-01 00:00:00", path="/"),
        ]
    )
    selection = metrics.select(events, [Filter("props.author", "is", ("John Doe",))])
    report = metrics.breakdown(selection, "exit_page")
    assert list(report["value"].astype(str)) == ["/"]
    assert (row(report, "/")["visitors"], row(report, "/")["visits"]) == (1, 1)


# --- Goals with wildcards, property breakdowns ------------------------------------------------

CONVERSIONS = "test/plausible_web/controllers/api/stats_controller/conversions_test.exs"


def test_returns_correct_and_sorted_glob_goal_counts__conversions_test():
    # source: CONVERSIONS :: "returns correct and sorted glob goal counts" — eight one-page
    # visitors; "*" stays within a path segment, "**" crosses segments.
    paths = [
        "/hum",
        "/register",
        "/reg",
        "/billing/success",
        "/billing/upgrade/success",
        "/signup/new",
        "/signup/new/2",
        "/signup/new/3",
    ]
    events = frame([ev("2019-07-01 23:00:00", path=p) for p in paths])
    expected = {
        "/**": 8,  # every path
        "/signup/**": 3,  # /signup/new, /signup/new/2, /signup/new/3
        "/*": 3,  # one segment: /hum, /register, /reg
        "/billing**/success": 2,  # /billing/success, /billing/upgrade/success
        "/reg*": 2,  # /register, /reg
        "/signup/*": 1,  # /signup/new only
        "/billing*/success": 1,  # /billing/success only
        "/register": 1,
        "/*/register": 0,
        "/signup": 0,
    }
    table = metrics.goal_conversions(events, list(expected)).set_index("goal")
    for goal, visitors in expected.items():
        assert table.loc[goal, "visitors"] == visitors, goal
        assert table.loc[goal, "events"] == visitors, goal
        assert table.loc[goal, "conversion_rate"] == pytest.approx(visitors / 8), goal


def test_can_combine_wildcard_and_no_wildcard_goals__conversions_test():
    # source: CONVERSIONS :: "can combine wildcard and no wildcard in matches_member" — three
    # one-page visitors: /blog/** 2 (66.7 %), /billing/upgrade 1 (33.3 %).
    events = frame([ev(path="/blog/post-1"), ev(path="/blog/post-2"), ev(path="/billing/upgrade")])
    table = metrics.goal_conversions(events, ["/blog/**", "/billing/upgrade"]).set_index("goal")
    assert (table.loc["/blog/**", "visitors"], table.loc["/blog/**", "events"]) == (2, 2)
    assert round(table.loc["/blog/**", "conversion_rate"] * 100, 1) == 66.7
    assert round(table.loc["/billing/upgrade", "conversion_rate"] * 100, 1) == 33.3


PROPS = "test/plausible_web/controllers/api/stats_controller/custom_prop_breakdown_test.exs"


def test_returns_breakdown_by_a_custom_property__custom_prop_breakdown_test():
    # source: PROPS :: "returns breakdown by a custom property" — two visitors with
    # "K2sna Kalle" (1 event each), user 123 with "Lotte" twice, one visitor with "Sipsik".
    key = "parim_s6ber"
    events = frame(
        [
            ev(props={key: "K2sna Kalle"}),
            ev(props={key: "K2sna Kalle"}),
            ev("2021-01-01 12:00:00", "123", props={key: "Lotte"}),
            ev("2021-01-01 12:00:01", "123", props={key: "Lotte"}),
            ev(props={key: "Sipsik"}),
        ]
    )
    report = metrics.breakdown(events, f"props.{key}")
    assert list(report["value"].astype(str)) == ["K2sna Kalle", "Lotte", "Sipsik"]
    assert list(report["visitors"]) == [2, 1, 1]
    assert list(report["events"]) == [2, 2, 1]


def test_returns_none_values_in_the_property_breakdown__custom_prop_breakdown_test():
    # source: PROPS :: "returns (none) values in the breakdown" — two visitors with the value,
    # one pageview without the key: "K2sna Kalle" 2 visitors / 2 events, "(none)" 1 / 1.
    key = "parim_s6ber"
    events = frame([ev(props={key: "K2sna Kalle"}), ev(props={key: "K2sna Kalle"}), ev()])
    report = metrics.breakdown(events, f"props.{key}")
    assert list(report["value"].astype(str)) == ["K2sna Kalle", "(none)"]
    assert list(report["visitors"]) == [2, 1] and list(report["events"]) == [2, 1]


def test_property_breakdown_for_goal_events__custom_prop_breakdown_test():
    # source: PROPS :: "returns property breakdown for goal" — three pageview visitors and
    # three Signup visitors (variant A once, B twice); filtered to Signup events: B 2, A 1.
    events = frame(
        [ev(path="/"), ev(path="/"), ev(path="/register")]
        + [ev(name="Signup", props={"variant": v}) for v in ("A", "B", "B")]
    )
    selection = metrics.select(events, [Filter("name", "is", ("Signup",))])
    report = metrics.breakdown(selection, "props.variant")
    assert list(report["value"].astype(str)) == ["B", "A"]
    assert list(report["visitors"]) == [2, 1] and list(report["events"]) == [2, 1]


# --- More time on page, visit-dimension filters, property filters ------------------------------


def test_averages_time_on_page_over_unique_transitions_across_sessions__top_stats_test():
    # source: TS :: "averages time on page over unique transitions across sessions" — s1:
    # /a → /b after 100 s; s2: /a → /d after 100 s, then /a → /d again after 0 s. The two
    # s2 transitions /a → /d are one: (100 + 100 + 0) s / 2 = 100 s.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "s1", path="/a"),
            ev("2021-01-01 00:01:40", "s1", path="/b"),
            ev("2021-01-01 00:00:00", "s2", path="/a"),
            ev("2021-01-01 00:01:40", "s2", path="/d"),
            ev("2021-01-01 00:01:40", "s2", path="/a"),
            ev("2021-01-01 00:01:40", "s2", path="/d"),
        ]
    )
    assert_time(row(pages_report(events, page("/a")), "/a")["time_on_page"], 100)


def test_time_on_page_time_series_per_day__query_time_on_page_test():
    # source: TOP :: "time_on_page time series" (without its imported /blog row) — "/" by
    # user 12 every day (100 s engaged each), and by user 13 on 2021-01-02 (300 s):
    # 01-01 100 s, 01-02 (100 + 300) / 2 = 200 s, 01-03 100 s, 01-04 100 s.
    records = []
    for day in ("01", "02", "03", "04"):
        records += [
            ev(f"2021-01-{day} 00:00:00", "12", path="/"),
            engagement(f"2021-01-{day} 00:03:00", "12", "/", ms=100_000),
        ]
    records += [
        ev("2021-01-02 00:00:00", "13", path="/"),
        engagement("2021-01-02 00:10:00", "13", "/", ms=300_000),
    ]
    events = frame(records)
    for day, expected in (("01", 100), ("02", 200), ("03", 100), ("04", 100)):
        start = pd.Timestamp(f"2021-01-{day}", tz="UTC")
        one_day = events[(events["ts"] >= start) & (events["ts"] < start + pd.Timedelta(days=1))]
        assert_time(row(metrics.breakdown(one_day, "path"), "/")["time_on_page"], expected)


def test_bounce_rate_and_time_on_page_with_is_not_filter_on_custom_props__pages_test():
    # source: PAGES :: "calculates bounce_rate and time_on_page with :is_not filter on custom
    # pageview props" — U: /blog 00:00 → john-1 00:01 → other-post 00:02; 456: /blog 00:00 →
    # john-1 00:03. Not John Doe: /blog and /blog/other-post. /blog: 2 visitors, 2 pageviews,
    # both visits entered there and went on → 0 %; time (60 + 180) / 2 = 120 s.
    # /blog/other-post: 1, 1, never an entry → 0 %, its visit's last page → no time.
    john = {"author": "John Doe"}
    events = frame(
        [
            ev("2021-01-01 00:00:00", "U", path="/blog"),
            ev("2021-01-01 00:01:00", "U", path="/blog/john-1", props=john),
            ev("2021-01-01 00:02:00", "U", path="/blog/other-post", props={"author": "other"}),
            ev("2021-01-01 00:00:00", "456", path="/blog"),
            ev("2021-01-01 00:03:00", "456", path="/blog/john-1", props=john),
        ]
    )
    report = pages_report(events, Filter("props.author", "is_not", ("John Doe",)))
    assert list(report["value"].astype(str)) == ["/blog", "/blog/other-post"]
    blog, other = row(report, "/blog"), row(report, "/blog/other-post")
    assert (blog["visitors"], blog["pageviews"], percent(blog["bounce_rate"])) == (2, 2, 0)
    assert_time(blog["time_on_page"], 120)
    assert (other["visitors"], other["pageviews"], percent(other["bounce_rate"])) == (1, 1, 0)
    assert_time(other["time_on_page"], None)


def test_returns_top_pages_with_not_member_filter_on_custom_props__pages_test():
    # source: PAGES :: "returns top pages with :not_member filter on custom pageview props" —
    # browser prop Chrome (2 visitors on /chrome), Safari (/safari), Firefox and none (both
    # /firefox); is not Chrome or Safari: /firefox, 2 visitors.
    events = frame(
        [
            ev("2021-01-01 00:00:00", path="/chrome", props={"browser": "Chrome"}),
            ev("2021-01-01 00:00:00", path="/chrome", props={"browser": "Chrome"}),
            ev("2021-01-01 00:00:00", path="/safari", props={"browser": "Safari"}),
            ev("2021-01-01 00:00:00", path="/firefox", props={"browser": "Firefox"}),
            ev("2021-01-01 00:00:00", path="/firefox"),
        ]
    )
    report = pages_report(events, Filter("props.browser", "is_not", ("Chrome", "Safari")))
    assert list(report["value"].astype(str)) == ["/firefox"]
    assert list(report["visitors"]) == [2]


def _purchases(*costs: str | None):
    return frame([ev(name="Purchase", props={} if c is None else {"cost": c}) for c in costs])


def test_property_breakdown_with_is_not_filter_on_prop_value__custom_prop_breakdown_test():
    # source: PROPS :: "returns (none) value in property breakdown with is_not filter on
    # prop_value" — Purchases with cost 0, 20, 20 and none (four visitors); cost is not 0:
    # "20" 2 visitors / 2 events, "(none)" 1 / 1.
    selection = metrics.select(
        _purchases("0", "20", "20", None),
        [Filter("name", "is", ("Purchase",)), Filter("props.cost", "is_not", ("0",))],
    )
    report = metrics.breakdown(selection, "props.cost")
    assert list(report["value"].astype(str)) == ["20", "(none)"]
    assert list(report["visitors"]) == [2, 1] and list(report["events"]) == [2, 1]


def test_property_breakdown_with_member_filter_on_prop_value__custom_prop_breakdown_test():
    # source: PROPS :: "does not return (none) value in property breakdown with member filter
    # on prop_value" — costs 0, 1, 1, none; cost is 0 or 1: "1" 2 / 2, "0" 1 / 1, no (none).
    selection = metrics.select(
        _purchases("0", "1", "1", None),
        [Filter("name", "is", ("Purchase",)), Filter("props.cost", "is", ("0", "1"))],
    )
    report = metrics.breakdown(selection, "props.cost")
    assert list(report["value"].astype(str)) == ["1", "0"]
    assert list(report["visitors"]) == [2, 1] and list(report["events"]) == [2, 1]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("utm_medium", "social"),  # QUERY :: "can filter by utm_medium"
        ("utm_source", "Twitter"),  # QUERY :: "can filter by utm_source"
        ("utm_campaign", "profile"),  # QUERY :: "can filter by utm_campaign"
        ("device", "Desktop"),  # QUERY :: "can filter by device type"
        ("browser", "Chrome"),  # QUERY :: "can filter by browser"
        ("browser_version", "56"),  # QUERY :: "can filter by browser version"
        ("os", "Mac"),  # QUERY :: "can filter by operating system"
        ("os_version", "10.5"),  # QUERY :: "can filter by operating system version"
    ],
)
def test_can_filter_by_visit_dimension__query_test(column, value):
    # source: QUERY :: "can filter by <dimension>" — U's visit starts with the value at 00:00
    # and views a second page at 00:25 without it; another visitor at 00:00. The filter keeps
    # U's whole visit: 2 pageviews, 1 visitor, bounce 0 %, duration 1500 s.
    events = frame(
        [
            ev("2021-01-01 00:00:00", "U", **{column: value}),
            ev("2021-01-01 00:25:00", "U"),
            ev("2021-01-01 00:00:00"),
        ]
    )
    got = metrics.summary(metrics.select(events, [Filter(column, "is", (value,))]))
    assert (got.pageviews, got.visitors, percent(got.bounce_rate)) == (2, 1, 0)
    assert round(got.visit_duration) == 1500


def test_entry_page_filter_contains_several_values__pages_test():
    # source: PAGES :: "filter by :matches_member entry_page with imported data" (its native
    # events only) — one-page visits on /aaa, /a, /ignored; entry page contains /a or /b:
    # /a 1 visit, /aaa 1 visit, each 0 s.
    events = frame(
        [
            ev("2021-01-01 12:00:00", path="/aaa"),
            ev("2021-01-01 12:00:00", path="/a"),
            ev("2021-01-01 12:01:00", path="/ignored"),
        ]
    )
    flt = Filter("entry_page", "contains", ("/a", "/b"))
    report = metrics.breakdown(metrics.select(events, [flt]), "entry_page")
    assert sorted(report["value"].astype(str)) == ["/a", "/aaa"]
    assert list(report["visits"]) == [1, 1] and list(report["visit_duration"]) == [0, 0]


def test_exit_page_filter_is_not__pages_test():
    # source: PAGES :: "filter by :is_not exit_page with imported data" (its native events
    # only) — one-page visits on /aaa, /a, /ignored; exit page is not /ignored: /a and /aaa,
    # 1 exit of 1 pageview each: exit rate 100 %.
    events = frame(
        [
            ev("2021-01-01 12:00:00", path="/aaa"),
            ev("2021-01-01 12:00:00", path="/a"),
            ev("2021-01-01 12:01:00", path="/ignored"),
        ]
    )
    flt = Filter("exit_page", "is_not", ("/ignored",))
    report = metrics.breakdown(metrics.select(events, [flt]), "exit_page")
    assert sorted(report["value"].astype(str)) == ["/a", "/aaa"]
    assert list(report["exit_rate"]) == [1.0, 1.0]


def test_returns_top_entry_pages_by_visitors_filtered_by_hostname__pages_test():
    # source: PAGES :: "returns top entry pages by visitors filtered by hostname" — hostname
    # is es.example.com. One-page visits on /page1 (en) and /page1 (es); U enters /page2 on
    # en at 00:00, then /page2 on es at 00:15 and /exit on es at 00:16; another visitor on
    # /page2 (es) at 23:15. Plausible matches an entry page by the hostname the visit
    # entered on, so U's visit (entered on en) is not there: /page1 1 visit 0 s, /page2
    # 1 visit 0 s.
    es, en = "es.example.com", "en.example.com"
    events = frame(
        [
            ev("2021-01-01 00:00:00", path="/page1", host=en),
            ev("2021-01-01 00:00:00", path="/page1", host=es),
            ev("2021-01-01 00:00:00", "U", path="/page2", host=en),
            ev("2021-01-01 00:15:00", "U", path="/page2", host=es),
            ev("2021-01-01 00:16:00", "U", path="/exit", host=es),
            ev("2021-01-01 23:15:00", path="/page2", host=es),
        ]
    )
    selection = metrics.select(events, [Filter("hostname", "is", (es,))])
    report = metrics.breakdown(selection, "entry_page")
    assert sorted(report["value"].astype(str)) == ["/page1", "/page2"]
    assert list(report["visits"]) == [1, 1]
    assert list(report["visit_duration"]) == [0, 0]


def test_returns_top_exit_pages_by_visitors_filtered_by_hostname__pages_test():
    # source: PAGES :: "returns top exit pages by visitors filtered by hostname" — hostname
    # is es.example.com. One-page visits on /page1 (en) and /page1 (es); U: /page1 (en)
    # 00:00 → /page2 (es) 00:15 → /exit (en) 00:16. Plausible matches an exit page by the
    # hostname the visit left on: U left on en, so only /page1: 1 visitor, 1 exit.
    es, en = "es.example.com", "en.example.com"
    events = frame(
        [
            ev("2021-01-01 00:00:00", path="/page1", host=en),
            ev("2021-01-01 00:00:00", path="/page1", host=es),
            ev("2021-01-01 00:00:00", "U", path="/page1", host=en),
            ev("2021-01-01 00:15:00", "U", path="/page2", host=es),
            ev("2021-01-01 00:16:00", "U", path="/exit", host=en),
        ]
    )
    selection = metrics.select(events, [Filter("hostname", "is", (es,))])
    report = metrics.breakdown(selection, "exit_page")
    assert list(report["value"].astype(str)) == ["/page1"]
    assert (row(report, "/page1")["visitors"], row(report, "/page1")["visits"]) == (1, 1)
