"""The analyst API: stored events of a site and time range as a pandas DataFrame."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import aws
from pipeline.config import Settings
from pipeline.enrich.sites import SiteRegistry
from pipeline.errors import RollupsIncomplete
from pipeline.stack import settings_from_env
from pipeline.stats import metrics
from pipeline.store import archive, narrow, rollups
from pipeline.store.storage import (
    ROLLUP_PREFIX,
    day_bounds,
    dirty_days,
    drop_pk,
    event_from_item,
    event_pk,
)

MAX_PARALLEL_QUERIES = 16

# The frame's shape lives with the archive's schema (pipeline/store/archive.py), which both
# paths of `load_events` share; these names stay importable from here.
COLUMNS = archive.COLUMNS
CATEGORICAL = archive.CATEGORICAL

log = logging.getLogger("pipeline.store.query")

TimeLike = date | datetime | str | pd.Timestamp


def to_utc(value: TimeLike) -> datetime:
    """A date (midnight UTC), a datetime (naive means UTC) or an ISO string, as aware UTC."""
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def days_between(start: datetime, end: datetime) -> list[date]:
    """The UTC days that [start, end) touches."""
    if end <= start:
        return []
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def query_partition(
    dynamodb: Any, table: str, pk: str, start_ms: int, end_ms: int, page_limit: int | None = None
) -> list[dict[str, Any]]:
    """Every item of one partition with `start_ms <= time < end_ms`, following every page."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
        "ExpressionAttributeValues": {
            ":pk": {"S": pk},
            ":lo": {"S": f"{start_ms:013d}"},
            ":hi": {"S": f"{end_ms - 1:013d}#~"},  # "~" sorts after every request-id character
        },
    }
    if page_limit:
        kwargs["Limit"] = page_limit
    items: list[dict[str, Any]] = []
    while True:
        page = dynamodb.query(**kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _query_days(
    settings: Settings,
    pks: list[str],
    start: datetime,
    end: datetime,
    dynamodb: Any,
    page_limit: int | None,
) -> list[dict[str, Any]]:
    dynamodb = dynamodb or aws.client("dynamodb", settings)
    lo, hi = _ms(start), _ms(end)
    workers = min(MAX_PARALLEL_QUERIES, max(len(pks), 1))
    with (
        aws.explained(settings, f"Table {settings.events_table!r}"),
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        pages = pool.map(
            lambda pk: query_partition(dynamodb, settings.events_table, pk, lo, hi, page_limit),
            pks,
        )
        return [item for page in pages for item in page]


def events_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Stored records as the documented frame: fixed columns, UTC `ts`, categoricals, sorted
    by time (ties by request id when the records have one, else in their order)."""
    return archive.frame_from_table(archive.records_table(records))


def day_sources(
    days: list[date], today: date, archived: set[date], pending: set[date]
) -> tuple[list[date], list[date]]:
    """(days read from the archive, days read from DynamoDB): a day comes from its file only
    when it has one, has closed (UTC) and no late event waits to be archived."""
    from_archive = [d for d in days if d in archived and d < today and d not in pending]
    return from_archive, [d for d in days if d not in set(from_archive)]


def stale_utc_days(dirty: set[date], tz: str) -> set[date]:
    """The UTC days that dirty local days (in zone `tz`) overlap."""
    found: set[date] = set()
    for day in dirty:
        try:
            found.update(days_between(*day_bounds(day, tz)))
        except (ZoneInfoNotFoundError, ValueError):  # no tz database: any day it can touch
            found |= {day - timedelta(days=1), day, day + timedelta(days=1)}
    return found


def _archive_plan(
    settings: Settings,
    dynamodb: Any,
    site: str,
    days: list[date],
    today: date,
    s3: Any = None,
    stale_days: Iterable[date] | None = None,
) -> tuple[list[date], list[date]]:
    closed = [d for d in days if d < today]
    if not closed:
        return [], days  # nothing can be archived yet: no S3 request at all
    with aws.explained(settings, f"Bucket {settings.archive_bucket!r}"):
        archived = archive.archived_days(settings, site, closed[0], closed[-1], s3=s3)
    if not archived:
        return [], days  # no file in the range: no marker can change where a day comes from
    if stale_days is not None:
        return day_sources(days, today, archived, set(stale_days))
    with aws.explained(settings, f"Table {settings.events_table!r}"):
        pending = archive.pending_days(dynamodb, settings.events_table, site)
        # A late event marks its local day dirty at once; its UTC day's file is rewritten
        # only when the compactor runs. Until then the UTC days that local day overlaps are
        # read from DynamoDB, the compactor's own rollup reads included.
        near = (closed[0] - timedelta(days=1), closed[-1] + timedelta(days=1))
        dirty = {
            day
            for _, day, _ in dirty_days(dynamodb, settings.events_table, site)
            if near[0] <= day <= near[1]
        }
    if dirty:
        with aws.explained(settings, f"Table {settings.sites_table!r}"):
            entry = SiteRegistry(dynamodb, settings.sites_table).lookup({site}).get(site)
        pending |= stale_utc_days(dirty, entry.timezone if entry else "UTC")
    return day_sources(days, today, archived, pending)


def load_events(
    site: str,
    start: TimeLike,
    end: TimeLike,
    *,
    settings: Settings | None = None,
    dynamodb: Any = None,
    s3: Any = None,
    columns: Sequence[str] | None = None,
    filters: Mapping[str, Any] | None = None,
    people_matching: metrics.FilterLike = None,
    page_limit: int | None = None,
    now: TimeLike | None = None,
    stale_days: Iterable[date] | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """Events of `site` with `start <= ts < end`, one row each, oldest first.

    `start`/`end` are dates, datetimes or ISO strings (naive means UTC). Connection settings
    come from the environment (see `pipeline.config`); `settings` or keyword overrides
    (`endpoint_url=`, `events_table=`, ...) win. `columns` keeps only those columns (in
    COLUMNS' order); `filters` keeps the rows whose column equals a value (`{"path": "/"}`)
    or one of a list of values. `people_matching` (dashboard filters, as `metrics.select`
    takes them) keeps only the events of the people who could pass them: `metrics.select`
    of the result with those filters equals its select of every event, from far fewer rows
    (pipeline/store/narrow.py says why).

    Each UTC day comes from exactly one source: its Parquet file when it is archived, closed
    and not pending (only the columns asked for are read, the filters pushed into the scan);
    else DynamoDB (one Query a day and shard, in parallel). A file that cannot be read is
    logged and its day read from DynamoDB, where its items still are while it is hot; a
    closed day older than that is then reported missing in the log. `stale_days` (UTC) are
    read from DynamoDB whatever the markers say, and no marker is read: the compactor's
    reads, made after it rewrote every other day's file from the file and the items.
    """
    settings = settings or settings_from_env(**overrides)
    archive.wanted_columns([*(columns or ()), *(filters or {})])  # unknown names: ValueError
    lo, hi = to_utc(start), to_utc(end)
    dynamodb = dynamodb or aws.client("dynamodb", settings)
    today = to_utc(now if now is not None else datetime.now(UTC)).date()
    days = days_between(lo, hi)
    # One S3 client for the listing and the reads (making one costs ~0.1 s), only when a
    # closed day may have a file.
    if s3 is None and days and days[0] < today:
        s3 = aws.client("s3", settings)
    plan = _archive_plan(settings, dynamodb, site, days, today, s3, stale_days)
    narrowing = narrow.columns_for(people_matching)
    # Narrowed, the files are read in two passes: the few columns that find the people, then
    # the other columns, keeping only those people's rows as each day arrives.
    first_read = ["ts", *narrowing] if narrowing else columns
    fs = archive.filesystem(settings, s3) if plan[0] else None
    tables = archive.read_tables(
        settings, site, plan[0], lo, hi, first_read, filters=filters, fs=fs
    )
    readable = [day for day, table in zip(plan[0], tables, strict=True) if table is not None]
    tables = [table for table in tables if table is not None]
    unreadable = sorted(set(plan[0]) - set(readable))
    _log_missing(site, unreadable, today - timedelta(days=settings.hot_days))
    items = _hot_items(settings, dynamodb, site, sorted(plan[1] + unreadable), lo, hi, page_limit)
    records = [event_from_item(item) for item in items]
    if narrowing:
        hot = archive.records_for_read(records, lo, hi, first_read, filters)
        light = pa.concat_tables([t.select(hot.column_names) for t in [hot, *tables]])
        mask = narrow.people_mask(light, people_matching)
        rest = archive.read_rest(
            settings, site, readable, tables, _split(mask, [len(hot), *map(len, tables)])[1:],
            lo, hi, columns, filters=filters, fs=fs,
        )  # fmt: skip
        # From here on the filters name the people too (the hot rows, a changed file).
        people = pc.unique(light["visitor"].filter(mask)).to_pylist()
        filters = {**(filters or {}), "visitor": people}
        changed = [day for day, table in zip(readable, rest, strict=True) if table is None]
        again = archive.read_tables(
            settings, site, changed, lo, hi, columns, filters=filters, fs=fs
        )
        tables = [t for t in [*rest, *again] if t is not None]
    hot = archive.records_for_read(records, lo, hi, columns, filters)
    return archive.frame_from_table(archive.concat([hot, *tables], columns), columns)


def _split(mask: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """`mask` cut into consecutive parts of `sizes`."""
    return np.split(mask, np.cumsum(sizes)[:-1])


def _log_missing(site: str, days: Sequence[date], hot_since: date) -> None:
    for day in days:
        if day < hot_since:
            log.warning("events of %s on %s are missing: archive file unreadable", site, day)


def _hot_items(
    settings: Settings,
    dynamodb: Any,
    site: str,
    days: list[date],
    lo: datetime,
    hi: datetime,
    page_limit: int | None,
) -> list[dict[str, Any]]:
    shards = range(settings.shards_for(site))
    pks = [event_pk(site, day, shard) for day in days for shard in shards]
    return _query_days(settings, pks, lo, hi, dynamodb, page_limit) if pks else []


def load_drops(
    site: str, start: TimeLike, end: TimeLike, *, settings: Settings | None = None, **overrides: Any
) -> pd.Series:
    """How many hits of `site` were dropped in [start, end), by reason (bots, ...)."""
    settings = settings or settings_from_env(**overrides)
    lo, hi = to_utc(start), to_utc(end)
    pks = [drop_pk(site, day) for day in days_between(lo, hi)]
    reasons = [item["reason"]["S"] for item in _query_days(settings, pks, lo, hi, None, None)]
    return pd.Series(reasons, dtype="object").value_counts().rename("dropped")


def _stored_rollups(
    dynamodb: Any, table: str, site: str, first: date, last: date
) -> dict[date, dict[str, Any]]:
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
        "ExpressionAttributeValues": {
            ":pk": {"S": f"{ROLLUP_PREFIX}{site}"},
            ":lo": {"S": first.isoformat()},
            ":hi": {"S": f"{last.isoformat()}#~"},
        },
    }
    parts: dict[date, dict[int, dict[str, Any]]] = {}
    while True:
        page = dynamodb.query(**kwargs)
        for item in page.get("Items", []):
            day, index = item["sk"]["S"].split("#")
            parts.setdefault(date.fromisoformat(day), {})[int(index)] = item
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    found = {}
    for day, items in parts.items():
        count = int(items[0]["parts"]["N"]) if 0 in items else 0
        if count and all(i in items for i in range(count)):
            found[day] = rollups.decode(items[i]["b"]["B"] for i in range(count))
    return found


def raw_day(
    settings: Settings,
    dynamodb: Any,
    site: str,
    day: date,
    tz: str,
    with_before: bool,
    stale_days: Iterable[date] | None = None,
    s3: Any = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A local day's raw events and, for its join, the previous day's events that may share a
    person or a visit with it (`rollups.read_before`); `stale_days` as `load_events`'."""
    start, end = day_bounds(day, tz)

    def read(lo: datetime, hi: datetime) -> pd.DataFrame:
        return load_events(
            site, lo, hi, settings=settings, dynamodb=dynamodb, s3=s3, stale_days=stale_days
        )

    events = read(start, end)
    return events, rollups.read_before(read, events, day, tz) if with_before else None


def load_rollups(
    site: str,
    first: date,
    last: date,
    *,
    tz: str = "UTC",
    settings: Settings | None = None,
    now: datetime | None = None,
    dynamodb: Any = None,
    compute_missing: bool = True,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """One rollup per local day (in zone `tz`, the site's) from `first` to `last` (inclusive),
    oldest first.

    Closed days come from their stored rollup: one Query for the whole range, whatever the
    traffic. The open day, and any closed day whose rollup is missing, stale (a late event
    marked it) or of another zone or version, are computed from raw events on the fly, so the
    numbers are always current; with `compute_missing=False` such a closed day raises
    `RollupsIncomplete` instead (a caller with a faster raw path of its own can take that).
    A closed day with neither a rollup nor a marker never had an event written (the consumer
    marks every day it writes), unless records of another zone or version lie around (the
    site's zone changed): then it counts as missing too. Days after today are empty.
    """
    settings = settings or settings_from_env(**overrides)
    dynamodb = dynamodb or aws.client("dynamodb", settings)
    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(tz)).date()
    with aws.explained(settings, f"Table {settings.events_table!r}"):
        stored = _stored_rollups(
            dynamodb,
            settings.events_table,
            site,
            first - timedelta(days=1),
            last + timedelta(days=1),
        )
        stale = {day for _, day, _ in dirty_days(dynamodb, settings.events_table, site)}
    foreign = any(not rollups.current(record, tz) for record in stored.values())
    found = []
    for day in (first + timedelta(days=n) for n in range((last - first).days + 1)):
        record = stored.get(day)
        closed_and_clean = day < today and day not in stale
        if closed_and_clean and record is not None and rollups.current(record, tz):
            found.append(record)
            continue
        if day > today or (closed_and_clean and record is None and not foreign):
            # Never marked, so nothing was ever written for it: an empty day, no read needed.
            found.append(rollups.empty(site, day, tz))
            continue
        if day < today and not compute_missing:
            raise RollupsIncomplete(f"no up-to-date rollup for {site} on {day} ({tz}) yet")
        events, before = raw_day(settings, dynamodb, site, day, tz, with_before=day > first)
        found.append(rollups.compute(events, site, day, tz, before))
    return found
