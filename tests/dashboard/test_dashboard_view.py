"""The view's dates, comparisons, time zones and URL form (pure functions)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dashboard.view import (
    View,
    comparison_dates,
    period_dates,
    utc_bounds,
    view_from_params,
    view_to_params,
)

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
    assert view.filters == (("country", "FR"), ("device", "Mobile"))
    assert view.without_filter("country").filters == (("device", "Mobile"),)
