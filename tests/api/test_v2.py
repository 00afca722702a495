"""The v2 query engine on moto: numbers worked out by hand and equal to `pipeline.stats.metrics`
on the same stored events, rollups and raw events agreeing, Plausible's shapes and errors."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pandas as pd
import pytest

from pipeline import load_events
from pipeline.api import v2
from pipeline.api.http import ApiError
from pipeline.api.source import FrameSource, StoreSource
from pipeline.stats import metrics
from tests.api.conftest import HAND, NOW, SITE, THU, TODAY, WED, at

WEEK = {"site_id": SITE, "date_range": "7d"}  # Fri 13 .. Thu 19: today excluded


@pytest.fixture
def source(stats_site_module) -> StoreSource:
    settings, site = stats_site_module
    return StoreSource(settings, site, "UTC", now=lambda: NOW)


def ask(source, use_rollups=None, **body):
    return v2.query({**WEEK, **body}, source, use_rollups=use_rollups)


def raw_week(source) -> pd.DataFrame:
    start = pd.Timestamp(TODAY - timedelta(days=7), tz="UTC")
    return load_events(SITE, start, pd.Timestamp(TODAY, tz="UTC"), settings=source.settings)


def test_aggregate_is_the_hand_count_on_both_paths(source):
    names = list(HAND)
    for use in (True, False):
        found = ask(source, use, metrics=names)
        assert found["results"] == [{"metrics": [HAND[n] for n in names], "dimensions": []}]
    assert v2.rollups_can_answer(v2.parse({**WEEK, "metrics": names}, source))


def test_aggregate_equals_metrics_summary_of_the_stored_events(source):
    expected = metrics.summary(raw_week(source))
    found = ask(source, metrics=["visitors", "visits", "pageviews", "bounce_rate"])
    assert found["results"][0]["metrics"] == [
        expected.visitors,
        expected.visits,
        expected.pageviews,
        round(expected.bounce_rate * 100),
    ]


def test_the_query_is_echoed_in_plausibles_form(source):
    found = ask(source, metrics=["visitors"])
    assert found["meta"] == {}
    assert found["query"] == {
        "site_id": SITE,
        "metrics": ["visitors"],
        "date_range": ["2026-11-13T00:00:00+00:00", "2026-11-19T23:59:59+00:00"],
        "filters": [],
        "dimensions": [],
        "order_by": [["visitors", "desc"]],
        "include": {},
        "pagination": {"limit": 10000, "offset": 0},
    }


PATH_AGREEMENT = [
    {"metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]},
    {"metrics": ["visitors", "pageviews"], "filters": [["is", "visit:country", ["DE"]]]},
    {"metrics": ["visitors", "bounce_rate"], "filters": [["is", "visit:source", ["Google"]]]},
    {
        "metrics": ["visitors", "visits", "pageviews", "bounce_rate", "time_on_page"],
        "dimensions": ["event:page"],
    },
    {"metrics": ["visitors", "visit_duration", "percentage"], "dimensions": ["visit:source"]},
    {"metrics": ["visitors", "visits"], "dimensions": ["visit:country"]},
    {"metrics": ["visitors", "visits"], "dimensions": ["visit:entry_page"]},
    {"metrics": ["visitors", "events"], "dimensions": ["event:name"]},
    {"metrics": ["visitors", "visits", "pageviews"], "dimensions": ["time:day"]},
    {"metrics": ["visitors", "pageviews"], "dimensions": ["time:hour"], "date_range": "day"},
    {
        "metrics": ["visitors"],
        "dimensions": ["time:week"],
        "date_range": "28d",
        "include": {"comparisons": {"mode": "previous_period"}, "time_labels": True},
    },
    {
        "metrics": ["visitors", "pageviews"],
        "dimensions": ["visit:browser"],
        "include": {"comparisons": {"mode": "year_over_year"}, "total_rows": True},
    },
]


@pytest.mark.parametrize("body", PATH_AGREEMENT)
def test_rollups_and_raw_events_give_the_same_answer(source, body):
    parsed = v2.parse({**WEEK, **body}, source)
    assert v2.rollups_can_answer(parsed), body
    from_rollups = ask(source, True, **body)
    assert from_rollups == ask(source, False, **body)
    assert from_rollups["results"], body


def test_rollups_path_is_taken_and_agrees_in_another_zone(stats_site_module):
    settings, site = stats_site_module
    # Berlin's days are not the stored (UTC) rollups' days: they are recomputed, same numbers.
    berlin = StoreSource(settings, site, "Europe/Berlin", now=lambda: NOW)
    for body in PATH_AGREEMENT[:6]:
        assert ask(berlin, True, **body) == ask(berlin, False, **body)


def test_breakdowns_equal_metrics_breakdown(source):
    events = raw_week(source)
    for dimension, column_name in (
        ("visit:source", "referrer_source"),
        ("event:page", "path"),
        ("visit:exit_page", "exit_page"),
        ("visit:browser_version", "browser_version"),
    ):
        table = metrics.breakdown(events, column_name)
        found = ask(source, metrics=["visitors", "visits", "bounce_rate"], dimensions=[dimension])
        got = {r["dimensions"][0]: r["metrics"] for r in found["results"]}
        want = {
            row.value: [row.visitors, row.visits, round(row.bounce_rate * 100)]
            for row in table.itertuples()
        }
        assert got == want, dimension


def test_event_name_and_property_breakdowns_by_hand(source):
    names = ask(source, metrics=["visitors", "events", "pageviews"], dimensions=["event:name"])
    assert names["results"] == [
        {"dimensions": ["pageview"], "metrics": [5, 7, 7]},
        {"dimensions": ["Signup"], "metrics": [2, 2, 0]},
    ]
    plans = ask(source, metrics=["visitors", "events"], dimensions=["event:props:plan"])
    rows = {tuple(r["dimensions"]): r["metrics"] for r in plans["results"]}
    # Every non-engagement event counts; the seven pageviews carry no plan.
    assert rows == {("(none)",): [5, 7], ("pro",): [1, 1], ("free",): [1, 1]}
    filtered = ask(
        source, metrics=["visitors", "events"], filters=[["is", "event:props:plan", ["pro"]]]
    )
    assert filtered["results"][0]["metrics"] == [1, 1]


def test_goals_conversions_by_hand(source):
    found = ask(
        source, metrics=["visitors", "events", "conversion_rate"], dimensions=["event:goal"]
    )
    assert found["results"] == [{"dimensions": ["Signup"], "metrics": [2, 2, 40.0]}]
    page_goal = ask(
        source,
        metrics=["visitors", "conversion_rate"],
        filters=[["is", "event:goal", ["/pricing"]]],
    )
    assert page_goal["results"][0]["metrics"] == [2, 40.0]  # both of alice's hashes
    core = raw_week(source)
    expected = metrics.goal_conversions(core, ["/pricing"]).iloc[0]
    assert page_goal["results"][0]["metrics"][0] == expected["visitors"]


def test_timeseries_equals_metrics_timeseries(source):
    events = raw_week(source)
    start = pd.Timestamp(TODAY - timedelta(days=7), tz="UTC")
    series = metrics.timeseries(events, "day", "UTC", start, pd.Timestamp(TODAY, tz="UTC"))
    found = ask(
        source,
        metrics=["visitors", "visits", "pageviews"],
        dimensions=["time:day"],
        include={"time_labels": True},
    )
    with_data = series[series["visitors"] > 0]
    assert [r["dimensions"][0] for r in found["results"]] == [
        b.strftime("%Y-%m-%d") for b in with_data["bucket"]
    ]
    assert [r["metrics"] for r in found["results"]] == with_data[
        ["visitors", "visits", "pageviews"]
    ].values.tolist()
    assert found["meta"]["time_labels"] == [b.strftime("%Y-%m-%d") for b in series["bucket"]]
    hourly = ask(source, metrics=["visitors"], dimensions=["time:hour"], date_range="day")
    assert hourly["results"] == [{"dimensions": ["2026-11-20 14:00:00"], "metrics": [1]}]


def test_session_metrics_by_time_bucket_are_the_visits_started_there(source):
    found = ask(source, metrics=["visits", "bounce_rate", "visit_duration"], dimensions=["time"])
    # "time" over a week is by day. Wed: alice 360 s, bob bounced; Thu: 600, 0 (bounce), 60.
    assert found["results"] == [
        {"dimensions": [WED.isoformat()], "metrics": [2, 50, 180]},
        {"dimensions": [THU.isoformat()], "metrics": [3, 33, 220]},
    ]


def test_several_dimensions_and_filters(source):
    found = ask(
        source,
        metrics=["visitors", "pageviews"],
        dimensions=["visit:country", "event:page"],
        filters=[["is_not", "visit:device", ["Tablet"]], ["contains", "event:page", ["/"]]],
        order_by=[["pageviews", "desc"], ["visit:country", "asc"]],
    )
    rows = {tuple(r["dimensions"]): r["metrics"] for r in found["results"]}
    assert rows == {
        ("DE", "/"): [1, 1],
        ("DE", "/pricing"): [2, 2],  # alice on two days: two hashes
        ("FR", "/"): [1, 1],
        ("FR", "/blog"): [1, 1],
        ("US", "/"): [2, 2],
    }
    assert found["results"][0]["metrics"][1] == 2  # pageviews descending first
    names = ask(source, metrics=["visitors"], dimensions=["visit:country_name"])
    assert {r["dimensions"][0] for r in names["results"]} == {"Germany", "France", "United States"}
    by_name = ask(source, metrics=["visitors"], filters=[["is", "visit:country_name", ["France"]]])
    assert by_name["results"][0]["metrics"] == [1]


def test_logic_filters_that_say_what_the_dashboard_can(source):
    either = ask(
        source,
        metrics=["visitors"],
        filters=[["or", [["is", "visit:country", ["FR"]], ["is", "visit:country", ["US"]]]]],
    )
    assert either["results"][0]["metrics"] == [3]
    negated = ask(source, metrics=["visitors"], filters=[["not", ["is", "visit:country", ["DE"]]]])
    assert negated["results"][0]["metrics"] == [3]


def test_pagination_order_and_total_rows(source):
    body = {
        "metrics": ["visitors"],
        "dimensions": ["event:page"],
        "order_by": [["event:page", "asc"]],
        "include": {"total_rows": True},
    }
    first = ask(source, pagination={"limit": 2}, **body)
    rest = ask(source, pagination={"limit": 2, "offset": 2}, **body)
    assert [r["dimensions"][0] for r in first["results"]] == ["/", "/blog"]
    assert [r["dimensions"][0] for r in rest["results"]] == ["/pricing"]
    assert first["meta"]["total_rows"] == rest["meta"]["total_rows"] == 3


def test_datetime_range_is_inclusive_of_its_last_second(source):
    found = ask(
        source,
        metrics=["visitors", "pageviews"],
        date_range=["2026-11-19T09:00:00+00:00", "2026-11-19T12:00:00+00:00"],
    )
    assert found["results"][0]["metrics"] == [2, 3]  # carol's two pages, alice's 12:00
    assert found["query"]["date_range"] == [
        "2026-11-19T09:00:00+00:00",
        "2026-11-19T12:00:00+00:00",
    ]
    assert not v2.rollups_can_answer(
        v2.parse(
            {**WEEK, "metrics": ["visitors"], "date_range": found["query"]["date_range"]}, source
        )
    )


def test_aggregate_comparison_previous_period(source):
    found = ask(
        source,
        metrics=["visitors", "bounce_rate"],
        date_range=[THU.isoformat(), THU.isoformat()],
        include={"comparisons": {"mode": "previous_period"}},
    )
    # Thu: 3 visitors, 1 of 3 visits bounced; Wed: 2 visitors, 1 of 2 bounced.
    assert found["results"] == [
        {
            "dimensions": [],
            "metrics": [3, 33],
            "comparison": {"dimensions": [], "metrics": [2, 50], "change": [50, -17]},
        }
    ]


BAD = [
    ({"metrics": ["visitors", "baa"]}, '#/metrics/1: Invalid metric "baa"'),
    ({"metrics": "visitors"}, "#/metrics: Type mismatch. Expected Array but got String."),
    ({"metrics": ["visitors", "visitors"]}, "#/metrics: Expected items to be unique but they were not."),
    ({"dimensions": ["badproperty"]}, '#/dimensions/0: Invalid dimension "badproperty"'),
    ({"dimensions": ["event:props:"]}, '#/dimensions/0: Invalid dimension "event:props:"'),
    ({"date_range": "bad_period"}, '#/date_range: Invalid date range "bad_period"'),
    ({"date_range": "36500d"}, 'Invalid date_range "36500d"'),
    ({"date_range": 7}, "#/date_range: Invalid date range 7"),
    (
        {"date_range": ["2026-11-10", "2026-11-01"]},
        'Invalid date_range ["2026-11-10", "2026-11-01"]: the first date is after the last one.',
    ),
    (
        {"date_range": ["1926-01-01", "2026-01-01"]},
        "Invalid date_range: at most 3660 days (ten years) can be queried at once.",
    ),
    ({"date_range": ["2026-11-01", "yesterday"]}, 'Invalid date_range \'["2026-11-01", "yesterday"]\'.'),
    ({"date": "someday"}, "Invalid date 'someday'."),
    (
        {"metrics": ["conversion_rate"], "dimensions": ["event:page"]},
        "Metric `conversion_rate` can only be queried with event:goal filters or dimensions",
    ),
    (
        {"metrics": ["scroll_depth"]},
        "Metric `scroll_depth` can only be queried with event:page filters or dimensions",
    ),
    (
        {"metrics": ["views_per_visit"], "filters": [["is", "event:page", ["/"]]]},
        "Metric `views_per_visit` cannot be queried with a filter on `event:page`",
    ),
    (
        {"metrics": ["views_per_visit"], "dimensions": ["event:name"]},
        "Metric `views_per_visit` cannot be queried with `dimensions`",
    ),
    (
        {"metrics": ["visitors", "bounce_rate"], "dimensions": ["event:props:url"]},
        "Session metric(s) `bounce_rate` cannot be queried along with event dimensions",
    ),
    (
        {"filters": [["is", "visit:country", ["USA"]]]},
        "Invalid visit:country filter, visit:country needs to be a valid 2-letter country code",
    ),
    ({"filters": [["is", "visit:nope", ["x"]]]}, 'Invalid filter \'["is", "visit:nope", ["x"]]\'.'),
    ({"filters": [["is", "event:page", "/"]]}, 'Invalid filter \'["is", "event:page", "/"]\'.'),
    ({"filters": [["is", "event:page", [1]]]}, 'Invalid filter \'["is", "event:page", [1]]\'.'),
    ({"filters": [["resembles", "event:page", ["/"]]]}, "Unknown operator for filter '[\"resembles\", \"event:page\", [\"/\"]]'."),
    ({"filters": "event:page==/"}, "#/filters: Type mismatch. Expected Array but got String."),
    (
        {"order_by": [["visits", "desc"]]},
        "Invalid order_by entry '[\"visits\", \"desc\"]'. Entry is not a queried metric or dimension.",
    ),
    ({"order_by": [["visitors", "down"]]}, "Invalid order_by entry '[\"visitors\", \"down\"]'."),
    ({"pagination": {"limit": 0}}, "#/pagination/limit: Expected the value to be >= 1"),
    ({"pagination": {"limit": "ten"}}, "#/pagination/limit: Type mismatch. Expected Integer but got String."),
    ({"include": {"time_labels": True}}, "Invalid include.time_labels: requires a time dimension"),
    ({"include": {"everything": True}}, "#/include: Schema does not allow additional properties."),
    ({"surprise": 1}, "#: Schema does not allow additional properties."),
]  # fmt: skip


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_queries_get_plausibles_400(source, change, message):
    body = {**WEEK, "metrics": ["visitors"], **change}
    with pytest.raises(ApiError) as caught:
        v2.query(body, source)
    assert (caught.value.status, caught.value.message) == (400, message)


def test_missing_and_unsupported_are_clear_400s(source):
    for body, start in (
        ({"site_id": SITE}, "#: Required properties metrics, date_range were not present."),
        ([], "#: Type mismatch. Expected Object but got Array."),
        ({**WEEK, "metrics": ["visitors"], "dimensions": ["visit:channel"]}, "Dimension `visit:channel` is not supported"),
        ({**WEEK, "metrics": ["visitors"], "filters": [["matches", "event:page", ["^/b"]]]}, "Unsupported filter operator `matches`"),
        ({**WEEK, "metrics": ["visitors"], "filters": [["has_done", ["is", "event:name", ["Signup"]]]]}, "Unsupported filter"),
        ({**WEEK, "metrics": ["bounce_rate"], "filters": [["is", "event:goal", ["Signup"]]]}, "Metric(s) `bounce_rate` cannot be queried with event:goal"),
    ):  # fmt: skip
        with pytest.raises(ApiError) as caught:
            v2.query(body, source)
        assert caught.value.status == 400
        assert caught.value.message.startswith(start), caught.value.message


def all_events(source) -> pd.DataFrame:
    start = pd.Timestamp(TODAY - timedelta(days=30), tz="UTC")
    return load_events(SITE, start, pd.Timestamp(NOW), settings=source.settings)


def test_an_in_memory_source_answers_as_the_store(source):
    frame = FrameSource(all_events(source), SITE, "UTC", now=NOW)
    for body in PATH_AGREEMENT:
        for use in (True, False):
            assert ask(frame, use, **body) == ask(source, use, **body), body


FUZZ_DIMENSIONS = [
    "event:page", "visit:country", "visit:country_name", "event:goal", "event:props:plan",
    "visit:source", "event:name", "event:hostname", "visit:utm_source", "visit:exit_page",
    "time", "time:week", "time:hour",
]  # fmt: skip


def _fuzz_filter(rng: random.Random, depth: int = 0) -> list:
    operator = rng.choice(["is", "is_not", "contains", "or", "not", "and", "matches"])
    if operator in ("or", "and") and depth < 2:
        return [operator, [_fuzz_filter(rng, depth + 1) for _ in range(rng.randint(0, 2))]]
    if operator == "not" and depth < 2:
        return [operator, _fuzz_filter(rng, depth + 1)]
    values = rng.choice([["/"], ["DE"], ["Germany"], [""], ["(not set)"], ["pro"], [], "x", [1]])
    found = [operator, rng.choice(FUZZ_DIMENSIONS[:-3]), values]
    if rng.random() < 0.2:
        found.append(rng.choice([{"case_sensitive": False}, {"x": 1}, 3]))
    return found


def test_any_combination_answers_json_or_a_400(source):
    """Seeded random queries mixing every metric, dimension, filter form and include: each
    is an answer that encodes as JSON (no NaN) or a 400, never a crash."""
    frame = FrameSource(all_events(source), SITE, "UTC", now=NOW)
    rng = random.Random(15)
    answered = 0
    for _ in range(150):
        body = {
            "site_id": SITE,
            "metrics": rng.sample(v2.METRICS, rng.randint(1, 3)),
            "date_range": rng.choice(
                ["7d", "day", "month", "all", [str(WED), str(TODAY)],
                 ["2026-11-19T10:00:00Z", "2026-11-20T10:00:00+02:00"]]
            ),
            "filters": [_fuzz_filter(rng) for _ in range(rng.randint(0, 2))],
            "dimensions": rng.sample(FUZZ_DIMENSIONS, rng.randint(0, 2)),
        }  # fmt: skip
        if rng.random() < 0.3:
            body["include"] = rng.choice(
                [
                    {"comparisons": {"mode": "previous_period"}},
                    {"time_labels": True, "total_rows": True},
                    {"comparisons": {"mode": "custom", "date_range": ["2026-10-01", "2026-10-05"]}},
                ]
            )
        if rng.random() < 0.2:
            body["pagination"] = {"limit": rng.randint(1, 3), "offset": rng.randint(0, 3)}
        try:
            json.dumps(v2.query(body, frame), allow_nan=False)
            answered += 1
        except ApiError as refused:
            assert refused.status == 400 and refused.message
    assert answered > 15


def test_realtime_ranges_are_the_last_minutes(stats_site_module):
    settings, site = stats_site_module
    for minute, expected in (("14:03", 1), ("14:06", 0)):
        source = StoreSource(settings, site, "UTC", now=lambda m=minute: at(TODAY, m))
        found = v2.query({**WEEK, "metrics": ["visitors"], "date_range": "realtime"}, source)
        assert found["results"][0]["metrics"] == [expected], minute
    late = StoreSource(settings, site, "UTC", now=lambda: at(TODAY, "14:25"))
    found = v2.query({**WEEK, "metrics": ["visitors"], "date_range": "30m"}, late)
    assert found["results"][0]["metrics"] == [1]
    assert found["query"]["date_range"] == [f"{TODAY}T13:55:00+00:00", f"{TODAY}T14:25:05+00:00"]
