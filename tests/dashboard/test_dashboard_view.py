"""The view's dates, comparisons, time zones and URL form (pure functions)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import parse_qsl, urlencode

import pytest

from dashboard.view import (
    View,
    comparison_dates,
    dimension_label,
    filters_from_params,
    period_dates,
    read_view,
    utc_bounds,
    view_from_params,
    view_to_params,
    without_unknown_properties,
)
from pipeline.stats.metrics import Filter

TODAY = date(2026, 3, 15)


@pytest.mark.parametrize(
    ("period", "first", "last"),
    [
        ("today", date(2026, 3, 15), date(2026, 3, 15)),
        ("7d", date(2026, 3, 9), date(2026, 3, 15)),
        ("30d", date(2026, 2, 14), date(2026, 3, 15)),
        ("mtd", date(2026, 3, 1), date(2026, 3, 15)),
        ("last_month", date(2026, 2, 1), date(2026, 2, 28)),
        ("12mo", date(2025, 3, 16), date(2026, 3, 15)),
    ],
)
def test_presets(period, first, last):
    assert period_dates(View("s", period=period), TODAY) == (first, last)


def test_custom_range_is_ordered():
    view = View("s", period="custom", first=date(2026, 3, 10), last=date(2026, 3, 1))
    assert period_dates(view, TODAY) == (date(2026, 3, 1), date(2026, 3, 10))


@pytest.mark.parametrize(
    ("compare", "expected"),
    [
        ("previous", (date(2026, 3, 2), date(2026, 3, 8))),
        ("year", (date(2025, 3, 9), date(2025, 3, 15))),
        ("none", None),
    ],
)
def test_comparison_ranges(compare, expected):
    assert comparison_dates(date(2026, 3, 9), date(2026, 3, 15), compare) == expected


def test_previous_year_of_29_february():
    assert comparison_dates(date(2028, 2, 29), date(2028, 2, 29), "year") == (
        date(2027, 2, 28),
        date(2027, 2, 28),
    )


def test_local_days_in_utc_across_a_daylight_saving_change():
    # New York moves to summer time on 8 March 2026: that local day has 23 hours.
    start, end = utc_bounds(date(2026, 3, 8), date(2026, 3, 8), "America/New_York")
    assert (start, end) == (
        datetime(2026, 3, 8, 5, tzinfo=UTC),
        datetime(2026, 3, 9, 4, tzinfo=UTC),
    )


def test_url_round_trip():
    view = View(
        "e.com",
        period="custom",
        first=date(2026, 1, 1),
        last=date(2026, 1, 31),
        compare="year",
        tz="Europe/Berlin",
        filters=(("country", "DE"), ("path", "/a b")),
    )
    assert view_from_params(view_to_params(view), "default") == view


OPERATOR_VIEW = View(
    "e.com",
    filters=(
        Filter("path", "is", ("/a", "/b")),
        Filter("path", "is_not", ("/blog",)),
        Filter("referrer_source", "contains", ("goo",)),
        Filter("props.plan", "is", ("pro",)),
        Filter("hostname", "is_not", ("staging.e.com",)),
        Filter("props.a b", "contains", ("[x](y) & z",)),
    ),
)


def test_operators_several_values_and_properties_round_trip_through_the_url():
    params = view_to_params(OPERATOR_VIEW)
    assert params["f.path"] == ["/a", "/b"]  # a repeated key: several values, OR-ed
    assert params["fn.path"] == "/blog"
    assert params["fc.referrer_source"] == "goo"
    assert params["f.props.plan"] == "pro"
    assert params["fn.hostname"] == "staging.e.com"
    assert view_from_params(params, "default") == OPERATOR_VIEW
    # Through a real query string too (what the browser's address bar holds).
    pairs = [(k, v) for k, vs in params.items() for v in ([vs] if isinstance(vs, str) else vs)]
    parsed: dict[str, list[str]] = {}
    for key, value in parse_qsl(urlencode(pairs)):
        parsed.setdefault(key, []).append(value)
    assert view_from_params(parsed, "default") == OPERATOR_VIEW


def test_an_old_link_keeps_meaning_is():
    view = view_from_params({"f.country": "DE", "f.path": "/pricing"}, "s")
    assert view.filters == (Filter("country", "is", ("DE",)), Filter("path", "is", ("/pricing",)))


def test_unknown_operators_and_dimensions_are_ignored_with_a_note_each():
    filters, notes = filters_from_params(
        {
            "fx.path": "/a",  # no such operator
            "f.bogus": "1",  # no such dimension
            "fn.entry_page": "/a",  # a table's dimension, not a filter
            "f.props.": "x",  # a property without a key
            "fc.path": "blog",
            "f.country": "",  # no value: no filter, nothing to say
        }
    )
    assert filters == (Filter("path", "contains", ("blog",)),)
    assert len(notes) == 4
    assert "fx.path" in notes[0] and "unknown operator fx" in notes[0]
    assert "f.bogus" in notes[1] and "unknown dimension bogus" in notes[1]
    assert "fn.entry_page" in notes[2]
    assert "f.props." in notes[3]
    view, said = read_view({"fx.path": "/a", "period": "7d"}, "s")
    assert view == View("s", period="7d") and len(said) == 1


def test_a_property_key_no_event_has_is_ignored_with_a_note():
    view = View("s", filters=(Filter("props.plan", "is", ("pro",)), Filter("path", "is", ("/",))))
    kept, notes = without_unknown_properties(view, ["plan", "author"])
    assert kept == view and notes == []
    kept, notes = without_unknown_properties(view, ["author"])
    assert kept.filters == (Filter("path", "is", ("/",)),)
    assert len(notes) == 1 and "property plan" in notes[0]


def test_dimension_labels():
    assert dimension_label("path") == "Page"
    assert dimension_label("hostname") == "Hostname"
    assert dimension_label("props.plan") == "Property plan"


def test_malformed_url_parameters_fall_back():
    view = view_from_params(
        {
            "period": "forever",
            "tz": "Mars/Base",
            "compare": "x",
            "from": "2026-13-45",
            "f.bogus": "1",
            "f.country": "",
        },
        "d.com",
    )
    assert view == View("d.com")


def test_one_filter_per_dimension():
    view = (
        View("s")
        .with_filter("country", "DE")
        .with_filter("country", "FR")
        .with_filter("device", "Mobile")
    )
    assert view == View("s", filters=(("country", "FR"), ("device", "Mobile")))
    assert view.without_filter("country").filters == (Filter("device", "is", ("Mobile",)),)


def test_one_filter_per_dimension_and_operator():
    view = (
        View("s")
        .with_filter(Filter("path", "is_not", ("/a",)))
        .with_filter(Filter("path", "contains", ("blog",)))
        .with_filter("path", "/x")  # a row click: "is"
        .with_filter(Filter("path", "is_not", ("/b", "/c")))
    )
    assert view.filters == (
        Filter("path", "contains", ("blog",)),
        Filter("path", "is", ("/x",)),
        Filter("path", "is_not", ("/b", "/c")),
    )
    assert view.without_filter("path", "is_not").filters == view.filters[:2]
