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
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.config import Settings
from pipeline.enrich import datacentres, spam
from pipeline.enrich.sites import SiteRegistry
from pipeline.errors import PipelineError
from pipeline.stack import settings_from_env
from pipeline.store import rollups
from pipeline.store.query import raw_day
from pipeline.store.storage import DIRTY_PK, BatchWriter, day_bounds, dirty_days, rollup_items

log = logging.getLogger("pipeline.store.compactor")
SCHEDULE_MINUTES = 15


@dataclass
class CompactionReport:
    days: list[tuple[str, str]] = field(default_factory=list)
    events_read: int = 0
    items_written: int = 0
    seconds: float = 0.0


def compact_day(
    settings: Settings, dynamodb: Any, site: str, day: date, now: datetime, tz: str = "UTC"
) -> tuple[int, int]:
    """Recompute and store one local day's rollup (join included); (events read, items
    written)."""
    events, before = raw_day(settings, dynamodb, site, day, tz, with_before=True)
    parts = rollups.encode(rollups.compute(events, site, day, tz, before))
    items = rollup_items(site, day, parts, int(now.timestamp() * 1000))
    if BatchWriter(dynamodb, settings.events_table).write(items):
        raise RuntimeError(f"rollup of {site} {day} not written")
    return len(events) + len(before if before is not None else ()), len(items)


def clear_marker(dynamodb: Any, table: str, site: str, day: date, marked_at: str) -> None:
    try:
        dynamodb.delete_item(
            TableName=table,
            Key={"pk": {"S": DIRTY_PK}, "sk": {"S": f"{site}#{day.isoformat()}"}},
            ConditionExpression="marked_at = :m",
            ExpressionAttributeValues={":m": {"N": marked_at}},
        )
    except ClientError as exc:
        if aws.error_code(exc) != "ConditionalCheckFailedException":
            raise
        # Re-marked by a late event while we computed: the next run recomputes it.


def compact(
    settings: Settings, now: datetime | None = None, dynamodb: Any = None
) -> CompactionReport:
    """Roll up every dirty day that has closed (in its site's time zone) by `now`."""
    now = now or datetime.now(UTC)
    dynamodb = dynamodb or aws.client("dynamodb", settings)
    report, began = CompactionReport(), time.perf_counter()
    with aws.explained(settings, f"Table {settings.events_table!r}"):
        dirty = dirty_days(dynamodb, settings.events_table)
        zones = site_zones(dynamodb, settings, {site for site, _, _ in dirty})
        for site, day, marked_at in dirty:
            tz = zones.get(site, "UTC")
            if day_bounds(day, tz)[1] > now:
                continue  # still open: it is read raw until it closes
            read, written = compact_day(settings, dynamodb, site, day, now, tz)
            clear_marker(dynamodb, settings.events_table, site, day, marked_at)
            report.days.append((site, day.isoformat()))
            report.events_read += read
            report.items_written += written
    report.seconds = time.perf_counter() - began
    log.info(
        "compacted %d day(s): %d events read, %d items written",
        len(report.days),
        report.events_read,
        report.items_written,
    )
    return report


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
    return {
        "days": len(report.days),
        "events_read": report.events_read,
        "items_written": report.items_written,
        "spam_list_refreshed": refresh_spam_list(settings),
        "datacentre_ranges_refreshed": refresh_datacentre_ranges(settings),
    }


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
