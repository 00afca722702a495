"""Site-local days (issue 13): which days an event changes, the consumer's markers in the
site's zone, and the compactor closing a local day only after its local end."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pipeline import aws
from pipeline.consume.consumer import Consumer
from pipeline.enrich.sites import new_site, register_site
from pipeline.store.compactor import compact
from pipeline.store.storage import day_bounds, days_to_mark, dirty_days


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


@pytest.mark.parametrize(
    ("moment", "zone", "days"),
    [
        ("2026-11-20T21:30:00+00:00", "UTC", {"2026-11-20"}),
        # 23:30 UTC: a visit going on past midnight is joined in the next day's record.
        ("2026-11-20T23:30:00+00:00", "UTC", {"2026-11-20", "2026-11-21"}),
        # 00:30 in Berlin: its own day; the UTC day it is in is shared with no later local day.
        ("2026-11-20T23:30:00+00:00", "Europe/Berlin", {"2026-11-21"}),
        # 22:00 in Berlin, 21:00 UTC: the next local day starts at 23:00 UTC the same UTC day.
        ("2026-11-20T21:00:00+00:00", "Europe/Berlin", {"2026-11-20", "2026-11-21"}),
        # 03:00 in Tokyo (18:00 UTC the day before): that UTC day ends at 09:00 Tokyo time.
        ("2026-11-19T18:00:00+00:00", "Asia/Tokyo", {"2026-11-20"}),
        # 20:00 in Tokyo (11:00 UTC): that UTC day goes on into Tokyo's next morning.
        ("2026-11-20T11:00:00+00:00", "Asia/Tokyo", {"2026-11-20", "2026-11-21"}),
        # 23:00 in Los Angeles (07:00 UTC) is in the UTC day that LA's next day starts in.
        ("2026-11-21T07:00:00+00:00", "America/Los_Angeles", {"2026-11-20", "2026-11-21"}),
        ("2026-11-20T20:00:00+00:00", "America/Los_Angeles", {"2026-11-20"}),
    ],
)
def test_days_to_mark(moment, zone, days):
    assert days_to_mark(ms(moment), zone) == {date.fromisoformat(d) for d in days}


def test_a_zone_the_runtime_cannot_load_marks_every_day_it_could_touch():
    assert days_to_mark(ms("2026-11-20T12:00:00+00:00"), "Nowhere/Atlantis") == {
        date(2026, 11, 19),
        date(2026, 11, 20),
        date(2026, 11, 21),
    }


def test_day_bounds_of_dst_days():
    spring = day_bounds(date(2026, 3, 29), "Europe/Berlin")
    autumn = day_bounds(date(2026, 10, 25), "Europe/Berlin")
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)
    assert spring[0] == datetime(2026, 3, 28, 23, tzinfo=UTC)


def test_the_consumer_marks_the_sites_local_day_and_the_compactor_waits_for_its_end(
    settings, message_factory, sqs_record
):
    register_site(settings, new_site("example.com", timezone="Asia/Tokyo"))
    # 20:00 UTC on 20 November is 05:00 on 21 November in Tokyo.
    received = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)
    body = message_factory(received_at_ms=int(received.timestamp() * 1000))
    consumer = Consumer(settings, clock=received.timestamp)
    assert consumer.process([sqs_record(body)]).stored == 1
    dynamodb = aws.client("dynamodb", settings)
    marked = {d for _, d, _ in dirty_days(dynamodb, settings.events_table, "example.com")}
    assert marked == {date(2026, 11, 21)}
    # UTC's 20 November has closed, Tokyo's 21st has not: nothing to compact yet.
    assert compact(settings, now=datetime(2026, 11, 21, 1, 0, tzinfo=UTC)).days == []
    # Tokyo's 21st ends at 15:00 UTC.
    report = compact(settings, now=datetime(2026, 11, 21, 15, 1, tzinfo=UTC))
    assert report.days == [("example.com", "2026-11-21")]
    assert dirty_days(dynamodb, settings.events_table, "example.com") == []


@pytest.mark.parametrize("stale", [{"tz": "UTC"}, {"v": 1}])
def test_a_rollup_of_another_zone_or_version_counts_as_missing(
    settings, message_factory, sqs_record, stale
):
    from pipeline.errors import RollupsIncomplete
    from pipeline.store import rollups
    from pipeline.store.query import load_rollups
    from pipeline.store.storage import BatchWriter, rollup_items

    register_site(settings, new_site("example.com", timezone="Europe/Berlin"))
    received = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    body = message_factory(received_at_ms=int(received.timestamp() * 1000))
    assert Consumer(settings, clock=received.timestamp).process([sqs_record(body)]).stored == 1
    later = datetime(2026, 11, 23, tzinfo=UTC)
    compact(settings, now=later)
    day = date(2026, 11, 20)
    (good,) = load_rollups(
        "example.com", day, day, tz="Europe/Berlin", settings=settings, now=later,
        compute_missing=False,
    )  # fmt: skip
    assert good["summary"]["pageviews"] == 1
    # Overwrite it with a record of the old shape: it no longer answers.
    record = {**good, **stale, "summary": {**good["summary"], "pageviews": 99}}
    items = rollup_items("example.com", day, rollups.encode(record), 1)
    assert BatchWriter(aws.client("dynamodb", settings), settings.events_table).write(items) == []
    with pytest.raises(RollupsIncomplete):
        load_rollups(
            "example.com", day, day, tz="Europe/Berlin", settings=settings, now=later,
            compute_missing=False,
        )  # fmt: skip
    # The day before it, never marked, is no longer taken as empty on faith either: under the
    # old zone, its hours could have been in the other record.
    with pytest.raises(RollupsIncomplete):
        load_rollups(
            "example.com", day - timedelta(days=1), day - timedelta(days=1),
            tz="Europe/Berlin", settings=settings, now=later, compute_missing=False,
        )  # fmt: skip
    (recomputed,) = load_rollups(
        "example.com", day, day, tz="Europe/Berlin", settings=settings, now=later
    )
    assert recomputed["summary"]["pageviews"] == 1 and recomputed["tz"] == "Europe/Berlin"
