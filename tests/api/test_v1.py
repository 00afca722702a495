"""The legacy v1 endpoints on moto: v1 periods, filter syntax and shapes, numbers equal to
`pipeline.stats.metrics` on the same stored events, and Plausible's v1 messages."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from pipeline import load_events
from pipeline.api import v1
from pipeline.api.http import ApiError
from pipeline.api.source import StoreSource
from pipeline.stats import metrics
from tests.api.conftest import NOW, SITE, THU, TODAY, WED, at


@pytest.fixture
def source(stats_site_module) -> StoreSource:
    settings, site = stats_site_module
    return StoreSource(settings, site, "UTC", now=lambda: NOW)


def stored(source, first, last) -> pd.DataFrame:
    return load_events(
        SITE,
        pd.Timestamp(first, tz="UTC"),
        pd.Timestamp(last + timedelta(days=1), tz="UTC"),
        settings=source.settings,
    )


def test_aggregate_default_period_is_plausibles_30d_with_today(source):
    found = v1.aggregate({"metrics": "visitors,pageviews,bounce_rate,visit_duration"}, source)
    # Wed and Thu (5 visitors, 7 pageviews) and erin today: 6 visits, 3 of them bounces.
    assert found == {
        "results": {
            "visitors": {"value": 6},
            "pageviews": {"value": 8},
            "bounce_rate": {"value": 50},
            "visit_duration": {"value": 170},
        }
    }
    expected = metrics.summary(stored(source, TODAY - timedelta(days=30), TODAY))
    assert found["results"]["visitors"]["value"] == expected.visitors
    assert found["results"]["visit_duration"]["value"] == round(expected.visit_duration)


def test_aggregate_compared_with_the_previous_period(source):
    found = v1.aggregate(
        {"period": "day", "date": THU.isoformat(), "metrics": "visitors,views_per_visit",
         "compare": "previous_period"},
        source,
    )  # fmt: skip
    # Thu: 3 visitors, 4 pageviews in 3 visits; Wed: 2 visitors, 3 pageviews in 2 visits.
    assert found == {
        "results": {
            "visitors": {"value": 3, "change": 50},
            "views_per_visit": {"value": 1.33, "change": -11},
        }
    }


def test_filters_in_v1_syntax(source):
    params = {"period": "7d", "date": THU.isoformat(), "metrics": "visitors,pageviews"}
    events = stored(source, THU - timedelta(days=6), THU)
    for text, filters in (
        ("visit:country==DE|FR", [("country", "is", ["DE", "FR"])]),
        ("visit:country!=DE;event:page==/", [("country", "is_not", ["DE"]), ("path", "is", ["/"])]),
        ("visit:source~news", [("referrer_source", "contains", ["news"])]),
    ):
        found = v1.aggregate({**params, "filters": text}, source)["results"]
        chosen = metrics.select(events, [metrics.filter_from(*f) for f in filters])
        expected = metrics.summary(chosen)
        assert [found["visitors"]["value"], found["pageviews"]["value"]] == [
            expected.visitors,
            expected.pageviews,
        ], text


def test_timeseries_lists_every_bucket_as_metrics_timeseries(source):
    found = v1.timeseries(
        {"period": "7d", "date": THU.isoformat(), "metrics": "visitors,pageviews,bounce_rate"},
        source,
    )["results"]
    first = THU - timedelta(days=6)
    series = metrics.timeseries(
        stored(source, first, THU),
        "day",
        "UTC",
        pd.Timestamp(first, tz="UTC"),
        pd.Timestamp(TODAY, tz="UTC"),
    )
    assert [r["date"] for r in found] == [b.strftime("%Y-%m-%d") for b in series["bucket"]]
    assert [[r["visitors"], r["pageviews"]] for r in found] == series[
        ["visitors", "pageviews"]
    ].values.tolist()
    assert found[-2]["bounce_rate"] == 50 and found[0]["bounce_rate"] == 0  # Wed: bob of 2
    monthly = v1.timeseries({"period": "6mo", "metrics": "visitors"}, source)["results"]
    assert [r["date"] for r in monthly][-1] == "2026-11-01"
    assert len(monthly) == 6 and monthly[-1]["visitors"] == 6
    hourly = v1.timeseries({"period": "day", "metrics": "visitors"}, source)["results"]
    assert len(hourly) == 24 and hourly[14] == {"date": "2026-11-20 14:00:00", "visitors": 1}


def test_breakdowns_name_the_property(source):
    params = {"period": "custom", "date": f"{WED},{THU}"}
    found = v1.breakdown({**params, "property": "visit:source", "metrics": "visitors"}, source)
    table = metrics.breakdown(stored(source, WED, THU), "referrer_source")
    assert found["results"] == [
        {"source": row.value, "visitors": row.visitors} for row in table.itertuples()
    ]
    plans = v1.breakdown(
        {**params, "property": "event:props:plan", "metrics": "visitors,events", "limit": "2"},
        source,
    )
    assert plans["results"] == [
        {"plan": "(none)", "visitors": 5, "events": 7},
        {"plan": "free", "visitors": 1, "events": 1},
    ]
    second = v1.breakdown(
        {**params, "property": "event:props:plan", "limit": "2", "page": "2"}, source
    )
    assert second["results"] == [{"plan": "pro", "visitors": 1}]
    goals = v1.breakdown(
        {**params, "property": "event:goal", "metrics": "visitors,conversion_rate"}, source
    )
    assert goals["results"] == [{"goal": "Signup", "visitors": 2, "conversion_rate": 40.0}]


def test_realtime_visitors_are_the_last_five_minutes(stats_site_module):
    settings, site = stats_site_module
    for minute, expected in (("14:03", 1), ("14:06", 0), ("13:59", 0)):
        source = StoreSource(settings, site, "UTC", now=lambda m=minute: at(TODAY, m))
        assert v1.realtime_visitors({}, source) == expected, minute


BAD = [
    ({"period": "bad_period"}, "Error parsing `period` parameter: invalid period `bad_period`. Please find accepted values in our docs: https://plausible.io/docs/stats-api#time-periods"),
    ({"period": "custom"}, "The `date` parameter is required when using a custom period. See https://plausible.io/docs/stats-api#time-periods"),
    ({"period": "custom", "date": "2026-11-01"}, "Invalid format for `date` parameter. When using a custom period, please include two ISO-8601 formatted dates joined by a comma. See https://plausible.io/docs/stats-api#time-periods"),
    ({"period": "custom", "date": "2026-11-10,2026-11-01"}, "Invalid `date` parameter: 2026-11-10 is after 2026-11-01."),
    ({"period": "custom", "date": "1900-01-01,2026-11-01"}, "Invalid date_range: at most 3660 days (ten years) can be queried at once."),
    ({"date": "tomorrow"}, "Error parsing `date` parameter: invalid_format. Please specify a valid date in ISO-8601 format."),
    ({"metrics": "visitors,baa"}, "The metric `baa` is not recognized. Find valid metrics from the documentation: https://plausible.io/docs/stats-api#metrics"),
    ({"metrics": "visitors,visitors"}, "Metrics cannot be queried multiple times."),
    ({"metrics": "conversion_rate"}, "Metric `conversion_rate` can only be queried in a goal breakdown or with a goal filter"),
    ({"metrics": "time_on_page"}, "Metric `time_on_page` can only be queried in a page breakdown or with a page filter."),
    ({"metrics": "bounce_rate", "filters": "event:name==Signup"}, "Session metric `bounce_rate` cannot be queried when using a filter on `event:name`."),
    ({"filters": "visit:nope==1"}, "Invalid filter property 'visit:nope'. Please provide a valid filter property: https://plausible.io/docs/stats-api#properties"),
    ({"filters": "event:page==/blog/*"}, "Wildcard filter values ('/blog/*') are not supported by this server (see docs/api.md)."),
]  # fmt: skip


@pytest.mark.parametrize(("params", "message"), BAD)
def test_bad_aggregate_parameters(source, params, message):
    with pytest.raises(ApiError) as caught:
        v1.aggregate(params, source)
    assert (caught.value.status, caught.value.message) == (400, message)


BAD_BREAKDOWNS = [
    ({}, "The `property` parameter is required. Please provide at least one property to show a breakdown by."),
    ({"property": "badproperty"}, "Invalid property 'badproperty'. Please provide a valid property for the breakdown endpoint: https://plausible.io/docs/stats-api#properties"),
    ({"property": "event:props:"}, "Invalid property 'event:props:'. Please provide a valid property for the breakdown endpoint: https://plausible.io/docs/stats-api#properties"),
    ({"property": "event:name", "metrics": "visitors,bounce_rate"}, "Session metric `bounce_rate` cannot be queried for breakdown by `event:name`."),
    ({"property": "visit:source", "metrics": "time_on_page"}, "Metric `time_on_page` is not supported in breakdown queries (except `event:page` breakdown)"),
    ({"property": "visit:source", "limit": "5000"}, "Please provide limit as a number between 1 and 1000."),
    ({"property": "visit:source", "page": "0"}, "Please provide page as a positive number."),
]  # fmt: skip


@pytest.mark.parametrize(("params", "message"), BAD_BREAKDOWNS)
def test_bad_breakdown_parameters(source, params, message):
    with pytest.raises(ApiError) as caught:
        v1.breakdown(params, source)
    assert (caught.value.status, caught.value.message) == (400, message)


def test_bad_interval(source):
    with pytest.raises(ApiError) as caught:
        v1.timeseries({"interval": "fortnight"}, source)
    assert caught.value.message == (
        "Error parsing `interval` parameter: invalid interval `fortnight`. Valid intervals are "
        "`day`, `month`"
    )
