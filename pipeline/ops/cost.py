"""The monthly bill of the stack at list prices, per service, for a number of events.

Prices: us-east-1 list prices as published on the AWS pricing pages, read 2025-11 (no free
tier, no savings plans). Usage figures per event are this stack's own: one pixel request
per event, ~1 KB per queue message, ~0.7 KB per stored item.

The stack's own numbers (batch size and window, memory, timeouts, the compactor's schedule,
log retention, alarms) are a `Shape`. `python -m infra cost` reads them from the generated
template (`infra/cost.py`: pipeline never imports infra); the defaults here are that
template's values, for callers without it (the Pipeline health page), and a test keeps them
equal.

Two designs, so `python -m infra cost` can show what issue 16 changed: `hot_days=None` is the
one before it (raw items kept in DynamoDB for the whole retention, every view with a filter
reads them), an int the one after (raw items kept `hot_days`, closed days in Parquet on S3).

Lines marked `fixed` (the compactor's runs, alarms, the CloudWatch dashboard, alarm e-mails,
reports and notifications) cost the same whatever the events and in both designs.
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
    # Read 2025-11 like the rest, from aws.amazon.com/cloudwatch/pricing, /sns/pricing and
    # /ses/pricing (issue 17's lines): logs stored, alarms, dashboards, SNS, SES.
    "cloudwatch_logs_per_gb_month_stored": 0.03,
    # CloudWatch alarms: per alarm metric a month (a metric-math alarm pays for each metric in
    # its expression, an anomaly-detection band for three); composite alarms per alarm.
    "cloudwatch_alarm_metric_month": 0.10,
    "cloudwatch_high_resolution_alarm_metric_month": 0.30,
    "cloudwatch_composite_alarm_month": 0.50,
    "cloudwatch_dashboard_month": 3.00,
    "sns_per_million_publishes": 0.50,
    "sns_per_100k_email": 2.00,
    "ses_per_1k_emails": 0.10,
    "s3_standard_per_gb_month": 0.023,
    "s3_per_1k_put_list": 0.005,  # PUT, COPY, POST, LIST
    "s3_per_1k_get": 0.0004,  # GET, HEAD
}
RESPONSE_BYTES = 700  # the GIF and its headers
ITEM_BYTES = 700  # one stored event, keys and TTL included
ROLLUP_BYTES = 2600  # one day's rollup of a small site (bench/RESULTS.md); grows with cardinality
MONTH_SECONDS = 30 * 86400
# A consumer batch: enrichment (~33 µs/event, bench/RESULTS.md) plus one BatchWriteItem call
# per 25 items; together 0.05 s for a batch of 100, as measured.
ENRICH_SECONDS_PER_EVENT = 33e-6
WRITE_CALL_SECONDS = (0.05 - 100 * ENRICH_SECONDS_PER_EVENT) / 4
WRITE_CALL_ITEMS = 25  # BatchWriteItem's limit
# Event source mapping pollers long-poll even when idle: ~5 pollers, one request per 20 s each.
# They also share the traffic: a batch holds what one poller receives in its batching window.
POLLERS = 5
IDLE_SQS_REQUESTS = POLLERS * (MONTH_SECONDS / 20)
ACCESS_LOG_BYTES = 150
GB = 1024**3
STATS_API_SECONDS = 0.3  # a 30-day aggregate from rollups (bench/stats_api.py, ≤ 300 ms)
STATS_API_RESPONSE_BYTES = 2_000
DEFAULT_HOT_DAYS = 7  # pipeline.config.Settings.hot_days
DEFAULT_RETENTION_DAYS = 400  # pipeline.config.Settings.retention_days
# Views with a filter (a page, a source, the explorer) a month: before issue 16 each read all
# raw items of its 30 days from DynamoDB; now the closed days come from Parquet.
FILTERED_VIEWS = 100
# One event in the archive's Parquet (zstd, sorted): 45-47 bytes measured on a synthetic day of
# realistic cardinality (tests/infra/test_cost.py re-measures it and keeps this above it).
PARQUET_BYTES_PER_EVENT = 60
# records_table + zstd: 30-50 µs an event measured on this x86 machine; a margin for arm64.
ARCHIVE_WRITE_SECONDS_PER_EVENT = 60e-6
# A compactor run with nothing to roll up reads the markers and the registry; most runs, 15
# minutes apart, start cold (pandas and pyarrow imported). An estimate, not a measurement.
COMPACTOR_RUN_SECONDS = 1.0
# pyarrow reads a file's footer, then its row groups: a HEAD and ~2 ranged GETs per file.
GETS_PER_FILE = 3
# A closed day's file is written once, and again for each late event that reopens the day.
REWRITES_PER_DAY = 1
COMPARE_AT = (1_000_000, 100_000_000)
# Reports (pipeline/ops/reports.py): a report reads the daily rollups of its period and of the
# period before it (its "change" column); notifications read the daily series once a day,
# enough of it for the anomaly detector's baseline (4 earlier weeks and this one).
WEEKLY_REPORTS_PER_MONTH = 52 / 12
WEEKLY_REPORT_DAYS = 14
MONTHLY_REPORT_DAYS = 61
NOTIFICATION_DAYS = 35
NOTIFICATIONS_PER_MONTH = 2  # per site; at most one a day (31)
# Alarm state changes a month (each ALARM and each OK is one e-mail to the alarm topic).
ALARM_CHANGES_PER_MONTH = 10


@dataclass(frozen=True)
class Line:
    service: str
    usage: str
    dollars: float
    fixed: bool = False  # the same whatever the events (module docstring)


@dataclass(frozen=True)
class Shape:
    """The stack's numbers the bill depends on (defaults: infra/template.py's)."""

    batch_size: int = 100
    batch_window_seconds: float = 1
    consumer_memory_mb: int = 512
    consumer_timeout_seconds: int = 30
    compactor_memory_mb: int = 1024
    compactor_every_minutes: float = 15
    stats_api_memory_mb: int = 1024
    log_retention_days: int = 14
    alarms: int = 8
    alarm_metrics: int = 9  # standard resolution (a metric-math alarm: each of its metrics)
    high_resolution_alarm_metrics: int = 0
    composite_alarms: int = 0
    dashboards: int = 1
    alarm_subscriptions: int = 1  # the alarm topic's e-mail subscription (AlarmEmail)

    @property
    def compactor_runs(self) -> float:
        return MONTH_SECONDS / 60 / self.compactor_every_minutes


SHAPE = Shape()


def batch_seconds(events: float) -> float:
    """Seconds of the consumer for one batch of `events` (see ENRICH_SECONDS_PER_EVENT)."""
    return (
        events * ENRICH_SECONDS_PER_EVENT
        + math.ceil(events / WRITE_CALL_ITEMS) * WRITE_CALL_SECONDS
    )


def batch_fill(events_per_month: float, shape: Shape = SHAPE) -> float:
    """Events in an average consumer batch: a full batch, or what one of the pollers receives
    in a batching window when traffic is lower (never less than one event)."""
    per_second = events_per_month / MONTH_SECONDS
    return max(1.0, min(float(shape.batch_size), per_second * shape.batch_window_seconds / POLLERS))


def shape_problem(shape: Shape) -> str | None:
    """A sentence when the shape cannot work as priced (a full batch outlasting the
    consumer's timeout), else None."""
    seconds = batch_seconds(shape.batch_size)
    if seconds > shape.consumer_timeout_seconds:
        return (
            f"a full batch of {shape.batch_size:,} events takes ~{seconds:.1f} s, longer than the "
            f"consumer's timeout of {shape.consumer_timeout_seconds} s: lower BatchSize or raise Timeout"
        )
    return None


def stats_api_cost(api_requests: int, read_units_per_request: float, shape: Shape = SHAPE) -> float:
    """Dollars for `api_requests` Stats API requests a month (see the module docstring)."""
    r = api_requests
    edge = r / 10_000 * PRICE["cloudfront_per_10k_https"]
    edge += r * STATS_API_RESPONSE_BYTES / GB * PRICE["cloudfront_per_gb_out"]
    gateway = r / 1e6 * PRICE["apigw_rest_per_million"]
    function = r / 1e6 * PRICE["lambda_per_million_invocations"]
    gb = shape.stats_api_memory_mb / 1024
    function += r * STATS_API_SECONDS * gb * PRICE["lambda_arm_per_gb_second"]
    reads = r * read_units_per_request / 1e6 * PRICE["dynamodb_per_million_read_units"]
    counter = r / 1e6 * PRICE["dynamodb_per_million_write_units"]
    return edge + gateway + function + reads + counter


def _raw_read_units(items: float) -> float:
    """Eventually consistent Query reads: 0.5 unit per 4 KB of items."""
    return items * ITEM_BYTES / 4096 * 0.5


def rollup_read_units(days: int) -> float:
    """One Query for `days` daily rollups, eventually consistent: 0.5 unit per 4 KB."""
    return math.ceil(days * ROLLUP_BYTES / 4096) * 0.5


def monthly_cost(
    events_per_month: int,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    dashboard_views: int = 300,
    api_requests: int = 10_000,
    hot_days: int | None = DEFAULT_HOT_DAYS,
    filtered_views: int = FILTERED_VIEWS,
    shape: Shape = SHAPE,
    sites: int = 1,
    recipients: int = 1,
    notifications: int = NOTIFICATIONS_PER_MONTH,
) -> list[Line]:
    """One line per service; the bill is the sum of `dollars`. `hot_days=None`: the design
    before the Parquet archive (see the module docstring). `recipients`: report recipients per
    site; `notifications`: spike/drop notifications per site a month."""
    n = events_per_month
    archived = hot_days is not None
    fill = batch_fill(n, shape)
    batches = n / fill
    lambda_gb = shape.consumer_memory_mb / 1024
    sqs_requests = n + 2 * n / 10 + IDLE_SQS_REQUESTS  # send; receive + delete per 10; idle polls
    kept_days = min(retention_days, 365)  # a year of months, as the bill settles
    # An item's TTL is its day plus hot_days + 1 (the consumer), so that many days are stored.
    item_days = min(hot_days + 1, kept_days) if archived else kept_days
    stored_gb = n * item_days / 30 * ITEM_BYTES / GB
    # A 30-day view reads 30 daily rollups and, on average, half a day of raw events (today);
    # 0.5 read unit per 4 KB, eventually consistent.
    per_view = rollup_read_units(30) + _raw_read_units(n / 60)
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
    logs_gb = n * ACCESS_LOG_BYTES / GB
    # Logs are kept log_retention_days: on average that many days' worth is stored.
    logs_stored_gb = logs_gb * shape.log_retention_days / 30
    lines = [
        Line("CloudFront", f"{n:,} HTTPS requests", n / 10_000 * PRICE["cloudfront_per_10k_https"] + n * RESPONSE_BYTES / GB * PRICE["cloudfront_per_gb_out"]),
        Line("API Gateway (REST)", f"{n:,} requests", n / 1e6 * PRICE["apigw_rest_per_million"]),
        Line("SQS", f"{sqs_requests:,.0f} requests", sqs_requests / 1e6 * PRICE["sqs_per_million_requests"]),
        Line("Lambda (arm64)", f"{batches:,.0f} batches of ~{fill:,.0f}, {shape.consumer_memory_mb} MB", batches / 1e6 * PRICE["lambda_per_million_invocations"] + batches * batch_seconds(fill) * lambda_gb * PRICE["lambda_arm_per_gb_second"]),
        Line("DynamoDB writes", f"{n:,} write units", n / 1e6 * PRICE["dynamodb_per_million_write_units"]),
        Line("DynamoDB storage + PITR", f"{stored_gb:,.2f} GB kept ({item_days} days)", stored_gb * (PRICE["dynamodb_storage_per_gb_month"] + PRICE["dynamodb_pitr_per_gb_month"])),
        Line("DynamoDB dashboard reads", f"{dashboard_views:,} views, {read_units:,.0f} read units", read_units / 1e6 * PRICE["dynamodb_per_million_read_units"]),
        Line("DynamoDB filtered views", f"{filtered_views:,} views, {filtered_units:,.0f} read units", filtered_units / 1e6 * PRICE["dynamodb_per_million_read_units"]),
        Line("Compactor", f"{compaction_units:,.0f} read units, 30 rollups", compactor),
        Line("CloudWatch Logs", f"{logs_gb:,.2f} GB of access logs, kept {shape.log_retention_days} d", logs_gb * PRICE["cloudwatch_logs_per_gb_ingested"] + logs_stored_gb * PRICE["cloudwatch_logs_per_gb_month_stored"]),
        Line("Stats API", f"{api_requests:,} requests", stats_api_cost(api_requests, per_view, shape)),
    ]  # fmt: skip
    archive = _archive_lines(n, kept_days, filtered_views, shape) if archived else []
    return lines + archive + operations_lines(shape, sites, recipients, notifications)


def _archive_lines(n: int, kept_days: int, filtered_views: int, shape: Shape) -> list[Line]:
    """What the Parquet archive adds: S3 storage and requests, and the compactor's writing."""
    stored_gb = n * kept_days / 30 * PARQUET_BYTES_PER_EVENT / GB
    puts = 30 * (1 + REWRITES_PER_DAY)
    lists = filtered_views  # one ListObjectsV2 per view finds the archived days
    gets = filtered_views * 30 * GETS_PER_FILE
    requests = (puts + lists) / 1000 * PRICE["s3_per_1k_put_list"]
    requests += gets / 1000 * PRICE["s3_per_1k_get"]
    seconds = n * (1 + REWRITES_PER_DAY) * ARCHIVE_WRITE_SECONDS_PER_EVENT
    gb = shape.compactor_memory_mb / 1024
    return [
        Line("S3 archive storage", f"{stored_gb:,.2f} GB of Parquet ({kept_days} days)", stored_gb * PRICE["s3_standard_per_gb_month"]),
        Line("S3 archive requests", f"{puts + lists:,} PUT/LIST, {gets:,} GET", requests),
        Line("Compactor (Parquet)", f"{seconds:,.0f} s of Lambda", seconds * gb * PRICE["lambda_arm_per_gb_second"]),
    ]  # fmt: skip


def report_emails(sites: int, recipients: int, notifications: int) -> float:
    """E-mails a month: weekly and monthly reports and notifications, to every recipient of
    every site (the worst case: every recipient takes all three)."""
    return sites * recipients * (WEEKLY_REPORTS_PER_MONTH + 1 + notifications)


def report_read_units(sites: int, recipients: int) -> float:
    """Rollup reads of the reports (once per site and report, whoever receives it) and of the
    daily notification check. A site without recipients reads nothing."""
    if not recipients:
        return 0.0
    per_site = WEEKLY_REPORTS_PER_MONTH * rollup_read_units(WEEKLY_REPORT_DAYS)
    per_site += rollup_read_units(MONTHLY_REPORT_DAYS)
    per_site += 30 * rollup_read_units(NOTIFICATION_DAYS)
    return sites * per_site


def operations_lines(shape: Shape, sites: int, recipients: int, notifications: int) -> list[Line]:
    """The fixed lines: the compactor's scheduled runs, alarms and their e-mails, the
    CloudWatch dashboard, report and notification e-mails and their reads."""
    runs = shape.compactor_runs
    gb = shape.compactor_memory_mb / 1024
    run_dollars = runs / 1e6 * PRICE["lambda_per_million_invocations"]
    run_dollars += runs * COMPACTOR_RUN_SECONDS * gb * PRICE["lambda_arm_per_gb_second"]
    alarm_dollars = (
        shape.alarm_metrics * PRICE["cloudwatch_alarm_metric_month"]
        + shape.high_resolution_alarm_metrics
        * PRICE["cloudwatch_high_resolution_alarm_metric_month"]
        + shape.composite_alarms * PRICE["cloudwatch_composite_alarm_month"]
    )
    alarm_mails = ALARM_CHANGES_PER_MONTH * shape.alarm_subscriptions
    sns = ALARM_CHANGES_PER_MONTH / 1e6 * PRICE["sns_per_million_publishes"]
    sns += alarm_mails / 100_000 * PRICE["sns_per_100k_email"]
    mails = report_emails(sites, recipients, notifications)
    reads = report_read_units(sites, recipients)
    metrics = shape.alarm_metrics + shape.high_resolution_alarm_metrics
    return [
        Line("Compactor runs", f"{runs:,.0f} runs (every {shape.compactor_every_minutes:g} min)", run_dollars, True),
        Line("CloudWatch alarms", f"{shape.alarms} alarms, {metrics} metrics", alarm_dollars, True),
        Line("CloudWatch dashboard", f"{shape.dashboards} dashboard(s)", shape.dashboards * PRICE["cloudwatch_dashboard_month"], True),
        Line("SNS (alarm e-mails)", f"{alarm_mails:,} e-mails ({ALARM_CHANGES_PER_MONTH} changes)", sns, True),
        Line("SES (reports, alerts)", f"{mails:,.0f} e-mails, {sites:,} site(s) × {recipients:,}", mails / 1000 * PRICE["ses_per_1k_emails"], True),
        Line("DynamoDB report reads", f"{reads:,.0f} read units", reads / 1e6 * PRICE["dynamodb_per_million_read_units"], True),
    ]  # fmt: skip


def per_million(lines: list[Line], events_per_month: int) -> float:
    """The bill per million events."""
    total = sum(line.dollars for line in lines)
    return total / events_per_month * 1e6 if events_per_month else 0.0


def per_event_lines(lines: list[Line]) -> list[Line]:
    """The lines that grow with the events (what the archive changed); the fixed ones are the
    same in both designs."""
    return [line for line in lines if not line.fixed]


def comparison(
    volumes: tuple[int, ...] = COMPARE_AT, hot_days: int = DEFAULT_HOT_DAYS, **usage: object
) -> list[tuple[int, float, float]]:
    """(events a month, before, after) in dollars per million events of the per-event lines,
    for each volume."""
    return [
        (
            n,
            per_million(per_event_lines(monthly_cost(n, hot_days=None, **usage)), n),  # type: ignore[arg-type]
            per_million(per_event_lines(monthly_cost(n, hot_days=hot_days, **usage)), n),  # type: ignore[arg-type]
        )
        for n in volumes
    ]


def render_comparison(rows: list[tuple[int, float, float]], hot_days: int) -> str:
    header = f"{'events/month':>14} {'before $/M':>11} {'after $/M':>10} {'change':>8}"
    lines = [
        f"Before and after the Parquet archive (raw items kept {hot_days} days, not the retention;"
        " the lines that grow with the events):",
        header,
    ]
    lines += [
        f"{n:>14,} {before:>11.2f} {after:>10.2f} {(after - before) / before:>8.1%}"
        for n, before, after in rows
    ]
    return "\n".join(lines)


def render(lines: list[Line], events_per_month: int) -> str:
    total = sum(line.dollars for line in lines)
    fixed = sum(line.dollars for line in lines if line.fixed)
    rows = [f"{'service':<26} {'usage':<44} {'USD/month':>10}"]
    rows += [f"{line.service:<26} {line.usage:<44} {line.dollars:>10.2f}" for line in lines]
    rows.append(f"{'total':<26} {'':<44} {total:>10.2f}")
    per_event = per_million(per_event_lines(lines), events_per_month)
    rows.append(
        f"= ${per_event:.2f} per million events and ${fixed:.2f} a month whatever the events"
        f" (prices: {PRICES_AS_OF})"
    )
    return "\n".join(rows)
