"""The SQL over the archive (DuckDB here, Athena in production) gives what pipeline.stats.metrics
gives on the same Parquet files: the demo's traffic through the consumer, and hand-made edges."""

from __future__ import annotations

import io
import math
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import pipeline
from pipeline import aws
from pipeline.errors import MissingResource
from pipeline.local.demo import DEMO_SITE, load_demo
from pipeline.stats import metrics, sql
from pipeline.store import archive
from pipeline.store.query import query_partition
from pipeline.store.storage import event_from_item, event_pk
from tests.stats.conftest import engagement, ev

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SITE = "example.com"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "notebooks.md"
SUMMARY_FIELDS = ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate"]


def archive_from_table(settings, site: str, days: list[date]) -> None:
    """Write each UTC day's file from its DynamoDB items, as the compactor does."""
    dynamodb = aws.client("dynamodb", settings)
    for day in days:
        items = []
        for shard in range(settings.shards_for(site)):
            items += query_partition(
                dynamodb, settings.events_table, event_pk(site, day, shard), 0, 2**42
            )
        archive.write_day(settings, site, day, [event_from_item(item) for item in items])


def files_frame(settings, site: str, days: list[date]) -> pd.DataFrame:
    """The events frame of the days' files (those that exist and read), as the archive reader
    shapes it: what metrics computes on."""
    s3 = aws.client("s3", settings)
    tables = []
    for day in days:
        try:
            body = s3.get_object(Bucket=settings.archive_bucket, Key=archive.object_key(site, day))
            # With the archive schema, as its reader: an older file gets nulls for new columns.
            tables.append(pq.read_table(io.BytesIO(body["Body"].read()), schema=archive.SCHEMA))
        except (s3.exceptions.NoSuchKey, OSError):
            continue
    return archive.frame_from_tables(tables)


def span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def assert_summary_equal(found: pd.DataFrame, events: pd.DataFrame) -> None:
    assert len(found) == 1
    expected = metrics.summary(events).as_dict()
    got = found.iloc[0].to_dict()
    assert {k: got[k] for k in ("visitors", "visits", "pageviews")} == {
        k: expected[k] for k in ("visitors", "visits", "pageviews")
    }
    for name in ("views_per_visit", "bounce_rate", "visit_duration"):
        assert got[name] == pytest.approx(expected[name], abs=1e-9), name


def assert_breakdown_equal(found: pd.DataFrame, events: pd.DataFrame, dimension: str) -> None:
    expected = metrics.breakdown(events, dimension)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(
        found.reset_index(drop=True)[list(expected.columns)],
        expected,
        check_dtype=False,
        check_exact=False,
        rtol=1e-12,
    )


def test_sql_equals_metrics_on_the_demo_traffic(settings):
    load_demo(settings, now=NOW, days=6, progress=False)
    closed = span(NOW.date() - timedelta(days=5), NOW.date() - timedelta(days=1))
    archive_from_table(settings, DEMO_SITE, closed)
    events = files_frame(settings, DEMO_SITE, closed)
    assert (events["prev_visitor"] != "").any()  # visits across the salt change are in it
    # The join across midnight matters on this traffic: without it metrics counts more visits.
    unlinked = events.assign(prev_visitor="")
    assert metrics.summary(unlinked).visits > metrics.summary(events).visits

    for first, last in [(closed[0], closed[-1]), (closed[2], closed[2]), (closed[1], closed[3])]:
        scope = events[(events["ts"].dt.date >= first) & (events["ts"].dt.date <= last)]
        found = pipeline.query_sql(sql.SIX_NUMBERS_SQL, DEMO_SITE, first, last, settings=settings)
        assert_summary_equal(found, scope.reset_index(drop=True))
        assert found.attrs["missing_days"] == []
    for dimension in ("referrer_source", "country", "device"):
        found = sql.query_sql(
            sql.breakdown_sql(dimension), DEMO_SITE, closed[0], closed[-1], settings=settings
        )
        assert_breakdown_equal(found, events, dimension)


def stored(records: list[dict]) -> list[dict]:
    """Hand-made events as the consumer stores them: a request id, no NaN (a value the event
    does not have is absent from its item)."""
    return [
        {
            **{k: v for k, v in record.items() if not (isinstance(v, float) and math.isnan(v))},
            "request_id": f"r{n:04d}",
        }
        for n, record in enumerate(records)
    ]


def by_day(records: list[dict]) -> dict[date, list[dict]]:
    found: dict[date, list[dict]] = {}
    for record in records:
        day = datetime.fromtimestamp(record["ts"] / 1000, UTC).date()
        found.setdefault(day, []).append(record)
    return found


# Two UTC days of edges: the salt change, whole-second gaps, engagement, custom events.
EDGES = [
    # One visit across midnight: yesterday's hash a1, today's b2 (prev_visitor a1), 25 min.
    ev("2026-11-01 23:45:00", "a1", path="/late", referrer_source="Google"),
    ev("2026-11-02 00:10:00", "b2", path="/next", prev="a1", referrer_source="Google"),
    # Across midnight but 80 minutes apart: two visits.
    ev("2026-11-01 23:00:00", "k1", path="/", referrer_source="Bing"),
    ev("2026-11-02 00:20:00", "l2", path="/", prev="k1", referrer_source="Bing"),
    # prev_visitor naming a hash not in the range: nothing to join.
    ev("2026-11-02 00:05:00", "j2", path="/", prev="gone"),
    # 30:00.8 apart, 30:00 in whole seconds: one visit (a raw-millisecond rule splits it).
    ev("2026-11-01 10:00:00.100", "s", path="/a"),
    ev("2026-11-01 10:30:00.900", "s", path="/b"),
    # 30:01 apart: two visits.
    ev("2026-11-01 09:00:00", "t", path="/a", referrer_source="Twitter"),
    ev("2026-11-01 09:30:01", "t", path="/a", referrer_source="Twitter"),
    # Engagement keeps the visit alive, is no pageview and does not extend the duration.
    ev("2026-11-02 12:00:00", "e", path="/long"),
    engagement("2026-11-02 12:25:00", "e", "/long", ms=20_000, scroll=70),
    ev("2026-11-02 12:50:00", "e", path="/more"),
    engagement("2026-11-02 13:10:00", "e", "/more", ms=5_000, scroll=30),
    # Engagement alone: no visit, no visitor.
    engagement("2026-11-02 15:00:00", "f", "/lost", ms=1_000, scroll=10),
    # A custom event alone: a bounced visit without pageviews.
    ev("2026-11-02 16:00:00", "h", "Signup", path="/signup", referrer_source="GitHub"),
]


def test_sql_follows_the_visit_rules_of_metrics(settings):
    records = stored(EDGES)
    for day, day_records in by_day(records).items():
        archive.write_day(settings, SITE, day, day_records)
    days = span(date(2026, 11, 1), date(2026, 11, 2))
    events = files_frame(settings, SITE, days)
    assert len(events) == len(EDGES)
    # The edges decide: the salt-change join and the whole-second rule change the count.
    assert metrics.summary(events.assign(prev_visitor="")).visits != metrics.summary(events).visits

    found = sql.query_sql(sql.SIX_NUMBERS_SQL, SITE, days[0], days[1], settings=settings)
    assert_summary_equal(found, events)
    assert_breakdown_equal(
        sql.query_sql(sql.BREAKDOWN_SQL, SITE, days[0], days[1], settings=settings),
        events,
        "referrer_source",
    )


def test_old_corrupt_and_missing_days(settings, caplog):
    records = stored(EDGES)
    days = by_day(records)
    old_day, corrupt_day, absent_day = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)
    s3 = aws.client("s3", settings)
    # A file from before issue 14's columns (schema version 1).
    old = archive.records_table(days[old_day]).drop_columns(
        ["prev_visitor", "engagement_ms", "scroll_depth"]
    )
    sink = io.BytesIO()
    pq.write_table(old, sink, compression="zstd")
    s3.put_object(Bucket=settings.archive_bucket, Key=archive.object_key(SITE, old_day),
                  Body=sink.getvalue())  # fmt: skip
    whole = archive.table_bytes(archive.records_table(days[corrupt_day]))
    s3.put_object(Bucket=settings.archive_bucket, Key=archive.object_key(SITE, corrupt_day),
                  Body=whole[: len(whole) // 2])  # fmt: skip

    with caplog.at_level("WARNING", logger="pipeline.stats.sql"):
        found = sql.query_sql(sql.SIX_NUMBERS_SQL, SITE, old_day, absent_day, settings=settings)
    assert found.attrs["missing_days"] == [corrupt_day, absent_day]
    assert str(corrupt_day) in caplog.text and "skipped" in caplog.text
    assert_summary_equal(found, files_frame(settings, SITE, [old_day]))
    assert found.iloc[0]["visits"] > 0
    # The columns the old file lacks read as NULL.
    lacking = sql.query_sql(
        "SELECT count(*) AS n, count(prev_visitor) AS linked FROM events",
        SITE, old_day, old_day, settings=settings,
    )  # fmt: skip
    assert lacking.iloc[0].to_dict() == {"n": len(days[old_day]), "linked": 0}


def test_no_files_gives_metrics_of_nothing(settings):
    found = sql.query_sql(sql.SIX_NUMBERS_SQL, SITE, "2026-10-01", "2026-10-02", settings=settings)
    assert_summary_equal(found, files_frame(settings, SITE, []))
    assert found.attrs["missing_days"] == [date(2026, 10, 1), date(2026, 10, 2)]
    assert sql.query_sql(sql.BREAKDOWN_SQL, SITE, "2026-10-01", "2026-10-01",
                         settings=settings).empty  # fmt: skip


def test_a_missing_bucket_says_what_to_set(settings):
    wrong = settings.with_overrides(archive_bucket="no-such-archive-bucket")
    with pytest.raises(MissingResource, match="PIPELINE_ARCHIVE_BUCKET"):
        sql.query_sql(sql.SIX_NUMBERS_SQL, SITE, "2026-11-01", "2026-11-01", settings=wrong)


# Functions both DuckDB and Trino (Athena engine 3) run the same way; keywords before "(".
COMMON_FUNCTIONS = {
    "avg", "cast", "coalesce", "count", "date_diff", "date_trunc", "lag", "max", "min",
    "min_by", "nullif", "sum",
}  # fmt: skip
KEYWORDS = {"as", "join", "over", "select"}
DUCKDB_ONLY = ("::", "QUALIFY", "EXCLUDE", "REPLACE(", "epoch", "arg_min", "ILIKE", "->>", "[")


@pytest.mark.parametrize(
    "text", [sql.SIX_NUMBERS_SQL, *(sql.breakdown_sql(d) for d in sql.BREAKDOWN_DIMENSIONS)]
)
def test_the_sql_keeps_to_what_athena_runs(text):
    called = {name.lower() for name in re.findall(r"\b(\w+)\s*\(", text)}
    assert called - KEYWORDS <= COMMON_FUNCTIONS, called - KEYWORDS - COMMON_FUNCTIONS
    assert not [token for token in DUCKDB_ONLY if token.lower() in text.lower()]
    assert "{" not in text  # every placeholder filled


def test_breakdown_sql_refuses_an_unknown_column():
    with pytest.raises(ValueError, match="No SQL breakdown"):
        sql.breakdown_sql("visitor; DROP TABLE events")


def test_the_docs_show_the_sql_the_code_runs():
    text = DOCS.read_text()
    assert sql.SIX_NUMBERS_SQL.strip() in text
    assert sql.BREAKDOWN_SQL.strip() in text


def test_athena_sql_reads_one_site_and_range_of_a_glue_shaped_table(settings, tmp_path):
    """The Athena form, run in DuckDB over a table shaped as the Glue one (partition columns
    `site` and `day`, several sites and days): the numbers of that site and range only."""
    import duckdb

    records = stored(EDGES)
    other = [{**r, "site": "other.test", "request_id": "o" + r["request_id"]} for r in records]
    files = []
    for n, rows in enumerate([records, other]):
        path = tmp_path / f"{n}.parquet"
        pq.write_table(archive.records_table(rows), path)
        files.append(str(path))
    text = sql.athena_sql(sql.SIX_NUMBERS_SQL, "glue.events", SITE, "2026-11-02", "2026-11-02")
    assert "FROM events\n" not in text and "site = 'example.com'" in text
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE SCHEMA glue")
        con.read_parquet(files).create_view("raw")
        con.execute("CREATE TABLE glue.events AS SELECT *, CAST(ts AS DATE) AS day FROM raw")
        found = con.execute(text).df()
    for day, day_records in by_day(records).items():
        archive.write_day(settings, SITE, day, day_records)
    assert_summary_equal(found, files_frame(settings, SITE, [date(2026, 11, 2)]))
    with pytest.raises(ValueError, match="Glue table name"):
        sql.athena_sql(sql.SIX_NUMBERS_SQL, "events; DROP", SITE, "2026-11-02", "2026-11-02")
