"""The monthly bill of the stack at list prices, per service, for a number of events.

Prices: us-east-1 list prices as published on the AWS pricing pages, read 2025-11 (no free
tier, no savings plans). Usage figures per event are this stack's own: one pixel request
per event, ~1 KB per queue message, ~0.7 KB per stored item, Lambda batches of 100.
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


def monthly_cost(
    events_per_month: int,
    retention_days: int = 400,
    dashboard_views: int = 300,
    api_requests: int = 10_000,
) -> list[Line]:
    """One line per service; the bill is the sum of `dollars`."""
    n = events_per_month
    batches = n / BATCH
    sqs_requests = n + 2 * n / 10 + IDLE_SQS_REQUESTS  # send; receive + delete per 10; idle polls
    stored_gb = n * min(retention_days, 365) / 30 * ITEM_BYTES / GB
    # A 30-day view reads 30 daily rollups and, on average, half a day of raw events (today);
    # 0.5 read unit per 4 KB, eventually consistent.
    per_view = math.ceil(30 * ROLLUP_BYTES / 4096) * 0.5 + (n / 60) * ITEM_BYTES / 4096 * 0.5
    read_units = dashboard_views * per_view
    # The compactor reads each day's events once and writes one rollup a day.
    compaction_units = n * ITEM_BYTES / 4096 * 0.5
    return [
        Line("CloudFront", f"{n:,} HTTPS requests", n / 10_000 * PRICE["cloudfront_per_10k_https"] + n * RESPONSE_BYTES / GB * PRICE["cloudfront_per_gb_out"]),
        Line("API Gateway (REST)", f"{n:,} requests", n / 1e6 * PRICE["apigw_rest_per_million"]),
        Line("SQS", f"{sqs_requests:,.0f} requests", sqs_requests / 1e6 * PRICE["sqs_per_million_requests"]),
        Line("Lambda (arm64)", f"{batches:,.0f} invocations", batches / 1e6 * PRICE["lambda_per_million_invocations"] + batches * BATCH_SECONDS * LAMBDA_GB * PRICE["lambda_arm_per_gb_second"]),
        Line("DynamoDB writes", f"{n:,} write units", n / 1e6 * PRICE["dynamodb_per_million_write_units"]),
        Line("DynamoDB storage + PITR", f"{stored_gb:,.2f} GB kept", stored_gb * (PRICE["dynamodb_storage_per_gb_month"] + PRICE["dynamodb_pitr_per_gb_month"])),
        Line("DynamoDB dashboard reads", f"{dashboard_views:,} views, {read_units:,.0f} read units", read_units / 1e6 * PRICE["dynamodb_per_million_read_units"]),
        Line("Compactor", f"{compaction_units:,.0f} read units, 30 rollups", compaction_units / 1e6 * PRICE["dynamodb_per_million_read_units"] + 30 * math.ceil(ROLLUP_BYTES / 1024) / 1e6 * PRICE["dynamodb_per_million_write_units"]),
        Line("CloudWatch Logs", f"{n * ACCESS_LOG_BYTES / GB:,.2f} GB of access logs", n * ACCESS_LOG_BYTES / GB * PRICE["cloudwatch_logs_per_gb_ingested"]),
        Line("Stats API", f"{api_requests:,} requests", stats_api_cost(api_requests, per_view)),
    ]  # fmt: skip


def render(lines: list[Line], events_per_month: int) -> str:
    total = sum(line.dollars for line in lines)
    rows = [f"{'service':<26} {'usage':<40} {'USD/month':>10}"]
    rows += [f"{line.service:<26} {line.usage:<40} {line.dollars:>10.2f}" for line in lines]
    rows.append(f"{'total':<26} {'':<40} {total:>10.2f}")
    per_million = total / events_per_month * 1e6 if events_per_month else 0.0
    rows.append(f"= ${per_million:.2f} per million events (prices: {PRICES_AS_OF})")
    return "\n".join(rows)
