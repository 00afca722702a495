"""The Parquet archive: file format, listing, pending markers, and `load_events` reading each
UTC day from exactly one source (the archive when closed and clean, else DynamoDB)."""

from __future__ import annotations

import io
import logging
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import aws, load_events
from pipeline.config import Settings, bucket_name, env_settings
from pipeline.errors import MissingResource
from pipeline.local.demo import DEMO_SITE, load_demo
from pipeline.stats import metrics
from pipeline.store import archive
from pipeline.store.compactor import clear_marker
from pipeline.store.query import days_between, query_partition
from pipeline.store.storage import (
    BatchWriter,
    dirty_days,
    dirty_item,
    event_from_item,
    event_item,
    event_pk,
)
from tests.conftest import create_test_resources

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
SITE = "example.com"


def stored_records(settings: Settings, site: str, day: date) -> list[dict[str, Any]]:
    """A UTC day's events as the consumer stored them (the compactor's source)."""
    lo = datetime.combine(day, datetime.min.time(), UTC)
    items = query_partition(
        aws.client("dynamodb", settings),
        settings.events_table,
        event_pk(site, day),
        int(lo.timestamp() * 1000),
        int((lo + timedelta(days=1)).timestamp() * 1000),
    )
    return [event_from_item(item) for item in items]


def event(n: int, ts: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "site": SITE,
        "ts": int(ts.timestamp() * 1000),
        "request_id": f"r{n:05d}",
        "name": "pageview",
        "path": f"/p{n % 4}",
        "visitor": f"v{n % 7}",
        "country": "DE" if n % 2 else "FR",
        "screen_width": 1280,
        "props": {"plan": "pro"} if n % 5 == 0 else {},
        **fields,
    }


def store(settings: Settings, events: list[dict[str, Any]]) -> None:
    items = [event_item(e, retention_days=30) for e in events]
    assert BatchWriter(aws.client("dynamodb", settings), settings.events_table).write(items) == []


def queries_counted(settings: Settings) -> tuple[Any, list[str]]:
    """A DynamoDB client that notes the partition of every Query it sends."""
    dynamodb = aws.client("dynamodb", settings)
    seen: list[str] = []

    def note(params: dict[str, Any], **_: Any) -> None:
        seen.append(params["ExpressionAttributeValues"][":pk"]["S"])

    dynamodb.meta.events.register("provide-client-params.dynamodb.Query", note)
    return dynamodb, seen


def put_bytes(settings: Settings, site: str, day: date, body: bytes) -> None:
    aws.client("s3", settings).put_object(
        Bucket=settings.archive_bucket, Key=archive.object_key(site, day), Body=body
    )


# ---- settings and resources ----


def test_settings_name_the_bucket_and_hot_window():
    assert Settings.for_prefix("My_Stack").archive_bucket == "my-stack-archive"
    found = env_settings({"PIPELINE_ARCHIVE_BUCKET": "b-1", "PIPELINE_HOT_DAYS": "3"})
    assert (found.archive_bucket, found.hot_days) == ("b-1", 3)
    assert (Settings().archive_bucket, Settings().hot_days) == ("analytics-archive", 7)
    for text in ("A..B__c", "x", "-Weird.Name-" * 9):
        name = bucket_name(text)
        assert 3 <= len(name) <= 63 and name == name.lower() and name[0].isalnum()
        assert name[-1].isalnum() and set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789.-")


def test_resources_include_the_bucket(settings):
    buckets = {b["Name"] for b in aws.client("s3", settings).list_buckets()["Buckets"]}
    assert settings.archive_bucket in buckets
    create_test_resources(settings)  # again: safe


# ---- the file ----


def test_a_day_file_is_the_same_bytes_for_the_same_events_and_carries_its_version(settings):
    events = [event(n, NOW - timedelta(days=2, minutes=n)) for n in range(40)]
    day = (NOW - timedelta(days=2)).date()
    s3 = aws.client("s3", settings)
    size = archive.write_day(settings, SITE, day, events, s3=s3)
    first = s3.get_object(Bucket=settings.archive_bucket, Key=archive.object_key(SITE, day))
    body = first["Body"].read()
    assert size == len(body)
    archive.write_day(settings, SITE, day, random.Random(3).sample(events, len(events)), s3=s3)
    again = s3.get_object(Bucket=settings.archive_bucket, Key=archive.object_key(SITE, day))
    assert again["Body"].read() == body
    parquet = pq.ParquetFile(io.BytesIO(body))
    assert (
        parquet.schema_arrow.metadata[b"pipeline.schema_version"] == archive.SCHEMA_VERSION.encode()
    )
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
    table = parquet.read()
    # Every column; the people's columns first (one ranged read), the request id last.
    assert sorted(table.column_names) == sorted(["request_id", *archive.COLUMNS])
    assert table.column_names[:5] == ["ts", "visitor", "prev_visitor", "name", "path"]
    assert table.column_names[-1] == "request_id"
    assert table["ts"].type == pa.timestamp("ms", tz="UTC")
    # In the frame's order: by time, ties by request id.
    rows = table.select(["ts", "request_id"]).to_pylist()
    assert rows == sorted(rows, key=lambda r: (r["ts"], r["request_id"]))
    props = dict(zip(table["request_id"].to_pylist(), table["props"].to_pylist(), strict=True))
    assert props["r00000"] == '{"plan":"pro"}' and props["r00001"] == "{}"


def test_an_empty_day_deletes_its_file_and_listing_keeps_to_the_range(settings):
    days = [date(2026, 11, d) for d in (1, 2, 3, 5)]
    for day in days:
        moment = datetime.combine(day, datetime.min.time(), UTC)
        archive.write_day(settings, SITE, day, [event(1, moment)])
    archive.write_day(settings, "other.com", date(2026, 11, 2), [event(1, NOW)])
    assert archive.archived_days(settings, SITE, date(2026, 11, 2), date(2026, 11, 5)) == {
        date(2026, 11, 2),
        date(2026, 11, 3),
        date(2026, 11, 5),
    }
    assert archive.write_day(settings, SITE, date(2026, 11, 3), []) == 0
    assert archive.archived_days(settings, SITE, date(2026, 10, 1), date(2026, 12, 1)) == {
        date(2026, 11, 1),
        date(2026, 11, 2),
        date(2026, 11, 5),
    }


def test_pending_markers_are_cleared_only_if_not_marked_again(settings):
    dynamodb = aws.client("dynamodb", settings)
    table = settings.events_table
    day = date(2026, 11, 20)
    archive.mark_pending(dynamodb, table, SITE, day, 100)
    archive.mark_pending(dynamodb, table, "other.com", day, 100)
    assert archive.pending_days(dynamodb, table, SITE) == {day}
    archive.mark_pending(dynamodb, table, SITE, day, 200)  # a late event meanwhile
    archive.clear_pending(dynamodb, table, SITE, day, "100")
    assert archive.pending_days(dynamodb, table, SITE) == {day}
    archive.clear_pending(dynamodb, table, SITE, day, "200")
    assert archive.pending_days(dynamodb, table, SITE) == set()


def test_a_missing_bucket_is_one_sentence_saying_what_to_set(settings):
    store(settings, [event(1, NOW - timedelta(days=3))])
    missing = settings.with_overrides(archive_bucket=f"gone-{uuid.uuid4().hex[:8]}")
    with pytest.raises(MissingResource) as caught:
        load_events(SITE, NOW - timedelta(days=4), NOW, settings=missing, now=NOW)
    message = str(caught.value)
    assert "PIPELINE_ARCHIVE_BUCKET" in message and missing.archive_bucket in message
    assert message.count(". ") == 0 and "\n" not in message
    # Only today in the range: nothing could be archived, no bucket needed.
    assert len(load_events(SITE, NOW.date(), NOW, settings=missing, now=NOW)) == 0


# ---- reads over the wire (pyarrow's S3 client needs moto's HTTP server) ----


@pytest.fixture(scope="module")
def demo(moto_server: str) -> Iterator[tuple[Settings, list[date]]]:
    """Demo traffic written by the real consumer, its closed UTC days archived from the
    items it stored (what the compactor does)."""
    settings = Settings.for_prefix(f"a{uuid.uuid4().hex[:8]}", endpoint_url=moto_server)
    create_test_resources(settings)
    summary = load_demo(settings, now=NOW, days=4, live_minutes=0, progress=False)
    assert summary.failed == 0 and summary.stored > 500
    closed = []
    for day in days_between(NOW - timedelta(days=5), NOW)[:-1]:
        records = stored_records(settings, DEMO_SITE, day)
        if records:
            assert archive.write_day(settings, DEMO_SITE, day, records) > 0
            closed.append(day)
    assert len(closed) >= 3
    # As after the compactor's run: the closed days' rollup markers are gone.
    dynamodb = aws.client("dynamodb", settings)
    for site, day, marked_at in dirty_days(dynamodb, settings.events_table):
        if day < NOW.date():
            clear_marker(dynamodb, settings.events_table, site, day, marked_at)
    yield settings, closed


FILTER_COLUMNS = ("path", "country", "name", "browser", "referrer_source", "device")


@pytest.mark.integration
def test_parquet_path_equals_dynamodb_path_for_random_ranges_and_filters(demo):
    settings, closed = demo
    hot = load_events(
        DEMO_SITE, NOW - timedelta(days=5), NOW, settings=settings, now=NOW - timedelta(days=9)
    )
    assert len(hot) > 500
    rng = random.Random(16)
    span = int((NOW - datetime.combine(closed[0], datetime.min.time(), UTC)).total_seconds())
    for _ in range(12):
        a, b = sorted(rng.sample(range(span), 2))
        start = datetime.combine(closed[0], datetime.min.time(), UTC) + timedelta(seconds=a)
        end = datetime.combine(closed[0], datetime.min.time(), UTC) + timedelta(seconds=b)
        filters = {
            column: rng.sample(sorted(set(hot[column].astype(str))), rng.choice([1, 2]))
            for column in rng.sample(FILTER_COLUMNS, rng.choice([0, 1, 2]))
        }
        columns = rng.choice([None, ["visitor", "path"], ["props", "lat", "engagement_ms", "city"]])
        dynamodb, seen = queries_counted(settings)
        parquet = load_events(
            DEMO_SITE, start, end, settings=settings, now=NOW, columns=columns,
            filters=filters, dynamodb=dynamodb,
        )  # fmt: skip
        # The closed days came from their files: only today's partition was queried.
        assert [pk for pk in seen if pk.startswith(DEMO_SITE)] == (
            [event_pk(DEMO_SITE, NOW.date())] if end.date() == NOW.date() else []
        )
        raw = load_events(
            DEMO_SITE, start, end, settings=settings, now=closed[0], columns=columns,
            filters=filters,
        )  # fmt: skip
        pd.testing.assert_frame_equal(parquet, raw)
        # And the same as filtering the whole frame by hand.
        expected = hot[(hot["ts"] >= pd.Timestamp(start)) & (hot["ts"] < pd.Timestamp(end))]
        for column, values in filters.items():
            expected = expected[expected[column].astype(str).isin(values)]
        assert len(parquet) == len(expected)
        assert list(parquet.columns) == (
            list(archive.COLUMNS)
            if columns is None
            else [c for c in archive.COLUMNS if c in {"ts", *columns}]
        )


DASHBOARD_FILTERS = (
    ("path", "is"), ("path", "is_not"), ("path", "contains"), ("entry_page", "is"),
    ("exit_page", "is_not"), ("referrer_source", "is"), ("country", "is"), ("name", "is"),
    ("browser", "is_not"), ("device", "contains"),
)  # fmt: skip


def random_filters(rng: random.Random, frame: pd.DataFrame) -> list[metrics.Filter]:
    """One to three dashboard filters on values the frame holds (a property among them)."""
    found = []
    for dimension, operator in rng.sample(DASHBOARD_FILTERS, rng.choice([1, 2, 3])):
        column = "path" if dimension in metrics.VISIT_PAGES else dimension
        values = sorted(set(frame[column].astype(str)) - {"", metrics.ENGAGEMENT})
        picked = rng.sample(values, min(len(values), rng.choice([1, 2])))
        if operator == "contains":
            picked = [value[1:4] for value in picked]
        found.append(metrics.filter_from(dimension, operator, picked))
    keys = metrics.property_keys(frame)
    if keys and rng.random() < 0.3:
        key = rng.choice(keys)
        values = sorted(set(metrics.property_values(frame, key)) - {metrics.NONE_VALUE})
        found.append(metrics.filter_from(f"props.{key}", "is", values[:1]))
    return found


@pytest.mark.integration
def test_a_read_narrowed_to_people_gives_every_number_the_whole_range_gives(demo):
    """`people_matching` keeps only the people who could pass the filters; every number of
    `metrics.select` with those filters is what the whole range gives, from hot days and
    archived days alike."""
    settings, closed = demo
    whole = load_events(DEMO_SITE, closed[0], NOW, settings=settings, now=NOW)
    rng = random.Random(61)
    span = int((NOW - datetime.combine(closed[0], datetime.min.time(), UTC)).total_seconds())
    fewer = 0
    for _ in range(16):
        a, b = sorted(rng.sample(range(span), 2))
        start = datetime.combine(closed[0], datetime.min.time(), UTC) + timedelta(seconds=a)
        end = datetime.combine(closed[0], datetime.min.time(), UTC) + timedelta(seconds=b)
        filters = random_filters(rng, whole)
        every = load_events(DEMO_SITE, start, end, settings=settings, now=NOW)
        narrowed = load_events(
            DEMO_SITE, start, end, settings=settings, now=NOW, people_matching=filters
        )
        assert set(narrowed["ts"].astype(str) + narrowed["visitor"]) <= set(
            every["ts"].astype(str) + every["visitor"]
        )
        fewer += len(narrowed) < len(every)
        full, few = metrics.select(every, filters), metrics.select(narrowed, filters)
        assert metrics.summary(few) == metrics.summary(full), filters
        for dimension in ("path", "entry_page", "exit_page", "referrer_source", "country", "name"):
            pd.testing.assert_frame_equal(
                metrics.breakdown(few, dimension), metrics.breakdown(full, dimension)
            )
    assert fewer >= 8  # the point of it: most filtered views read a part of the rows


@pytest.mark.integration
def test_a_day_is_never_doubled_and_a_pending_day_comes_from_dynamodb(server_settings):
    settings = server_settings
    day = (NOW - timedelta(days=2)).date()
    start = datetime.combine(day, datetime.min.time(), UTC)
    events = [event(n, start + timedelta(minutes=5 * n)) for n in range(30)]
    store(settings, events)
    # The file holds the first 20 only (written before the last 10 arrived late).
    archive.write_day(settings, SITE, day, events[:20])
    read = load_events(SITE, start, start + timedelta(days=1), settings=settings, now=NOW)
    assert len(read) == 20 and read["ts"].is_unique  # archived + still hot: counted once
    dynamodb = aws.client("dynamodb", settings)
    archive.mark_pending(dynamodb, settings.events_table, SITE, day, 1)
    read = load_events(SITE, start, start + timedelta(days=1), settings=settings, now=NOW)
    assert len(read) == 30 and read["ts"].is_unique
    archive.clear_pending(dynamodb, settings.events_table, SITE, day, "1")

    # A rollup marker (a late event, the compactor not run yet) of a local day that overlaps
    # the UTC day sends it to DynamoDB too; the next day's marker does not (a UTC site).
    def marked(local_day: date) -> int:
        item = dirty_item(SITE, local_day, 5)
        dynamodb.put_item(TableName=settings.events_table, Item=item)
        return len(load_events(SITE, start, start + timedelta(days=1), settings=settings, now=NOW))

    assert marked(day + timedelta(days=1)) == 20
    assert marked(day) == 30


@pytest.mark.integration
def test_corrupt_and_truncated_files_are_skipped_with_a_reason(server_settings, caplog):
    settings = server_settings.with_overrides(hot_days=3)
    days = [(NOW - timedelta(days=n)).date() for n in (2, 1)]
    old = (NOW - timedelta(days=10)).date()
    events = [
        event(n, datetime.combine(days[n % 2], datetime.min.time(), UTC) + timedelta(minutes=n))
        for n in range(40)
    ]
    store(settings, events)
    good = archive.table_bytes(archive.records_table(events[1::2]))  # days[1]'s
    put_bytes(settings, SITE, days[0], b"PAR1 this is not parquet PAR1")
    put_bytes(settings, SITE, days[1], good[: len(good) // 2])  # truncated
    put_bytes(settings, SITE, old, b"")  # an empty object, the items long expired
    expected = load_events(SITE, old, NOW, settings=settings, now=old)
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        read = load_events(SITE, old, NOW, settings=settings, now=NOW)
    pd.testing.assert_frame_equal(read, expected)
    assert len(read) == 40
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 3 and all(SITE in m for m in skipped)
    missing = [r.getMessage() for r in caplog.records if "missing" in r.getMessage()]
    assert missing == [f"events of {SITE} on {old} are missing: archive file unreadable"]
    frame, unreadable = archive.read_days(
        settings, SITE, [*days, old], datetime.combine(old, datetime.min.time(), UTC), NOW
    )
    assert unreadable == [old, *days] and len(frame) == 0


@pytest.mark.integration
def test_a_file_of_an_older_schema_reads_with_defaults(server_settings):
    settings = server_settings
    day = (NOW - timedelta(days=3)).date()
    start = datetime.combine(day, datetime.min.time(), UTC)
    events = [event(n, start + timedelta(minutes=n)) for n in range(10)]
    newer = ("prev_visitor", "engagement_ms", "scroll_depth")
    table = archive.records_table(events).drop_columns(list(newer))
    old = table.replace_schema_metadata({b"pipeline.schema_version": b"1"})
    sink = io.BytesIO()
    pq.write_table(old, sink, compression="zstd")
    put_bytes(settings, SITE, day, sink.getvalue())
    read = load_events(SITE, start, start + timedelta(days=1), settings=settings, now=NOW)
    assert len(read) == 10 and list(read.columns) == list(archive.COLUMNS)
    assert set(read["prev_visitor"]) == {""}
    assert read["engagement_ms"].isna().all() and read["scroll_depth"].isna().all()
    assert sorted(read["path"].unique()) == ["/p0", "/p1", "/p2", "/p3"]
    assert read.loc[read["visitor"] == "v0", "props"].iloc[0] == {"plan": "pro"}


def test_archived_days_are_read_in_process_too(settings):
    # The reader goes through the pipeline's boto3 client, so moto's in-process mock (which
    # the compactor's tests use) serves the files: no request leaves the process.
    day = (NOW - timedelta(days=2)).date()
    start = datetime.combine(day, datetime.min.time(), UTC)
    events = [event(n, start + timedelta(minutes=n)) for n in range(12)]
    archive.write_day(settings, SITE, day, events)  # no items in DynamoDB: only the file
    read = load_events(SITE, start, start + timedelta(days=1), settings=settings, now=NOW)
    assert sorted(read["ts"]) == [pd.Timestamp(e["ts"], unit="ms", tz="UTC") for e in events]
    pages = load_events(
        SITE, start, start + timedelta(days=1), settings=settings, now=NOW,
        columns=["path"], filters={"path": "/p1", "country": "DE"},
    )  # fmt: skip
    assert list(pages.columns) == ["ts", "path"] and len(pages) == 3
    assert set(pages["path"]) == {"/p1"}
    with pytest.raises(ValueError, match="unknown column"):
        load_events(SITE, start, NOW, settings=settings, now=NOW, filters={"ip": "x"})


@pytest.mark.integration
def test_pyarrows_native_s3_client_reads_the_same(server_settings):
    settings = server_settings
    day = (NOW - timedelta(days=2)).date()
    start = datetime.combine(day, datetime.min.time(), UTC)
    archive.write_day(
        settings, SITE, day, [event(n, start + timedelta(minutes=n)) for n in range(9)]
    )
    ours, bad = archive.read_days(settings, SITE, [day], start, start + timedelta(days=1))
    native, bad_native = archive.read_days(
        settings, SITE, [day], start, start + timedelta(days=1),
        fs=archive.native_filesystem(settings),
    )  # fmt: skip
    pd.testing.assert_frame_equal(ours, native)
    assert len(ours) == 9 and bad == bad_native == []


def test_a_file_rewritten_between_a_narrowed_reads_passes_is_read_again_whole(settings):
    """The second pass of a narrowed read lines up with the first row for row; a file that
    changed in between (the compactor rewrote it) is not lined up but read again."""
    day = (NOW - timedelta(days=2)).date()
    start = datetime.combine(day, datetime.min.time(), UTC)
    events = [event(n, start + timedelta(minutes=n)) for n in range(12)]
    archive.write_day(settings, SITE, day, events)
    end = start + timedelta(days=1)
    first = archive.read_tables(settings, SITE, [day], start, end, ["ts", "visitor", "path"])
    mask = (first[0]["path"].to_numpy() == "/p1").tolist()
    rest = archive.read_rest(settings, SITE, [day], first, [mask], start, end)
    assert rest[0]["path"].to_pylist() == ["/p1"] * 3
    assert rest[0].column_names[:3] == ["ts", "path", "visitor"] and "city" in rest[0].column_names
    assert rest[0]["country"].to_pylist() == [e["country"] for e in events if e["path"] == "/p1"]
    late = event(99, start + timedelta(hours=20), path="/late")
    archive.write_day(settings, SITE, day, [*events, late])
    assert archive.read_rest(settings, SITE, [day], first, [mask], start, end) == [None]
    # load_events then reads that day again with the people pushed into the scan.
    narrowed = load_events(
        SITE, start, end, settings=settings, now=NOW,
        people_matching=[metrics.filter_from("path", "is", "/late")],
    )  # fmt: skip
    assert set(narrowed["visitor"]) == {late["visitor"]}
    assert len(narrowed) == sum(e["visitor"] == late["visitor"] for e in [*events, late])
