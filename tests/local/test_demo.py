"""Demo traffic: believable, deterministic, and pushed through the real consumer and queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline import load_drops, load_events
from pipeline.local.demo import DEMO_SITE, generate_hits, load_demo

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
    visits_per_visitor = events.groupby("visitor").size()
    assert (visits_per_visitor == 1).any() and (
        visits_per_visitor > 2
    ).any()  # bounces and deep visits
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
