"""The request/response examples of Plausible's Stats API v2 documentation (plausible/docs,
src/js/apiv2-examples/*), reproduced on our own stored events: the same request shapes give
the documented response shapes, and every number equals `pipeline.stats.metrics` on the same
events (or a count worked out by hand from tests/api/conftest.py's HITS)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from pipeline import load_events
from pipeline.api import v2
from pipeline.api.source import StoreSource
from pipeline.stats import metrics
from tests.api.conftest import NOW, SITE, THU, TODAY, WED

FIRST = TODAY - timedelta(days=7)  # "7d": the seven days before today


@pytest.fixture
def source(stats_site_module) -> StoreSource:
    settings, site = stats_site_module
    return StoreSource(settings, site, "UTC", now=lambda: NOW)


@pytest.fixture
def week(source) -> pd.DataFrame:
    start, end = pd.Timestamp(FIRST, tz="UTC"), pd.Timestamp(TODAY, tz="UTC")
    return load_events(SITE, start, end, settings=source.settings)


def core(events: pd.DataFrame) -> pd.DataFrame:
    return events[events["name"] != metrics.ENGAGEMENT]


def ask(source, body):
    return v2.query({"site_id": SITE, **body}, source)


def test_aggregate_example(source, week):
    """aggregate-query.json: visitors and events over 7d."""
    found = ask(source, {"metrics": ["visitors", "events"], "date_range": "7d"})
    assert list(found) == ["results", "meta", "query"]
    assert found["results"] == [
        {"metrics": [metrics.summary(week).visitors, len(core(week))], "dimensions": []}
    ]
    assert found["meta"] == {}
    assert found["query"]["order_by"] == [["visitors", "desc"]]
    assert found["query"]["dimensions"] == [] and found["query"]["filters"] == []


def test_custom_date_range_example(source):
    """custom-date-range-query.json: [from, to] dates, both days included."""
    found = ask(source, {"metrics": ["visitors"], "date_range": [str(WED), str(THU)]})
    assert found["results"] == [{"metrics": [5], "dimensions": []}]
    assert found["query"]["date_range"] == [
        f"{WED}T00:00:00+00:00",
        f"{THU}T23:59:59+00:00",
    ]


def test_timeseries_example(source, week):
    """timeseries-query.json: visitors and events by time:day under a visit:os filter."""
    systems = sorted(week["os"].astype(str).unique())[:2]
    found = ask(
        source,
        {
            "metrics": ["visitors", "events"],
            "date_range": "7d",
            "filters": [["is", "visit:os", systems]],
            "dimensions": ["time:day"],
        },
    )
    selection = metrics.select(week, [metrics.filter_from("os", "is", systems)])
    series = metrics.timeseries(
        selection, "day", "UTC", pd.Timestamp(FIRST, tz="UTC"), pd.Timestamp(TODAY, tz="UTC")
    )
    chosen = core(selection.events)
    events = chosen.groupby(chosen["ts"].dt.strftime("%Y-%m-%d")).size()
    expected = [
        {"metrics": [row.visitors, int(events.get(day, 0))], "dimensions": [day]}
        for row in series.itertuples()
        if row.visitors
        for day in [row.bucket.strftime("%Y-%m-%d")]
    ]
    assert found["results"] == expected and expected
    assert found["query"]["order_by"] == [["time:day", "asc"], ["visitors", "desc"]]


def test_time_labels_example(source):
    """time-labels-query.json: today by hour, every hour labelled in meta."""
    found = ask(
        source,
        {
            "metrics": ["visitors"],
            "date_range": "day",
            "dimensions": ["time:hour"],
            "include": {"time_labels": True},
        },
    )
    assert found["results"] == [{"metrics": [1], "dimensions": [f"{TODAY} 14:00:00"]}]
    labels = found["meta"]["time_labels"]
    assert labels[0] == f"{TODAY} 00:00:00" and labels[-1] == f"{TODAY} 23:00:00"
    assert len(labels) == 24
    assert found["query"]["include"] == {"time_labels": True}


def test_filtering_basics_example(source, week):
    """filtering-basics-query.json: page contains either text, country by (Plausible's) name."""
    found = ask(
        source,
        {
            "metrics": ["visitors"],
            "date_range": "7d",
            "filters": [
                ["contains", "event:page", ["/blog", "/pricing"]],
                ["is", "visit:country_name", ["Germany", "United States of America"]],
            ],
        },
    )
    selection = metrics.select(
        week,
        [
            metrics.filter_from("path", "contains", ["/blog", "/pricing"]),
            metrics.filter_from("country", "is", ["DE", "US"]),
        ],
    )
    assert found["results"][0]["metrics"] == [metrics.summary(selection).visitors]
    assert found["results"][0]["metrics"] == [2]  # alice's two hashes on /pricing


def test_case_insensitive_filtering_example(source):
    """filtering-case-insensitive-query.json: `case_sensitive: false` on contains."""
    found = ask(
        source,
        {
            "metrics": ["visitors"],
            "date_range": "7d",
            "filters": [["contains", "event:page", ["BLOG"], {"case_sensitive": False}]],
        },
    )
    assert found["results"][0]["metrics"] == [1]  # carol


def test_country_and_city_example(source, week):
    """country-and-city-query.json: two visit dimensions, known countries only."""
    found = ask(
        source,
        {
            "metrics": ["visitors", "pageviews", "bounce_rate"],
            "date_range": "7d",
            "filters": [["is_not", "visit:country_name", [""]]],
            "dimensions": ["visit:country_name", "visit:city_name"],
        },
    )
    table = metrics.breakdown(week, "country")
    names = {"DE": "Germany", "FR": "France", "US": "United States"}
    by_country = {names[r.value]: [r.visitors, r.pageviews] for r in table.itertuples()}
    rows = found["results"]
    assert {r["dimensions"][0]: r["metrics"][:2] for r in rows} == by_country
    assert all(len(r["dimensions"]) == 2 and len(r["metrics"]) == 3 for r in rows)
    assert [r["metrics"][0] for r in rows] == sorted((r["metrics"][0] for r in rows), reverse=True)


def test_utm_example_with_pagination(source):
    """utm-query.json and pagination-query.json: two UTM dimensions, their events."""
    body = {
        "metrics": ["visitors", "events", "pageviews"],
        "date_range": "7d",
        "dimensions": ["visit:utm_medium", "visit:utm_source"],
    }
    found = ask(source, body)
    # dave came with utm_source=newsletter only: pageview and Signup; the rest had no UTM.
    assert found["results"] == [
        {"metrics": [4, 7, 6], "dimensions": ["(not set)", "(not set)"]},
        {"metrics": [1, 2, 1], "dimensions": ["(not set)", "newsletter"]},
    ]
    paged = ask(
        source, {**body, "include": {"total_rows": True}, "pagination": {"limit": 3, "offset": 1}}
    )
    assert paged["results"] == found["results"][1:]
    assert paged["meta"] == {"total_rows": 2}
    assert paged["query"]["pagination"] == {"limit": 3, "offset": 1}
    filtered = ask(
        source,
        {"metrics": ["visitors"], "date_range": "7d",
         "filters": [["is", "visit:utm_source", ["(not set)"]]]},
    )  # fmt: skip
    assert filtered["results"][0]["metrics"] == [4]


def test_custom_properties_example(source):
    """custom-properties-query.json: by day and by a property, in the order asked."""
    found = ask(
        source,
        {
            "metrics": ["visitors"],
            "date_range": "7d",
            "dimensions": ["time:day", "event:props:plan"],
            "order_by": [["time:day", "asc"], ["event:props:plan", "desc"]],
        },
    )
    assert found["results"] == [
        {"metrics": [1], "dimensions": [str(WED), "pro"]},
        {"metrics": [2], "dimensions": [str(WED), "(none)"]},
        {"metrics": [1], "dimensions": [str(THU), "free"]},
        {"metrics": [3], "dimensions": [str(THU), "(none)"]},
    ]


def test_goal_conversions_by_property_under_a_goal_filter(source):
    """A goal filter with a property dimension: each plan's conversions."""
    found = ask(
        source,
        {
            "metrics": ["visitors", "events", "conversion_rate"],
            "date_range": "7d",
            "filters": [["is", "event:goal", ["Signup"]]],
            "dimensions": ["event:props:plan"],
        },
    )
    assert found["results"] == [
        {"metrics": [1, 1, 20.0], "dimensions": ["free"]},
        {"metrics": [1, 1, 20.0], "dimensions": ["pro"]},
    ]
