"""Metric functions on small hand-made event sets; every expected number worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from pipeline.stats import metrics
from pipeline.store.query import events_frame


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def frame(rows: list[tuple[str, str, str, str]], **extra) -> pd.DataFrame:
    """(time, visitor, name, path) rows → the events frame `load_events` returns."""
    records = [
        {
            "ts": at(ts),
            "visitor": visitor,
            "name": name,
            "path": path,
            "site": "e.com",
            "referrer_source": extra.get(visitor, "Direct / None"),
        }
        for ts, visitor, name, path in rows
    ]
    return events_frame(records)


# Visitor A: two visits (a 40-minute gap). B: one visit with a custom event, not a bounce.
# C: 23:50 UTC; at 00:05 the salt has rotated, so the same person is C2: two visits.
EVENTS = [
    ("2026-11-20T10:00:00", "A", "pageview", "/"),
    ("2026-11-20T10:10:00", "A", "pageview", "/b"),
    ("2026-11-20T10:50:00", "A", "pageview", "/"),
    ("2026-11-20T10:05:00", "B", "pageview", "/pricing"),
    ("2026-11-20T10:06:00", "B", "Signup", "/pricing"),
    ("2026-11-20T23:50:00", "C", "pageview", "/"),
    ("2026-11-21T00:05:00", "C2", "pageview", "/x"),
]


@pytest.fixture
def events() -> pd.DataFrame:
    return frame(EVENTS, B="Google")


def test_summary(events):
    assert metrics.summary(events) == metrics.Summary(
        visitors=4,
        visits=5,
        pageviews=6,
        views_per_visit=1.2,
        bounce_rate=0.6,
        visit_duration=132.0,
    )


def test_a_visit_continues_up_to_a_30_minute_gap_in_whole_seconds():
    # Plausible's session lives 30 minutes after the visit's last event; times are truncated
    # to the second, as Plausible stores them.
    def count(second: str) -> int:
        return len(
            metrics.visits(
                frame(
                    [
                        ("2026-11-20T10:00:00.100", "A", "pageview", "/"),
                        (second, "A", "pageview", "/"),
                    ]
                )
            )
        )

    assert count("2026-11-20T10:29:59") == 1
    assert count("2026-11-20T10:30:00.900") == 1  # 30:00.8 apart: 30:00 in whole seconds
    assert count("2026-11-20T10:30:01") == 2


def test_visits_table(events):
    table = metrics.visits(events).sort_values("start")
    assert table[
        ["visitor", "pageviews", "custom_events", "bounce", "duration", "entry_page", "exit_page"]
    ].values.tolist() == [
        ["A", 2, 0, False, 600.0, "/", "/b"],
        ["B", 1, 1, False, 60.0, "/pricing", "/pricing"],
        ["A", 1, 0, True, 0.0, "/", "/"],
        ["C", 1, 0, True, 0.0, "/", "/"],
        ["C2", 1, 0, True, 0.0, "/x", "/x"],
    ]


def test_empty_input_gives_zeros_not_nan():
    empty = frame([])
    assert metrics.summary(empty) == metrics.Summary(0, 0, 0, 0.0, 0.0, 0.0)
    assert metrics.breakdown(empty, "path").empty
    assert metrics.timeseries(empty).empty
    assert metrics.current_visitors(empty, pd.Timestamp("2026-11-20T10:00:00Z")) == 0
    assert metrics.funnel(empty, ["/"])["visits"].tolist() == [0]


def test_breakdown_by_page(events):
    table = metrics.breakdown(events, "path")
    nan = float("nan")
    rows = [
        # "/" seen by A and C, 3 pageviews, in 3 visits; all 3 entered there, 2 bounced;
        # the visits holding it last 600, 0 and 0 s; A moved on to /b after 600 s (the legacy
        # time on page: no engagement events here).
        ["/", 2, 3, 3, 2 / 3, 200.0, 600.0, nan],
        # /b: in A's first visit (600 s), entered by none, left by nobody to another page.
        ["/b", 1, 1, 1, 0.0, 600.0, nan, nan],
        # /pricing: B's pageview and Signup there; the move to the same page is no transition.
        ["/pricing", 1, 1, 1, 0.0, 60.0, nan, nan],
        ["/x", 1, 1, 1, 1.0, 0.0, nan, nan],
    ]
    expected = pd.DataFrame(rows, columns=list(table.columns))
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)


def test_breakdown_by_source_counts_visits(events):
    table = metrics.breakdown(events, "referrer_source")
    assert table[["value", "visitors", "visits", "pageviews"]].values.tolist() == [
        ["Direct / None", 3, 4, 5],
        ["Google", 1, 1, 1],
    ]


def test_breakdown_by_exit_page_and_limit(events):
    assert metrics.breakdown(events, "exit_page", limit=2)["value"].tolist() == ["/", "/b"]


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        # UTC: C is on the 20th, C2 on the 21st.
        ("UTC", [("2026-11-20", 3, 4, 5), ("2026-11-21", 1, 1, 1)]),
        # New York is UTC-5: 23:50 and 00:05 UTC are both the evening of the 20th.
        ("America/New_York", [("2026-11-20", 4, 5, 6)]),
    ],
)
def test_day_buckets_in_the_sites_time_zone(events, tz, expected):
    series = metrics.timeseries(events, "day", tz)
    assert [
        (b.strftime("%Y-%m-%d"), v, s, p) for b, v, s, p in series.itertuples(index=False)
    ] == expected


def test_hourly_series_fills_empty_hours_within_the_range(events):
    start, end = pd.Timestamp("2026-11-20T09:00:00Z"), pd.Timestamp("2026-11-20T12:00:00Z")
    series = metrics.timeseries(events[events["ts"] < end], "hour", "UTC", start, end)
    assert series["pageviews"].tolist() == [0, 4, 0] and series["visits"].tolist() == [0, 3, 0]


def test_weekly_and_monthly_buckets(events):
    assert metrics.timeseries(events, "week")["bucket"].dt.strftime("%Y-%m-%d").tolist() == [
        "2026-11-16"
    ]
    assert metrics.timeseries(events, "month")["bucket"].dt.strftime("%Y-%m-%d").tolist() == [
        "2026-11-01"
    ]


@pytest.mark.parametrize(
    ("current", "previous", "change"),
    [
        (150, 100, 50.0),
        (50, 100, -50.0),
        (0, 0, 0.0),
        (5, 0, None),
        (5, None, None),
        (0, 10, -100.0),
    ],
)
def test_percent_change_edge_cases(current, previous, change):
    assert metrics.percent_change(current, previous) == change


def test_current_visitors(events):
    assert (
        metrics.current_visitors(events, pd.Timestamp("2026-11-20T10:08:00Z")) == 1
    )  # B at 10:05 and 10:06
    assert (
        metrics.current_visitors(events, pd.Timestamp("2026-11-20T10:10:30Z")) == 2
    )  # A 10:10, B 10:06
    assert metrics.current_visitors(events, pd.Timestamp("2026-11-20T10:12:00Z")) == 1  # A only


def test_goal_conversions(events):
    table = metrics.goal_conversions(events, ["Signup", "/pricing", "Missing"])
    assert table.values.tolist() == [
        ["Signup", 1, 1, 0.25],
        ["/pricing", 1, 1, 0.25],
        ["Missing", 0, 0, 0.0],
    ]


def test_funnel_is_ordered_within_visits(events):
    table = metrics.funnel(events, ["/", "/b"])
    assert table.to_dict("records") == [
        {"step": "/", "visits": 3, "conversion_rate": 1.0, "drop_off": 0.0},
        {
            "step": "/b",
            "visits": 1,
            "conversion_rate": pytest.approx(1 / 3),
            "drop_off": pytest.approx(2 / 3),
        },
    ]
    assert metrics.funnel(events, ["/b", "/"])["visits"].tolist() == [1, 0]  # "/" came before "/b"


def test_filters_combine_with_and(events):
    assert len(metrics.filter_events(events, {"referrer_source": "Google", "name": "Signup"})) == 1
    assert len(metrics.filter_events(events, {"referrer_source": "Google", "path": "/x"})) == 0


def test_a_source_filter_keeps_whole_visits():
    # D arrives from Google; D's second page has the site itself as referrer ("Direct / None").
    rows = [
        {
            "ts": at("2026-11-20T10:00:00"),
            "visitor": "D",
            "name": "pageview",
            "path": "/",
            "site": "e.com",
            "referrer_source": "Google",
        },
        {
            "ts": at("2026-11-20T10:02:00"),
            "visitor": "D",
            "name": "pageview",
            "path": "/b",
            "site": "e.com",
            "referrer_source": "Direct / None",
        },
        {
            "ts": at("2026-11-20T10:01:00"),
            "visitor": "E",
            "name": "pageview",
            "path": "/",
            "site": "e.com",
            "referrer_source": "Direct / None",
        },
    ]
    google = metrics.filter_events(events_frame(rows), {"referrer_source": "Google"})
    assert google["path"].tolist() == ["/", "/b"]
    assert metrics.summary(google) == metrics.Summary(1, 1, 2, 2.0, 0.0, 120.0)


def test_metric_functions_do_not_mutate_their_input(events):
    before = events.copy()
    (
        metrics.summary(events),
        metrics.breakdown(events, "path"),
        metrics.timeseries(events),
        metrics.funnel(events, ["/"]),
    )
    pd.testing.assert_frame_equal(events, before)
