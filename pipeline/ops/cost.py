"""The monthly bill of the stack at list prices, per service, for a number of events.

Prices: us-east-1 list prices as published on the AWS pricing pages, read 2025-11 (no free
tier, no savings plans). Usage figures per event are this stack's own: one pixel request
per event, ~1 KB per queue message, ~0.7 KB per stored item, Lambda batches of 100.

Two designs, so `python -m infra cost` can show what issue 16 changed: `hot_days=None` is the
one before it (raw items kept in DynamoDB for the whole retention, every view with a filter
reads them), an int the one after (raw items kept `hot_days`, closed days in Parquet on S3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PRICES_AS_OF = "2025-11 (us-east-1 list prices)"
PRICE = {
    "cloudfront_per_10k_https": 0.0100,
    "cloudfront_per_gb_out": 0.085,
    "apigw_rest_per_million": 3.50,
    "sqs_per_million_requests": 0.40,
    "lambda_per_million_invocations": 0.20,
    "lambda_arm_per_gb_second": 0.0000133334,
    "dynamodb_per_million_write_units": 0.625,
    "dynamodb_per_million_read_units": 0.125,
    "dynamodb_storage_per_gb_month": 0.25,
    "dynamodb_pitr_per_gb_month": 0.20,
    "cloudwatch_logs_per_gb_ingested": 0.50,
    "s3_standard_per_gb_month": 0.023,
    "s3_per_1k_put_list": 0.005,  # PUT, COPY, POST, LIST
    "s3_per_1k_get": 0.0004,  # GET, HEAD
}
RESPONSE_BYTES = 700  # the GIF and its headers
ITEM_BYTES = 700  # one stored event, keys and TTL included
ROLLUP_BYTES = 2600  # one day's rollup of a small site (bench/RESULTS.md); grows with cardinality
BATCH = 100
BATCH_SECONDS = 0.05  # enrichment (~33 µs/event, bench/RESULTS.md) plus four BatchWriteItem calls
LAMBDA_GB = 0.5
# Event source mapping pollers long-poll even when idle: ~5 pollers, one request per 20 s each.
IDLE_SQS_REQUESTS = 5 * (30 * 86400 / 20)
ACCESS_LOG_BYTES = 150
GB = 1024**3
STATS_API_GB = 1.0
STATS_API_SECONDS = 0.3  # a 30-day aggregate from rollups (bench/stats_api.py, ≤ 300 ms)
STATS_API_RESPONSE_BYTES = 2_000
DEFAULT_HOT_DAYS = 7  # pipeline.config.Settings.hot_days
# Views with a filter (a page, a source, the explorer) a month: before issue 16 each read all
# raw items of its 30 days from DynamoDB; now the closed days come from Parquet.
FILTERED_VIEWS = 100
# One event in the archive's Parquet (zstd, sorted): 45-47 bytes measured on a synthetic day of
# realistic cardinality (tests/infra/test_cost.py re-measures it and keeps this above it).
PARQUET_BYTES_PER_EVENT = 60
# records_table + zstd: 30-50 µs an event measured on this x86 machine; a margin for arm64.
ARCHIVE_WRITE_SECONDS_PER_EVENT = 60e-6
COMPACTOR_GB = 1.0
# pyarrow reads a file's footer, then its row groups: a HEAD and ~2 ranged GETs per file.
GETS_PER_FILE = 3
# A closed day's file is written once, and again for each late event that reopens the day.
REWRITES_PER_DAY = 1
COMPARE_AT = (1_000_000, 100_000_000)


@dataclass(frozen=True)
class Line:
    service: str
    usage: str
    dollars: float


def stats_api_cost(api_requests: int, read_units_per_request: float) -> float:
    """Dollars for `api_requests` Stats API requests a month (see the module docstring)."""
    r = api_requests
    edge = r / 10_000 * PRICE["cloudfront_per_10k_https"]
    edge += r * STATS_API_RESPONSE_BYTES / GB * PRICE["cloudfront_per_gb_out"]
    gateway = r / 1e6 * PRICE["apigw_rest_per_million"]
    function = r / 1e6 * PRICE["lambda_per_million_invocations"]
    function += r * STATS_API_SECONDS * STATS_API_GB * PRICE["lambda_arm_per_gb_second"]
    reads = r * read_units_per_request / 1e6 * PRICE["dynamodb_per_million_read_units"]
    counter = r / 1e6 * PRICE["dynamodb_per_million_write_units"]
    return edge + gateway + function + reads + counter


def _raw_read_units(items: float) -> float:
    """Eventually consistent Query reads: 0.5 unit per 4 KB of items."""
    return items * ITEM_BYTES / 4096 * 0.5


def monthly_cost(
    events_per_month: int,
    retention_days: int = 400,
    dashboard_views: int = 300,
    api_requests: int = 10_000,
    hot_days: int | None = DEFAULT_HOT_DAYS,
    filtered_views: int = FILTERED_VIEWS,
) -> list[Line]:
    """One line per service; the bill is the sum of `dollars`. `hot_days=None`: the design
    before the Parquet archive (see the module docstring)."""
    n = events_per_month
    archived = hot_days is not None
    batches = n / BATCH
    sqs_requests = n + 2 * n / 10 + IDLE_SQS_REQUESTS  # send; receive + delete per 10; idle polls
    kept_days = min(retention_days, 365)  # a year of months, as the bill settles
    # An item's TTL is its day plus hot_days + 1 (the consumer), so that many days are stored.
    item_days = min(hot_days + 1, kept_days) if archived else kept_days
    stored_gb = n * item_days / 30 * ITEM_BYTES / GB
    # A 30-day view reads 30 daily rollups and, on average, half a day of raw events (today);
    # 0.5 read unit per 4 KB, eventually consistent.
    per_view = math.ceil(30 * ROLLUP_BYTES / 4096) * 0.5 + _raw_read_units(n / 60)
    read_units = dashboard_views * per_view
    # A filtered 30-day view: before, every raw item of the month; after, today's half day
    # from DynamoDB and 30 files from S3 (one LIST finds them).
    filtered_units = filtered_views * _raw_read_units(n / 60 if archived else n)
    # The compactor reads each day's events once and writes one rollup a day.
    compaction_units = _raw_read_units(n)
    compactor = compaction_units / 1e6 * PRICE["dynamodb_per_million_read_units"]
    compactor += (
        30 * math.ceil(ROLLUP_BYTES / 1024) / 1e6 * PRICE["dynamodb_per_million_write_units"]
    )
    lines = [
        Line("CloudFront", f"{n:,} HTTPS requests", n / 10_000 * PRICE["cloudfront_per_10k_https"] + n * RESPONSE_BYTES / GB * PRICE["cloudfront_per_gb_out"]),
        Line("API Gateway (REST)", f"{n:,} requests", n / 1e6 * PRICE["apigw_rest_per_million"]),
        Line("SQS", f"{sqs_requests:,.0f} requests", sqs_requests / 1e6 * PRICE["sqs_per_million_requests"]),
        Line("Lambda (arm64)", f"{batches:,.0f} invocations", batches / 1e6 * PRICE["lambda_per_million_invocations"] + batches * BATCH_SECONDS * LAMBDA_GB * PRICE["lambda_arm_per_gb_second"]),
        Line("DynamoDB writes", f"{n:,} write units", n / 1e6 * PRICE["dynamodb_per_million_write_units"]),
        Line("DynamoDB storage + PITR", f"{stored_gb:,.2f} GB kept ({item_days} days)", stored_gb * (PRICE["dynamodb_storage_per_gb_month"] + PRICE["dynamodb_pitr_per_gb_month"])),
        Line("DynamoDB dashboard reads", f"{dashboard_views:,} views, {read_units:,.0f} read units", read_units / 1e6 * PRICE["dynamodb_per_million_read_units"]),
        Line("DynamoDB filtered views", f"{filtered_views:,} views, {filtered_units:,.0f} read units", filtered_units / 1e6 * PRICE["dynamodb_per_million_read_units"]),
        Line("Compactor", f"{compaction_units:,.0f} read units, 30 rollups", compactor),
        Line("CloudWatch Logs", f"{n * ACCESS_LOG_BYTES / GB:,.2f} GB of access logs", n * ACCESS_LOG_BYTES / GB * PRICE["cloudwatch_logs_per_gb_ingested"]),
        Line("Stats API", f"{api_requests:,} requests", stats_api_cost(api_requests, per_view)),
    ]  # fmt: skip
    return lines + (_archive_lines(n, kept_days, filtered_views) if archived else [])


def _archive_lines(n: int, kept_days: int, filtered_views: int) -> list[Line]:
    """What the Parquet archive adds: S3 storage and requests, and the compactor's writing."""
    stored_gb = n * kept_days / 30 * PARQUET_BYTES_PER_EVENT / GB
    puts = 30 * (1 + REWRITES_PER_DAY)
    lists = filtered_views  # one ListObjectsV2 per view finds the archived days
    gets = filtered_views * 30 * GETS_PER_FILE
    requests = (puts + lists) / 1000 * PRICE["s3_per_1k_put_list"]
    requests += gets / 1000 * PRICE["s3_per_1k_get"]
    seconds = n * (1 + REWRITES_PER_DAY) * ARCHIVE_WRITE_SECONDS_PER_EVENT
    return [
        Line("S3 archive storage", f"{stored_gb:,.2f} GB of Parquet ({kept_days} days)", stored_gb * PRICE["s3_standard_per_gb_month"]),
        Line("S3 archive requests", f"{puts + lists:,} PUT/LIST, {gets:,} GET", requests),
        Line("Compactor (Parquet)", f"{seconds:,.0f} s of Lambda", seconds * COMPACTOR_GB * PRICE["lambda_arm_per_gb_second"]),
    ]  # fmt: skip


def per_million(lines: list[Line], events_per_month: int) -> float:
    """The bill per million events."""
    total = sum(line.dollars for line in lines)
    return total / events_per_month * 1e6 if events_per_month else 0.0


def comparison(
    volumes: tuple[int, ...] = COMPARE_AT, hot_days: int = DEFAULT_HOT_DAYS, **usage: int
) -> list[tuple[int, float, float]]:
    """(events a month, before, after) in dollars per million events, for each volume."""
    return [
        (
            n,
            per_million(monthly_cost(n, hot_days=None, **usage), n),
            per_million(monthly_cost(n, hot_days=hot_days, **usage), n),
        )
        for n in volumes
    ]


def render_comparison(rows: list[tuple[int, float, float]], hot_days: int) -> str:
    header = f"{'events/month':>14} {'before $/M':>11} {'after $/M':>10} {'change':>8}"
    lines = [
        f"Before and after the Parquet archive (raw items kept {hot_days} days, not the retention):",
        header,
    ]
    lines += [
        f"{n:>14,} {before:>11.2f} {after:>10.2f} {(after - before) / before:>8.1%}"
        for n, before, after in rows
    ]
    return "\n".join(lines)


def render(lines: list[Line], events_per_month: int) -> str:
    total = sum(line.dollars for line in lines)
    rows = [f"{'service':<26} {'usage':<40} {'USD/month':>10}"]
    rows += [f"{line.service:<26} {line.usage:<40} {line.dollars:>10.2f}" for line in lines]
    rows.append(f"{'total':<26} {'':<40} {total:>10.2f}")
    rows.append(
        f"= ${per_million(lines, events_per_month):.2f} per million events (prices: {PRICES_AS_OF})"
    )
    return "\n".join(rows)
