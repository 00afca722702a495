"""The dashboard answers unfiltered views in the site's zone from rollups (issue 13): no raw
history is read, the numbers equal the raw path's, and another zone says it reads raw."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from dashboard import data as dashboard_data
from dashboard.context import Data
from dashboard.data import Backend
from dashboard.overview import allowed_intervals, overview, zone_note
from dashboard.view import View, comparison_dates, period_dates, utc_bounds
from pipeline import aws, load_events
from pipeline.enrich.sites import new_site, register_site
from pipeline.stats import metrics
from pipeline.store import archive, rollups
from pipeline.store.compactor import compact
from pipeline.store.storage import day_bounds
from tests.store.test_rollups_zones import sessions, store

SITE, ZONE = "zones.test", "Europe/Berlin"


def clear_caches() -> None:
    for cached in ("cached_rollups", "_sites", "_events"):
        getattr(dashboard_data, cached).clear()


@pytest.fixture
def berlin(settings, monkeypatch):
    """A Berlin site with 40 days of traffic up to now, compacted; every DynamoDB Query the
    dashboard then makes is recorded."""
    now = datetime.now(UTC)
    register_site(settings, new_site(SITE, timezone=ZONE))
    store(settings, SITE, ZONE, sessions(ZONE, random.Random(3), now=now, dense=12, sparse=62))
    compact(settings, now=now)
    monkeypatch.setattr(dashboard_data, "backend", lambda: Backend(settings, False, SITE))
    queries: list[dict] = []
    original = aws.client

    def recording(service, current):
        client = original(service, current)
        for operation in ("dynamodb.Query", "s3.GetObject"):
            client.meta.events.register(
                f"provide-client-params.{operation}",
                lambda params, **kwargs: queries.append(dict(params)),
            )
        return client

    monkeypatch.setattr(aws, "client", recording)
    clear_caches()
    yield settings, now, queries
    clear_caches()


def event_days_read(queries: list[dict]) -> set[date]:
    """The UTC days of the event partitions queried (not rollups, markers or the registry)."""
    days = set()
    for params in queries:
        pk = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "")
        if pk.startswith(f"{SITE}#"):
            days.add(date.fromisoformat(pk.split("#")[1]))
    return days


def archive_days_read(queries: list[dict]) -> set[date]:
    """The UTC days whose Parquet file was read (ranged GETs of the archive)."""
    prefix = f"{archive.PREFIX}site={SITE}/day="
    return {
        date.fromisoformat(params["Key"][len(prefix) :].split("/")[0])
        for params in queries
        if params.get("Key", "").startswith(prefix)
    }


def test_the_sites_own_view_reads_no_raw_history(berlin):
    settings, now, queries = berlin
    view = View(site=SITE, period="30d", compare="previous", tz=ZONE)
    today = now.astimezone(ZoneInfo(ZONE)).date()
    first, last = period_dates(view, today)
    found = {
        interval: overview(view, today, interval, now=now)
        for interval in allowed_intervals(first, last)
    }
    data = Data(view, first, last, *utc_bounds(first, last, ZONE), site_tz=ZONE)
    versions = data.breakdown("browser_version")
    points = data.cities()
    assert data.rollups_answer and data.summary.pageviews > 0
    # Only today's local day is read raw: the UTC days it touches (and, for the join of
    # visitors seen on both sides of midnight, the start of the UTC day it begins in).
    assert event_days_read(queries) <= {
        day_bounds(today, ZONE)[0].date(),
        day_bounds(today, ZONE)[1].date(),
    }
    assert archive_days_read(queries) <= {day_bounds(today, ZONE)[0].date()}  # no history
    assert {f.source for f in found.values()} == {"daily rollups"}
    assert set(found) == {"day", "week", "month"}

    # And the numbers are the raw path's.
    start, end = utc_bounds(first, last, ZONE)
    raw = load_events(SITE, start, end, settings=settings)
    before = load_events(SITE, *utc_bounds(*comparison_dates(first, last, "previous"), ZONE),
                         settings=settings)  # fmt: skip
    for interval, overview_found in found.items():
        assert overview_found.summary.as_dict() == pytest.approx(metrics.summary(raw).as_dict())
        assert overview_found.previous.as_dict() == pytest.approx(metrics.summary(before).as_dict())
        expected = rollups.mark_partial(
            metrics.timeseries(raw, interval, ZONE, start, end), now, end
        )
        pd.testing.assert_frame_equal(overview_found.series, expected, check_dtype=False)
        assert overview_found.series["partial"].tolist()[-1] is True
        assert overview_found.series["bucket"].max() <= pd.Timestamp(now)
    versioned = rollups.with_versions(raw)
    pd.testing.assert_frame_equal(
        versions, metrics.breakdown(versioned, "browser_version"), check_dtype=False
    )
    assert set(versions["value"]) <= {"Chrome 131", "Safari 18"}
    assert points["visitors"].sum() > 0


def test_another_zone_reads_raw_events_and_says_so(berlin):
    settings, now, queries = berlin
    view = View(site=SITE, period="7d", tz="UTC")
    today = now.date()
    first, last = period_dates(view, today)
    data = Data(view, first, last, *utc_bounds(first, last, "UTC"), site_tz=ZONE)
    assert not data.rollups_answer
    raw = load_events(SITE, *utc_bounds(first, last, "UTC"), settings=settings)
    pd.testing.assert_frame_equal(
        data.breakdown("country"), metrics.breakdown(raw, "country"), check_dtype=False
    )
    # Raw history was read, as it must be: closed days from their Parquet files, the rest
    # from DynamoDB.
    assert archive_days_read(queries)
    assert min(event_days_read(queries) | archive_days_read(queries)) == first
    note = zone_note(view, ZONE)
    assert "UTC" in note and "raw events" in note and ZONE in note
    assert zone_note(View(site=SITE, tz=ZONE), ZONE) == ""


def test_allowed_intervals_follow_the_range():
    day = date(2026, 11, 20)
    assert allowed_intervals(day, day) == ["hour"]
    assert allowed_intervals(day - timedelta(days=6), day) == ["hour", "day"]
    assert allowed_intervals(day - timedelta(days=29), day) == ["day", "week", "month"]
    assert allowed_intervals(day - timedelta(days=364), day) == ["day", "week", "month"]
    assert allowed_intervals(day - timedelta(days=800), day) == ["week", "month"]
