"""The compactor writes the columnar history (issue 16): one Parquet file per settled (site, UTC
day), rewritten when a late event marks its day, and read back by `load_events`.

Over moto's HTTP server: pyarrow's S3 client (the read path) cannot see moto's in-process mock.
Events go through the real consumer, so keys, markers and salts are the pipeline's own.
"""

from __future__ import annotations

import io
import logging
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote, urlencode

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import aws, load_events
from pipeline.consume.consumer import Consumer
from pipeline.enrich.sites import new_site, register_site
from pipeline.local.demo import DEMO_SITE, load_demo
from pipeline.store import archive
from pipeline.store.compactor import archive_day, compact, settles_at
from pipeline.store.query import events_frame, load_rollups, query_partition
from pipeline.store.storage import dirty_days, event_from_item, event_pk

pytestmark = pytest.mark.integration

SITE = "example.com"
TODAY = date(2026, 11, 26)
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def at(day: date, hour: float) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=hour)


@pytest.fixture
def send(message_factory, sqs_record):
    """Send pageviews (one per moment) through the consumer with its clock at `now` (default:
    just after the last moment; a hit older than the salt window would be dropped); their
    request ids."""

    def send(settings, moments, now=None, site=SITE, path="/", ids=None):
        now = now or max(moments) + timedelta(minutes=1)
        consumer = Consumer(settings)
        ids = ids or [f"r{int(m.timestamp())}-{n}" for n, m in enumerate(moments)]
        query = urlencode({"d": site, "u": f"https://{site}{quote(path)}"})
        records = [
            sqs_record(
                message_factory(
                    query=query, received_at_ms=int(m.timestamp() * 1000), request_id=rid
                )
            )
            for m, rid in zip(moments, ids, strict=True)
        ]
        outcome = consumer.process(records, now=now)
        assert outcome.stored == len(moments) and not outcome.failures
        return ids

    return send


def file_bytes(settings, site: str, day: date) -> bytes | None:
    s3 = aws.client("s3", settings)
    try:
        return s3.get_object(Bucket=settings.archive_bucket, Key=archive.object_key(site, day))[
            "Body"
        ].read()
    except s3.exceptions.NoSuchKey:
        return None


def file_ids(settings, site: str, day: date) -> set[str]:
    body = file_bytes(settings, site, day)
    assert body is not None, f"no archive file for {site} {day}"
    return set(pq.read_table(io.BytesIO(body), columns=["request_id"])["request_id"].to_pylist())


def drop_items(settings, site: str, day: date) -> int:
    """Delete a UTC day's event items, as the hot window's TTL does; how many."""
    dynamodb = aws.client("dynamodb", settings)
    items = dynamodb.query(
        TableName=settings.events_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": event_pk(site, day)}},
    )["Items"]
    for item in items:
        dynamodb.delete_item(
            TableName=settings.events_table, Key={"pk": item["pk"], "sk": item["sk"]}
        )
    return len(items)


def pending(settings) -> set[tuple[str, date]]:
    marks = archive.pending_marks(aws.client("dynamodb", settings), settings.events_table)
    return {(site, day) for site, day, _ in marks}


def test_compaction_archives_closed_days_that_load_events_then_reads(server_settings, send):
    days = [TODAY - timedelta(days=2), TODAY - timedelta(days=1)]
    ids = {day: send(server_settings, [at(day, 9), at(day, 21.5)]) for day in days}
    send(server_settings, [at(TODAY, 8)])
    before = load_events(
        SITE, days[0], TODAY + timedelta(days=1), settings=server_settings, now=NOW
    )

    report = compact(server_settings, now=NOW)

    assert report.archived == [(SITE, d.isoformat()) for d in days]
    assert report.archive_bytes > 0
    for day in days:
        assert file_ids(server_settings, SITE, day) == set(ids[day])
    assert file_bytes(server_settings, SITE, TODAY) is None  # today is still being written
    assert pending(server_settings) == set()
    # The same frame as from DynamoDB; and the closed days survive their items' expiry.
    for day in days:
        assert drop_items(server_settings, SITE, day) == 2
    after = load_events(SITE, days[0], TODAY + timedelta(days=1), settings=server_settings, now=NOW)
    pd.testing.assert_frame_equal(after, before)


def test_a_late_event_rewrites_its_days_file_keeping_expired_events(server_settings, send):
    day = TODAY - timedelta(days=1)  # a late event is at most a salt window (a day) late
    first = send(server_settings, [at(day, 6), at(day, 14)])
    compact(server_settings, now=NOW)
    assert file_ids(server_settings, SITE, day) == set(first)
    late = send(server_settings, [at(day, 20)], NOW, ids=["late-1"])
    dynamodb = aws.client("dynamodb", server_settings)
    assert (SITE, day) in {(s, d) for s, d, _ in dirty_days(dynamodb, server_settings.events_table)}

    report = compact(server_settings, now=NOW + timedelta(minutes=15))

    assert (SITE, day.isoformat()) in report.archived
    assert file_ids(server_settings, SITE, day) == set(first) | set(late)
    events = load_events(SITE, day, day + timedelta(days=1), settings=server_settings, now=NOW)
    assert sorted(events["ts"]) == [pd.Timestamp(at(day, h)) for h in (6, 14, 20)]
    (rollup,) = load_rollups(
        SITE, day, day, settings=server_settings, now=NOW, compute_missing=False
    )
    assert rollup["summary"]["pageviews"] == 3
    # The items have left the hot window; the late message is redelivered, marking the day
    # again: the rewritten file keeps the events whose items are gone.
    drop_items(server_settings, SITE, day)
    send(server_settings, [at(day, 20)], NOW + timedelta(minutes=20), ids=["late-1"])
    compact(server_settings, now=NOW + timedelta(minutes=30))
    assert file_ids(server_settings, SITE, day) == set(first) | set(late)


def test_compacting_twice_writes_the_same_bytes(server_settings, send):
    day = TODAY - timedelta(days=1)
    moments = [at(day, h) for h in (1, 7.25, 12, 23.9)]
    ids = send(server_settings, moments, path="/pricing")
    compact(server_settings, now=NOW)
    first = file_bytes(server_settings, SITE, day)
    # The queue redelivers the same messages: the same items, the day marked again.
    send(server_settings, moments, NOW + timedelta(minutes=5), path="/pricing", ids=ids)
    report = compact(server_settings, now=NOW + timedelta(minutes=15))
    assert (SITE, day.isoformat()) in report.archived
    assert first is not None and file_bytes(server_settings, SITE, day) == first


def test_an_unreadable_file_is_rewritten_from_the_items(server_settings, send, caplog):
    day = TODAY - timedelta(days=1)
    ids = send(server_settings, [at(day, 10), at(day, 11)])
    s3 = aws.client("s3", server_settings)
    key = archive.object_key(SITE, day)
    s3.put_object(Bucket=server_settings.archive_bucket, Key=key, Body=b"PAR1 truncated")
    with caplog.at_level(logging.WARNING, logger="pipeline.store.compactor"):
        compact(server_settings, now=NOW)
    assert file_ids(server_settings, SITE, day) == set(ids)
    assert any("unreadable" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("zone", "local_hours"),
    [
        # Tokyo (UTC+9): local Nov 24 is UTC Nov 23 15:00 to Nov 24 15:00.
        ("Asia/Tokyo", (-8.0, 2.0, 14.5)),
        # New York (UTC-5): local Nov 24 is UTC Nov 24 05:00 to Nov 25 05:00.
        ("America/New_York", (5.5, 20.0, 28.5)),
    ],
)
def test_every_utc_day_of_a_zoned_site_is_archived(server_settings, send, zone, local_hours):
    """Events on one local day only (Nov 24), none on the next: every UTC day they fall in
    gets its file, the last one once the next local day has closed too (until then it is
    pending and read from DynamoDB)."""
    site = "zoned.test"
    register_site(server_settings, new_site(site, timezone=zone))
    base = at(date(2026, 11, 24), 0)
    moments = [base + timedelta(hours=h) for h in local_hours]
    utc_days = sorted({m.date() for m in moments})
    assert len(utc_days) == 2
    ids = send(server_settings, moments, site=site)
    by_day = {d: {i for m, i in zip(moments, ids, strict=True) if m.date() == d} for d in utc_days}

    # The local day has closed: its first UTC day has settled, the second waits for the next
    # local day, which any late event for it would mark.
    local_end = base + timedelta(hours=24 + (-9 if zone == "Asia/Tokyo" else 5))
    assert settles_at(utc_days[0], zone) == local_end
    report = compact(server_settings, now=local_end + timedelta(minutes=1))
    assert report.archived == [(site, utc_days[0].isoformat())]
    assert file_ids(server_settings, site, utc_days[0]) == by_day[utc_days[0]]
    assert file_bytes(server_settings, site, utc_days[1]) is None
    assert (site, utc_days[1]) in pending(server_settings)

    later = local_end + timedelta(days=1, minutes=1)  # the next local day has closed
    report = compact(server_settings, now=later)
    assert (site, utc_days[1].isoformat()) in report.archived
    assert file_ids(server_settings, site, utc_days[1]) == by_day[utc_days[1]]
    assert (site, utc_days[1]) not in pending(server_settings)  # cleared once written
    events = load_events(
        site, utc_days[0], utc_days[1] + timedelta(days=1), settings=server_settings, now=later
    )
    assert len(events) == len(moments)


def test_the_demo_archives_its_settled_days_as_the_compactor_would(server_settings):
    now = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    summary = load_demo(server_settings, now=now, days=3, progress=False, roll_up=True)
    closed = [TODAY - timedelta(days=n) for n in (2, 1)]
    assert summary.archived == closed
    written = {day: file_bytes(server_settings, DEMO_SITE, day) for day in closed}
    assert file_bytes(server_settings, DEMO_SITE, TODAY) is None
    # The compactor, reading the table (merged with the file), writes the very same bytes.
    for day in closed:
        assert archive_day(server_settings, aws.client("dynamodb", server_settings), DEMO_SITE, day)
        assert file_bytes(server_settings, DEMO_SITE, day) == written[day]
    # What `make run` reads: the closed days through the archive, the same frame as from
    # their items; it stays when the items are gone.
    items = [item for day in closed for item in day_items(server_settings, DEMO_SITE, day)]
    expected = events_frame([event_from_item(item) for item in items])
    for day in closed:
        drop_items(server_settings, DEMO_SITE, day)
    from_files = load_events(DEMO_SITE, closed[0], TODAY, settings=server_settings, now=now)
    pd.testing.assert_frame_equal(from_files, expected)


def day_items(settings, site: str, day: date) -> list[dict]:
    """The UTC day's event items in DynamoDB (every page)."""
    dynamodb = aws.client("dynamodb", settings)
    return query_partition(dynamodb, settings.events_table, event_pk(site, day), 0, 2**42)
