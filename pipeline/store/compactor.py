"""The compactor: (re)computes the rollup of every closed (site, local day) marked dirty.

The consumer marks each (site, local day) it writes to, in the site's registered time zone;
a day is closed once its local end has passed. The compactor recomputes closed days
from their raw events with the dashboard's own metric code, overwrites the rollup (so running
it twice gives the same record), then removes the marker only if no event re-marked the day
meanwhile (a conditional delete), so a late event is never lost between read and write. On
AWS it is a scheduled Lambda (`pipeline.store.compactor.handler`); locally `python -m
pipeline.local` runs it on the same schedule. The Lambda also refreshes the referrer-spam list
(`pipeline/enrich/spam.py`) and the cloud providers' address ranges
(`pipeline/enrich/datacentres.py`) once a day.

It also keeps the columnar history (`pipeline.store.archive`): one Parquet file per (site, UTC
day), the DynamoDB partition's unit. Compacting a local day archives every UTC day it overlaps
once that UTC day is *settled* (`settles_at`: closed in UTC and the site's local day holding its
last moment closed too); an unsettled one gets a pending marker, and every run archives the
pending days that have settled. Settling waits for the local day so that a late event for an
archived UTC day always marks a closed local day, which the next run recompacts, rewriting the
file (a UTC-only rule would leave a Tokyo or New York file stale until the next local day closed).
A day's file is written before its rollup is recomputed (the rollup reads it) and before any
marker is cleared (a crash leaves the work to the next run). A file is the union of the file
already stored and the day's DynamoDB items (an item wins on the same key): items older than the
hot window have expired, and a late event must not overwrite the day with itself alone.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.config import Settings
from pipeline.enrich import datacentres, spam
from pipeline.enrich.sites import SiteRegistry
from pipeline.errors import PipelineError
from pipeline.stack import settings_from_env
from pipeline.store import archive, rollups
from pipeline.store.query import days_between, query_partition, raw_day
from pipeline.store.storage import (
    DIRTY_PK,
    BatchWriter,
    clear_mark,
    day_bounds,
    dirty_days,
    event_from_item,
    event_pk,
    rollup_items,
)

log = logging.getLogger("pipeline.store.compactor")
SCHEDULE_MINUTES = 15
# The reports start no site this close to the Lambda's timeout: one site without rollups takes
# ~40 s (bench/RESULTS.md, "E-mail reports"), so a site begun before it still ends in time.
REPORTS_MARGIN_SECONDS = 60


@dataclass
class CompactionReport:
    days: list[tuple[str, str]] = field(default_factory=list)
    events_read: int = 0
    items_written: int = 0
    archived: list[tuple[str, str]] = field(default_factory=list)  # (site, UTC day) files written
    archive_bytes: int = 0
    seconds: float = 0.0


def compact_day(
    settings: Settings,
    dynamodb: Any,
    site: str,
    day: date,
    now: datetime,
    tz: str = "UTC",
    stale_days: Iterable[date] | None = None,
    s3: Any = None,
) -> tuple[int, int]:
    """Recompute and store one local day's rollup (join included); (events read, items
    written). `stale_days`: the UTC days whose file is not current (`load_events`'), when
    the caller knows them (then no marker is read)."""
    events, before = raw_day(settings, dynamodb, site, day, tz, True, stale_days, s3)
    parts = rollups.encode(rollups.compute(events, site, day, tz, before))
    items = rollup_items(site, day, parts, int(now.timestamp() * 1000))
    if BatchWriter(dynamodb, settings.events_table).write(items):
        raise RuntimeError(f"rollup of {site} {day} not written")
    return len(events) + len(before if before is not None else ()), len(items)


def clear_marker(dynamodb: Any, table: str, site: str, day: date, marked_at: str) -> None:
    """Clear a rollup marker, unless a late event re-marked the day while we computed (the
    next run recomputes it)."""
    clear_mark(dynamodb, table, DIRTY_PK, site, day, marked_at)


def compact(
    settings: Settings, now: datetime | None = None, dynamodb: Any = None, s3: Any = None
) -> CompactionReport:
    """Roll up every dirty day that has closed (in its site's time zone) by `now`, and archive
    the UTC days they overlap, and the pending ones, that have settled (module docstring)."""
    now = now or datetime.now(UTC)
    dynamodb = dynamodb or aws.client("dynamodb", settings)
    s3 = s3 or aws.client("s3", settings)
    table = settings.events_table
    report, began = CompactionReport(), time.perf_counter()
    with aws.explained(settings, f"Table {table!r}"):
        # Markers are read before any file is written: one re-marked meanwhile stays.
        dirty, pending = dirty_days(dynamodb, table), archive.pending_marks(dynamodb, table)
        zones = site_zones(dynamodb, settings, {m[0] for m in dirty} | {m[0] for m in pending})
        closed = [m for m in dirty if day_bounds(m[1], zones.get(m[0], "UTC"))[1] <= now]
        settled, unsettled = archive_plan(closed, pending, zones, now)
        for site, utc_day in unsettled:
            archive.mark_pending(dynamodb, table, site, utc_day, int(now.timestamp() * 1000))
        # Files first: the rollups below may read them, and a crash leaves every marker set.
        for site, utc_day in settled:
            report.archive_bytes += archive_day(settings, dynamodb, site, utc_day, s3=s3)[1]
            report.archived.append((site, utc_day.isoformat()))
        for site, utc_day, marked_at in pending:
            if (site, utc_day) in settled:
                archive.clear_pending(dynamodb, table, site, utc_day, marked_at)
        # Every other file is current now (rewritten from the file and the items), so the
        # rollups read the files, not a marker: not the items only, which may have expired.
        stale = set(unsettled) | {(s, d) for s, d, _ in pending if (s, d) not in settled}
        for site, day, marked_at in closed:
            days = {d for s, d in stale if s == site}
            tz = zones.get(site, "UTC")
            read, written = compact_day(settings, dynamodb, site, day, now, tz, days, s3)
            clear_marker(dynamodb, table, site, day, marked_at)
            report.days.append((site, day.isoformat()))
            report.events_read += read
            report.items_written += written
    report.seconds = time.perf_counter() - began
    log.info(
        "compacted %d day(s): %d events read, %d items written; archived %d UTC day(s), %d bytes",
        len(report.days),
        report.events_read,
        report.items_written,
        len(report.archived),
        report.archive_bytes,
    )
    return report


# ---- the columnar history (pipeline.store.archive) ----


def settles_at(day: date, tz: str) -> datetime:
    """When UTC `day` may be archived: at its end, or when the site's local day holding its last
    moment ends, if later (then a late event for it can only mark closed local days)."""
    utc_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
    last_local = (utc_end - timedelta(microseconds=1)).astimezone(ZoneInfo(tz)).date()
    return max(utc_end, day_bounds(last_local, tz)[1])


def utc_days_of(day: date, tz: str) -> list[date]:
    """The UTC days (DynamoDB partitions, archive files) that local `day` in `tz` overlaps."""
    return days_between(*day_bounds(day, tz))


def archive_plan(
    closed: list[tuple[str, date, str]],
    pending: list[tuple[str, date, str]],
    zones: dict[str, str],
    now: datetime,
) -> tuple[dict[tuple[str, date], None], dict[tuple[str, date], None]]:
    """(site, UTC day)s to archive now, and those to mark pending, in order without repeats:
    the UTC days of the closed local days, and the pending days, split by `settles_at`."""
    settled: dict[tuple[str, date], None] = {}
    unsettled: dict[tuple[str, date], None] = {}
    wanted = [
        (site, u) for site, day, _ in closed for u in utc_days_of(day, zones.get(site, "UTC"))
    ]
    for site, utc_day in wanted + [(site, day) for site, day, _ in pending]:
        ready = settles_at(utc_day, zones.get(site, "UTC")) <= now
        (settled if ready else unsettled).setdefault((site, utc_day))
    pending_keys = {(site, day) for site, day, _ in pending}
    return settled, {key: None for key in unsettled if key not in pending_keys}


def archive_record(item: dict[str, Any]) -> dict[str, Any]:
    """An event item as an archive record: the stored event plus its request id (from the key)."""
    return {**event_from_item(item), "request_id": item["sk"]["S"].split("#", 1)[1]}


def stored_records(settings: Settings, dynamodb: Any, site: str, day: date) -> list[dict[str, Any]]:
    """Every event item of `site`'s UTC `day` still in DynamoDB, all shards, in key order."""
    start = datetime.combine(day, datetime.min.time(), UTC)
    lo, hi = int(start.timestamp() * 1000), int((start + timedelta(days=1)).timestamp() * 1000)
    items = [
        item
        for shard in range(settings.shards_for(site))
        for item in query_partition(
            dynamodb, settings.events_table, event_pk(site, day, shard), lo, hi
        )
    ]
    return [archive_record(item) for item in sorted(items, key=lambda item: item["sk"]["S"])]


def record_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row of an archive file back as the record it was written from (ts in epoch ms, props
    as an object)."""
    record = dict(row)
    ts = record["ts"]
    record["ts"] = int(ts.timestamp() * 1000) if isinstance(ts, datetime) else int(ts)
    props = record.get("props")
    record["props"] = json.loads(props) if isinstance(props, str) and props else {}
    return record


def archived_records(settings: Settings, s3: Any, site: str, day: date) -> list[dict[str, Any]]:
    """The records of the day's stored file: [] when there is none, or when it cannot be read
    (logged; the day is then rewritten from its DynamoDB items)."""
    try:
        body = s3.get_object(Bucket=settings.archive_bucket, Key=archive.object_key(site, day))
        table = pq.read_table(io.BytesIO(body["Body"].read()))
    except ClientError as exc:
        # No bucket: nothing to merge, and `archive.write_day` says what to set.
        if aws.error_code(exc) not in ("NoSuchKey", "404", "NoSuchBucket"):
            raise
        return []
    except (pa.ArrowException, OSError, ValueError) as exc:
        log.warning("archive of %s on %s unreadable, rewritten from DynamoDB: %s", site, day, exc)
        return []
    return [record_from_row(row) for row in table.to_pylist()]


def day_records(
    settings: Settings, dynamodb: Any, s3: Any, site: str, day: date
) -> list[dict[str, Any]]:
    """The UTC day's events: its stored file's, overwritten by its DynamoDB items on the same
    key (time, request id), in key order. The union keeps the events whose items have left
    the hot window."""
    merged = {(r["ts"], r["request_id"]): r for r in archived_records(settings, s3, site, day)}
    merged.update(
        {(r["ts"], r["request_id"]): r for r in stored_records(settings, dynamodb, site, day)}
    )
    return [merged[key] for key in sorted(merged)]


def archive_day(
    settings: Settings, dynamodb: Any, site: str, day: date, s3: Any = None
) -> tuple[int, int]:
    """(Re)write the archive file of `site`'s UTC `day`; (events, bytes) written (no events:
    no file)."""
    s3 = s3 or aws.client("s3", settings)
    records = day_records(settings, dynamodb, s3, site, day)
    return len(records), archive.write_day(settings, site, day, records, s3=s3)


@dataclass
class BackfillDay:
    day: date
    events: int
    bytes: int
    pending: bool  # not settled yet: marked, so the compactor rewrites it once it is


def backfill(
    settings: Settings,
    site: str,
    since: date,
    until: date | None = None,
    now: datetime | None = None,
    dynamodb: Any = None,
    s3: Any = None,
) -> list[BackfillDay]:
    """Write the archive file of every UTC day of `site` from `since` to `until` (inclusive,
    at most yesterday, UTC: today is still being written) from its DynamoDB items, merged with
    the file already there; the days that have events. A day that has not settled yet
    (`settles_at`) is also marked pending, so readers keep to its items until the compactor
    rewrites it."""
    now = now or datetime.now(UTC)
    last = now.date() - timedelta(days=1)
    until = min(until or last, last)
    dynamodb = dynamodb or aws.client("dynamodb", settings)
    s3 = s3 or aws.client("s3", settings)
    tz = site_zones(dynamodb, settings, {site}).get(site, "UTC")
    written = []
    with aws.explained(settings, f"Table {settings.events_table!r}"):
        for day in (since + timedelta(days=n) for n in range((until - since).days + 1)):
            events, size = archive_day(settings, dynamodb, site, day, s3=s3)
            unsettled = settles_at(day, tz) > now
            if unsettled:
                marked_at = int(now.timestamp() * 1000)
                archive.mark_pending(dynamodb, settings.events_table, site, day, marked_at)
            if events:
                written.append(BackfillDay(day, events, size, unsettled))
    return written


def site_zones(dynamodb: Any, settings: Settings, sites: set[str]) -> dict[str, str]:
    """Each site's registered time zone (UTC for a site no longer registered)."""
    if not sites:
        return {}
    with aws.explained(settings, f"Table {settings.sites_table!r}"):
        found = SiteRegistry(dynamodb, settings.sites_table).lookup(sites)
    return {site: entry.timezone if entry else "UTC" for site, entry in found.items()}


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The scheduled Lambda (EventBridge, every 15 minutes)."""
    logging.getLogger().setLevel(logging.INFO)
    settings = settings_from_env()
    report = compact(settings)
    result = {
        "days": len(report.days),
        "events_read": report.events_read,
        "items_written": report.items_written,
        "archived": len(report.archived),
        "spam_list_refreshed": refresh_spam_list(settings),
        "datacentre_ranges_refreshed": refresh_datacentre_ranges(settings),
    }
    return {**result, **send_reports(settings, reports_deadline(context))}


def reports_deadline(context: Any) -> float | None:
    """When (a `time.monotonic()` value) the reports must stop starting sites so the run ends
    before the Lambda's timeout; None outside Lambda (no context to ask)."""
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        return None
    return time.monotonic() + remaining_ms() / 1000 - REPORTS_MARGIN_SECONDS


def send_reports(settings: Settings, deadline: float | None = None) -> dict[str, Any]:
    """The e-mail reports and notifications due (`pipeline.ops.reports.run_due`, which never
    raises), after compaction so they read the fresh rollups. Imported here: a package built
    without the reports' modules still compacts, and says why nothing was sent."""
    try:
        from pipeline.ops import reports
    except ImportError as exc:
        log.warning("reports not sent: %s", exc)
        return {"reports_note": f"reports not sent: {exc}"}
    return reports.run_due(settings, deadline=deadline)


def refresh_spam_list(settings: Settings) -> bool:
    """Keep the referrer-spam list at most a day old; a failed fetch only logs (the list
    stored before stays in force)."""
    try:
        return spam.refresh_if_stale(settings) is not None
    except (PipelineError, ClientError, BotoCoreError) as exc:
        log.warning("referrer-spam list not refreshed: %s", exc)
        return False


def refresh_datacentre_ranges(settings: Settings, sources: tuple[str, ...] | None = None) -> bool:
    """Keep the data-centre ranges at most a day old; a failed fetch only logs (the ranges
    stored before stay in force)."""
    sources = datacentres.sources_for(settings) if sources is None else sources
    try:
        return datacentres.refresh_if_stale(settings, sources) is not None
    except (PipelineError, ClientError, BotoCoreError) as exc:
        log.warning("data-centre ranges not refreshed: %s", exc)
        return False
