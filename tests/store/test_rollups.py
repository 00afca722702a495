"""Daily rollups through real storage (moto): same numbers as raw, idempotent, late events,
redelivery, sharding, and retention."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from pipeline import aws, load_events
from pipeline.consume.consumer import Consumer
from pipeline.local.demo import DEMO_SITE, load_demo
from pipeline.stats import metrics
from pipeline.store import archive, rollups
from pipeline.store.compactor import compact
from pipeline.store.query import load_rollups
from pipeline.store.storage import DIRTY_PK, ROLLUP_PREFIX, event_pk

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
DIMENSIONS = ["referrer_source", "country", "device", "browser", "utm_campaign", "os"]


@pytest.fixture
def loaded(settings):
    load_demo(settings, now=NOW, days=8, progress=False)
    report = compact(settings, now=NOW)
    assert len(report.days) == 7  # every closed day; today stays raw
    return settings


def raw_events(settings, first, last):
    start = datetime.combine(first, datetime.min.time(), UTC)
    return load_events(
        DEMO_SITE,
        start,
        datetime.combine(last, datetime.min.time(), UTC) + timedelta(days=1),
        settings=settings,
    )


def stored_rollup_items(settings) -> list[dict]:
    dynamodb = aws.client("dynamodb", settings)
    return dynamodb.query(
        TableName=settings.events_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"{ROLLUP_PREFIX}{DEMO_SITE}"}},
    )["Items"]


def test_rollup_path_equals_raw_path_for_random_ranges_and_filters(loaded):
    rng = random.Random(7)
    days = [NOW.date() - timedelta(days=n) for n in range(7, -1, -1)]
    for trial in range(25):
        a, b = sorted(rng.sample(range(len(days)), 2))
        first, last = days[a], days[b]
        raw = raw_events(loaded, first, last)
        dimension = rng.choice(DIMENSIONS)
        visit_filter = (
            (dimension, rng.choice(sorted(raw[dimension].dropna().astype(str).unique())))
            if trial % 2
            else None
        )
        stored = load_rollups(DEMO_SITE, first, last, settings=loaded, now=NOW)
        assert sum(day["events"] for day in stored) == len(raw)
        expected = metrics.summary(
            metrics.filter_events(raw, dict([visit_filter])) if visit_filter else raw
        )
        assert rollups.summary(stored, visit_filter).as_dict() == pytest.approx(
            expected.as_dict()
        ), (trial, visit_filter)
        for breakdown_dimension in ("path", "referrer_source", "country", "exit_page", "name"):
            pd.testing.assert_frame_equal(
                rollups.breakdown(stored, breakdown_dimension),
                metrics.breakdown(raw, breakdown_dimension).reset_index(drop=True),
                check_dtype=False,
                atol=1e-9,
            )
        series = metrics.timeseries(raw, "day", "UTC", table=None)
        assert (
            rollups.daily(stored)[["visitors", "visits", "pageviews"]].values.tolist()
            == series[["visitors", "visits", "pageviews"]].values.tolist()
        )


def test_recomputing_a_day_gives_the_same_record(loaded):
    before = {i["sk"]["S"]: i["b"]["B"] for i in stored_rollup_items(loaded)}
    yesterday = NOW.date() - timedelta(days=1)
    dynamodb = aws.client("dynamodb", loaded)
    dynamodb.put_item(
        TableName=loaded.events_table,
        Item={
            "pk": {"S": DIRTY_PK},
            "sk": {"S": f"{DEMO_SITE}#{yesterday}"},
            "marked_at": {"N": "1"},
        },
    )
    assert compact(loaded, now=NOW).days == [(DEMO_SITE, yesterday.isoformat())]
    after = {i["sk"]["S"]: i["b"]["B"] for i in stored_rollup_items(loaded)}
    assert after == before


def test_a_late_event_changes_the_days_numbers_at_once_and_its_rollup_after_compaction(
    loaded, message_factory, sqs_record
):
    yesterday = NOW.date() - timedelta(days=1)
    before = rollups.summary(
        load_rollups(DEMO_SITE, yesterday, yesterday, settings=loaded, now=NOW)
    ).pageviews
    late = int(datetime.combine(yesterday, datetime.min.time(), UTC).timestamp() * 1000) + 3_600_000
    body = message_factory(
        f"d={DEMO_SITE}&u=https%3A%2F%2F{DEMO_SITE}%2Flate",
        received_at_ms=late,
        request_id="late-1",
    )
    Consumer(loaded, clock=lambda: NOW.timestamp()).process([sqs_record(body)])
    # Marked dirty: read from raw until compacted.
    assert (
        rollups.summary(
            load_rollups(DEMO_SITE, yesterday, yesterday, settings=loaded, now=NOW)
        ).pageviews
        == before + 1
    )
    compact(loaded, now=NOW)
    stored = {i["sk"]["S"]: i for i in stored_rollup_items(loaded)}
    record = rollups.decode([stored[f"{yesterday}#000"]["b"]["B"]])
    assert record["summary"]["pageviews"] == before + 1 and "/late" in record["pages"]
    # And a redelivery of the same message changes nothing.
    Consumer(loaded, clock=lambda: NOW.timestamp()).process([sqs_record(body)])
    compact(loaded, now=NOW)
    again = {i["sk"]["S"]: i for i in stored_rollup_items(loaded)}
    assert again[f"{yesterday}#000"]["b"]["B"] == stored[f"{yesterday}#000"]["b"]["B"]


def test_rollups_outlive_raw_events(loaded):
    day = NOW.date() - timedelta(days=5)
    expected = rollups.summary(load_rollups(DEMO_SITE, day, day, settings=loaded, now=NOW))
    dynamodb = aws.client("dynamodb", loaded)
    items = dynamodb.query(
        TableName=loaded.events_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": event_pk(DEMO_SITE, day)}},
    )["Items"]
    for item in items:  # as TTL would, once the hot window has passed
        dynamodb.delete_item(
            TableName=loaded.events_table, Key={"pk": item["pk"], "sk": item["sk"]}
        )
    # ... and the bucket's lifecycle rule, once the retention has passed
    aws.client("s3", loaded).delete_object(
        Bucket=loaded.archive_bucket, Key=archive.object_key(DEMO_SITE, day)
    )
    assert raw_events(loaded, day, day).empty
    assert rollups.summary(
        load_rollups(DEMO_SITE, day, day, settings=loaded, now=NOW)
    ).as_dict() == pytest.approx(expected.as_dict())
    assert expected.pageviews > 0


def test_sharded_writes_and_reads_return_every_event_once(settings, message_factory, sqs_record):
    sharded = settings.with_overrides(shards=(("example.com", 4),))
    now = datetime.now(UTC)
    records = [sqs_record(message_factory(request_id=f"req-{n}")) for n in range(200)]
    consumer = Consumer(sharded)
    for start in range(0, 200, 50):
        assert consumer.process(records[start : start + 50]).failures == []
    consumer.process(records[:30])  # redelivered: overwrites in the same shard
    dynamodb = aws.client("dynamodb", sharded)
    per_shard = Counter()
    for shard in range(4):
        pk = event_pk("example.com", now.date(), shard)
        per_shard[shard] = dynamodb.query(
            TableName=settings.events_table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            Select="COUNT",
        )["Count"]
    assert sum(per_shard.values()) == 200 and all(per_shard[s] > 20 for s in range(4))
    events = load_events(
        "example.com", now - timedelta(hours=1), now + timedelta(hours=1), settings=sharded
    )
    assert len(events) == 200
