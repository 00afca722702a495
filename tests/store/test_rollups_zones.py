"""The rollup path equals the raw path in every site time zone (issue 13).

Generated traffic over 13 months is written to real storage (moto), compacted per site-local
day, and every view the dashboard can ask for is answered both ways: every period preset,
the comparison period, every chart interval (hour, day, week, month, with `partial` and no
bucket after now), every breakdown the pages show and the map's cities, for sites in UTC,
Europe/Berlin and America/Los_Angeles (both crossing daylight-saving changes) and Asia/Tokyo.
Visitor hashes rotate at UTC midnight as the consumer's do, and visits are generated around
local midnight, so the joins between local days are exercised.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from pipeline import aws, load_events
from pipeline.enrich.sites import new_site, register_site
from pipeline.stats import metrics
from pipeline.store import rollups
from pipeline.store.compactor import compact
from pipeline.store.query import load_rollups
from pipeline.store.storage import (
    BatchWriter,
    day_bounds,
    days_to_mark,
    dirty_item,
    event_item,
)

NOW = datetime(
    2026, 11, 3, 15, 20, tzinfo=UTC
)  # a week after Berlin's and 2 days after LA's DST end
ZONES = ["UTC", "Europe/Berlin", "Asia/Tokyo", "America/Los_Angeles"]
PRESETS = ["today", "7d", "30d", "mtd", "last_month", "12mo", "custom", "previous_30d"]
BREAKDOWNS = (
    *rollups.ROLLUP_DIMENSIONS,
    "path",
    "name",
)
PAGES = ["/", "/pricing", "/blog/a", "/blog/b", "/docs"]
PLACES = [
    ("DE", "BE", "Berlin", 52.52, 13.405),
    ("JP", "13", "Tokyo", 35.6762, 139.6503),
    ("US", "CA", "Los Angeles", 34.0522, -118.2437),
    ("FR", "", "", None, None),
]
BROWSERS = [
    ("Chrome", "131", "Windows", "10", "desktop"),
    ("Safari", "18", "iOS", "18.1", "mobile"),
]
SOURCES = [("", "", ""), ("Google", "google.com/", ""), ("Newsletter", "", "spring")]


def periods(today: date) -> dict[str, tuple[date, date]]:
    first_of_month = today.replace(day=1)
    last_month_end = first_of_month - timedelta(days=1)
    return {
        "today": (today, today),
        "7d": (today - timedelta(days=6), today),
        "30d": (today - timedelta(days=29), today),
        "mtd": (first_of_month, today),
        "last_month": (last_month_end.replace(day=1), last_month_end),
        "12mo": (today - timedelta(days=364), today),
        "custom": (date(2026, 3, 5), date(2026, 3, 31)),  # both zones' spring DST changes
        "previous_30d": (today - timedelta(days=59), today - timedelta(days=30)),
    }


def sessions(
    zone: str, rng: random.Random, now: datetime = NOW, dense: int = 70, sparse: int = 400
) -> list[dict]:
    """Visits around local midnights (to cross them), across the day, just before now, and
    sparse over a year."""
    starts: list[datetime] = []
    today = now.astimezone(ZoneInfo(zone)).date()
    for back in range(0, dense):
        day = today - timedelta(days=back)
        midnight = day_bounds(day, zone)[0]
        starts += [midnight - timedelta(minutes=rng.randint(1, 50)) for _ in range(3)]
        starts += [day_bounds(day, zone)[0] + timedelta(minutes=rng.randint(0, 1439))]
    starts += [now - timedelta(minutes=minutes) for minutes in (8, 17, 19, 26)]  # just now
    for back in range(dense, sparse, 3):
        day = today - timedelta(days=back)
        starts.append(day_bounds(day, zone)[0] + timedelta(minutes=rng.randint(-30, 1439)))
    events = []
    people = [f"p{n}" for n in range(25)]
    for number, start in enumerate(starts):
        person = rng.choice(people)
        country, region, city, lat, lon = rng.choice(PLACES)
        browser, version, os_name, os_version, device = rng.choice(BROWSERS)
        source, referrer, campaign = rng.choice(SOURCES)
        moment = start
        for step in range(rng.randint(1, 5)):
            if step:
                # Mostly within a visit, sometimes a new visit (a gap of 30 minutes or more).
                moment += timedelta(minutes=rng.choice([1, 4, 12, 29, 31, 45]))
            if moment >= now:
                break
            custom = rng.random() < 0.15
            events.append(
                {
                    "ts": int(moment.timestamp() * 1000),
                    "request_id": f"{zone}-{number}-{step}",
                    # The consumer's hash: its salt rotates every UTC day.
                    "visitor": f"{person}-{moment.astimezone(UTC).date().isoformat()}",
                    "name": "Signup" if custom else "pageview",
                    "hostname": "example.com",
                    "path": rng.choice(PAGES),
                    "url": "https://example.com/",
                    "referrer_source": source if step == 0 else "",
                    "referrer": referrer if step == 0 else "",
                    "utm_source": "",
                    "utm_medium": "email" if campaign else "",
                    "utm_campaign": campaign,
                    "utm_term": "",
                    "utm_content": "",
                    "country": country,
                    "region": region,
                    "city": city,
                    "lat": lat,
                    "lon": lon,
                    "browser": browser,
                    "browser_version": version,
                    "os": os_name,
                    "os_version": os_version,
                    "device": device,
                    "screen": "1920x1080" if device == "desktop" else "390x844",
                    "screen_width": 1920 if device == "desktop" else 390,
                    "props": {"plan": "pro"} if custom else {},
                }
            )
    return events


def store(settings, site: str, zone: str, events: list[dict]) -> None:
    """Write events as the consumer does: the items, and a marker for every local day."""
    dynamodb = aws.client("dynamodb", settings)
    items, marked = [], set()
    for event in events:
        event = {**event, "site": site}
        items.append(event_item(event, retention_days=3650))
        marked |= days_to_mark(event["ts"], zone)
    items += [dirty_item(site, day, 1) for day in marked]
    assert BatchWriter(dynamodb, settings.events_table).write(items) == []


@pytest.fixture(scope="module", params=ZONES)
def zoned_site(request):
    """One site per zone, its traffic stored and compacted; its raw events loaded once."""
    from moto import mock_aws

    from pipeline.config import Settings
    from tests.conftest import create_test_resources

    zone = request.param
    with mock_aws():
        settings = Settings.for_prefix(f"z{abs(hash(zone)) % 10**8}")
        create_test_resources(settings)
        site = "zones.test"
        register_site(settings, new_site(site, timezone=zone))
        store(settings, site, zone, sessions(zone, random.Random(zone)))
        report = compact(settings, now=NOW)
        assert report.days  # closed local days were rolled up
        raw = load_events(site, "2025-09-01", NOW + timedelta(days=1), settings=settings)
        yield settings, site, zone, raw


def raw_between(raw: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """What `load_events(site, start, end)` returns (the raw path), from the frame read once."""
    kept = (raw["ts"] >= pd.Timestamp(start)) & (raw["ts"] < pd.Timestamp(end))
    return raw[kept].reset_index(drop=True)


def assert_same_frames(ours: pd.DataFrame, theirs: pd.DataFrame, context) -> None:
    pd.testing.assert_frame_equal(
        ours.reset_index(drop=True),
        theirs.reset_index(drop=True),
        check_dtype=False,
        check_exact=False,
        atol=1e-6,
        obj=str(context),
    )


@pytest.mark.parametrize("preset", PRESETS)
def test_rollup_path_equals_raw_path_for_every_view(zoned_site, preset):
    settings, site, zone, raw = zoned_site
    today = NOW.astimezone(ZoneInfo(zone)).date()
    first, last = periods(today)[preset]
    start, end = day_bounds(first, zone)[0], day_bounds(last, zone)[1]
    events = raw_between(raw, start, end)
    assert len(events) > 0, (zone, preset)
    records = load_rollups(site, first, last, tz=zone, settings=settings, now=NOW)
    assert [r["day"] for r in records] == [
        (first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)
    ]
    assert sum(r["events"] for r in records) == len(events)
    context = (zone, preset)
    if zone != "UTC" and len(records) > 7:
        # Hashes seen on both sides of a local midnight: the joins are exercised.
        assert any(r["join"] for r in records[1:]), context

    expected = metrics.summary(events)
    assert rollups.summary(records).as_dict() == pytest.approx(expected.as_dict()), context

    days = (last - first).days + 1
    intervals = ["hour"] * (days <= 31) + ["day", "week", "month"]
    for interval in intervals:
        theirs = rollups.mark_partial(
            metrics.timeseries(events, interval, zone, start, end), NOW, end
        )
        ours = rollups.timeseries(records, interval, zone, start, end, NOW)
        assert_same_frames(ours, theirs, (*context, interval))
        assert not (ours["bucket"] > pd.Timestamp(NOW)).any()
        assert ours["partial"].sum() == (1 if end > NOW else 0)

    versioned = rollups.with_versions(events)
    table = metrics.visits(versioned)
    for dimension in BREAKDOWNS:
        assert_same_frames(
            rollups.breakdown(records, dimension),
            metrics.breakdown(versioned, dimension, table=table),
            (*context, dimension),
        )
    located = events.dropna(subset=["lat", "lon"])
    cities = located.groupby(["city", "lat", "lon"], observed=True)["visitor"].nunique()
    assert_same_frames(
        rollups.cities(records),
        cities.rename("visitors").reset_index().astype({"city": str}),
        (*context, "cities"),
    )
