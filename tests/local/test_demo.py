"""Demo traffic: believable, deterministic, and pushed through the real consumer and queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from pipeline import aws, load_drops, load_events
from pipeline.local.demo import DEMO_SITE, generate_hits, load_demo
from pipeline.store.compactor import compact_day
from pipeline.store.query import load_rollups
from pipeline.store.storage import ROLLUP_PREFIX, dirty_days

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def test_generation_is_deterministic_and_ends_at_now():
    first, second = list(generate_hits(NOW, days=7)), list(generate_hits(NOW, days=7))
    assert first == second
    assert max(hit.ts_ms for hit in first) <= NOW.timestamp() * 1000
    assert min(hit.ts_ms for hit in first) >= (NOW - timedelta(days=7)).timestamp() * 1000


def test_weekends_are_quieter_than_weekdays():
    hits = list(generate_hits(NOW, days=28))
    by_weekday = [0] * 7
    for hit in hits:
        by_weekday[datetime.fromtimestamp(hit.ts_ms / 1000, UTC).weekday()] += 1
    assert max(by_weekday[5:]) < min(by_weekday[:5])


@pytest.mark.integration
def test_demo_traffic_goes_through_the_pipeline(server_settings):
    now = datetime.now(UTC)
    summary = load_demo(server_settings, now=now, days=4, progress=False)
    assert summary.failed == 0
    assert summary.stored + summary.dropped == summary.hits
    events = load_events(
        DEMO_SITE, now - timedelta(days=4), now + timedelta(minutes=1), settings=server_settings
    )
    assert len(events) == summary.stored
    # Believable variety: the dashboard has something in every breakdown.
    assert events["country"].nunique() >= 10 and events["city"].nunique() >= 10
    assert set(events["device"]) >= {"Desktop", "Mobile", "Tablet"}
    assert events["browser"].nunique() >= 4
    assert {"Google", "Direct / None"} <= set(events["referrer_source"])
    assert {"pageview", "Signup", "Download"} <= set(events["name"])
    assert events["utm_campaign"].astype(str).ne("").any()
    assert events["lat"].notna().all()
    # Bounces and deep visits (pageviews: every page left also sends an engagement event).
    views_per_visitor = events[events["name"] == "pageview"].groupby("visitor").size()
    assert (views_per_visitor == 1).any() and (views_per_visitor > 2).any()
    assert {"engagement"} <= set(events["name"])
    drops = load_drops(
        DEMO_SITE, now - timedelta(days=4), now + timedelta(minutes=1), settings=server_settings
    )
    assert drops.to_dict() == {"bot": summary.dropped}
    # The last half hour went through SQS and the worker, and was stored.
    live_from = datetime.fromtimestamp(
        int((now - timedelta(minutes=30)).timestamp() * 1000) / 1000, UTC
    )
    live_stored = int((events["ts"] >= live_from).sum())
    live_dropped = int(
        load_drops(DEMO_SITE, live_from, now + timedelta(minutes=1), settings=server_settings).sum()
    )
    assert summary.queued > 0
    assert live_stored + live_dropped == summary.queued


def stored_rollups(settings) -> dict[str, bytes]:
    """Every stored rollup part of the demo site, by sort key ("day#part")."""
    found = aws.client("dynamodb", settings).query(
        TableName=settings.events_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"{ROLLUP_PREFIX}{DEMO_SITE}"}},
    )["Items"]
    return {item["sk"]["S"]: bytes(item["b"]["B"]) for item in found}


def marked_days(settings) -> list:
    dynamodb = aws.client("dynamodb", settings)
    return sorted(day for _, day, _ in dirty_days(dynamodb, settings.events_table, DEMO_SITE))


def test_demo_stores_the_compactors_own_rollups_of_its_closed_days(settings):
    summary = load_demo(settings, now=NOW, days=4, progress=False, roll_up=True)
    closed = [NOW.date() - timedelta(days=n) for n in (3, 2, 1)]
    assert summary.rolled_up == closed
    assert summary.failed == 0 and summary.stored + summary.dropped == summary.hits
    # Only today stays marked: every closed day is answered from its rollup at once.
    assert marked_days(settings) == [NOW.date()]
    days = load_rollups(
        DEMO_SITE, closed[0], closed[-1], settings=settings, now=NOW, compute_missing=False
    )
    assert [day["summary"]["visitors"] for day in days] == [
        len(load_events(DEMO_SITE, d, d + timedelta(days=1), settings=settings)["visitor"].unique())
        for d in closed
    ]
    written = stored_rollups(settings)
    assert {sk.split("#")[0] for sk in written} == {d.isoformat() for d in closed}
    # The compactor, reading every event back from the table, writes the very same bytes.
    dynamodb = aws.client("dynamodb", settings)
    for day in closed:
        compact_day(settings, dynamodb, DEMO_SITE, day, NOW)
    assert stored_rollups(settings) == written


def test_demo_rolls_up_nothing_over_earlier_data(settings):
    # Without roll_up the compactor finds every written day marked, as before.
    load_demo(settings, now=NOW, days=3, progress=False)
    assert marked_days(settings) == [NOW.date() - timedelta(days=n) for n in (2, 1, 0)]
    # A second load over those events would roll up only its own: it leaves them to the compactor.
    summary = load_demo(settings, now=NOW, days=3, seed=8, progress=False, roll_up=True)
    assert summary.rolled_up == [] and stored_rollups(settings) == {}
    assert marked_days(settings) == [NOW.date() - timedelta(days=n) for n in (2, 1, 0)]


def test_demo_pages_are_left_with_engagement_and_some_visits_cross_midnight(settings):
    summary = load_demo(settings, now=NOW, days=3, progress=False)
    assert summary.failed == 0 and summary.stored + summary.dropped == summary.hits
    events = load_events(DEMO_SITE, NOW - timedelta(days=3), NOW, settings=settings)
    views = events[events["name"] == "pageview"]
    engaged = events[events["name"] == "engagement"]
    # One engagement per pageview left (the last minutes may still have pages open).
    # (By page, not by visitor: a page left after midnight is hashed under the new salt.)
    assert len(engaged) <= len(views) and len(engaged) >= 0.95 * len(views)
    left, viewed = engaged["url"].value_counts(), views["url"].value_counts()
    assert (left <= viewed.reindex(left.index)).all()
    assert engaged["engagement_ms"].notna().all() and engaged["scroll_depth"].between(0, 100).all()
    others = events[events["name"] != "engagement"]
    assert others["engagement_ms"].isna().all() and others["scroll_depth"].isna().all()
    # Long posts are read longer and further down than the home page.
    medians = engaged.groupby("path", observed=True)[["engagement_ms", "scroll_depth"]].median()
    post, home = medians.loc["/blog/privacy-first-analytics"], medians.loc["/"]
    assert post["engagement_ms"] > 2 * home["engagement_ms"]
    assert post["scroll_depth"] > home["scroll_depth"]
    # Visits across UTC midnight: hits of a day's first minutes name yesterday's visitor.
    carried = events[events["prev_visitor"] != ""]
    assert (carried["ts"].dt.hour == 0).all() and (carried["ts"].dt.minute < 31).all()
    for day in (NOW.date() - timedelta(days=1), NOW.date()):
        midnight = pd.Timestamp(datetime.combine(day, datetime.min.time(), UTC))
        before = events[(events["ts"] < midnight) & (events["ts"] >= midnight - timedelta(hours=1))]
        after = carried[(carried["ts"] >= midnight)]
        continued = set(after["prev_visitor"]) & set(before["visitor"])
        assert len(continued) >= 1, day
