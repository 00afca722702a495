"""The analyst API: stored events of a site and time range as a pandas DataFrame."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from pipeline import aws
from pipeline.config import Settings
from pipeline.errors import RollupsIncomplete
from pipeline.stack import settings_from_env
from pipeline.store import rollups
from pipeline.store.storage import (
    ROLLUP_PREFIX,
    day_bounds,
    dirty_days,
    drop_pk,
    event_from_item,
    event_pk,
)

MAX_PARALLEL_QUERIES = 16

COLUMNS = (
    "ts",
    "site",
    "name",
    "hostname",
    "path",
    "url",
    "referrer_source",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "country",
    "region",
    "city",
    "lat",
    "lon",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "screen",
    "screen_width",
    "visitor",
    "props",
    # Issue 14. Items stored before it have none of these: "" and NaN.
    "prev_visitor",  # hash under the previous UTC day's salt, first 31 minutes of a day only
    "engagement_ms",  # engagement events only
    "scroll_depth",  # engagement events only, 0..100
)
# Few distinct values, many rows: categoricals cut the frame's memory several times over.
CATEGORICAL = (
    "site",
    "name",
    "hostname",
    "referrer_source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "country",
    "region",
    "city",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "screen",
)
_NUMERIC = ("lat", "lon", "screen_width", "engagement_ms", "scroll_depth")
# Text columns, "" when absent, in pandas' string dtype (what `visitor` is read as), so the
# two hashes compare and join without conversion. `prev_visitor` is "" on all but the hits of
# a day's first 31 minutes: Arrow-backed strings store that as an offset, ~8 bytes a row (an
# object column of "" costs ~50 by pandas' deep count, a categorical would need its categories
# aligned with `visitor`'s mostly distinct hashes, what categoricals are worst at).
_TEXT = ("prev_visitor",)

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
    """Stored records as the documented frame: fixed columns, UTC `ts`, categoricals."""
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"].astype("int64"), unit="ms", utc=True)
    for column in _NUMERIC:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    for column in CATEGORICAL:
        frame[column] = frame[column].astype(object).fillna("").astype("str").astype("category")
    for column in _TEXT:
        frame[column] = frame[column].astype(object).fillna("").astype("str")
    frame["props"] = frame["props"].map(lambda p: p if isinstance(p, dict) else {})
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def load_events(
    site: str,
    start: TimeLike,
    end: TimeLike,
    *,
    settings: Settings | None = None,
    dynamodb: Any = None,
    page_limit: int | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """Events of `site` with `start <= ts < end`, one row each, oldest first.

    `start`/`end` are dates, datetimes or ISO strings (naive means UTC). Connection settings
    come from the environment (see `pipeline.config`); `settings` or keyword overrides
    (`endpoint_url=`, `events_table=`, ...) win. Every day is one Query, run in parallel.
    """
    settings = settings or settings_from_env(**overrides)
    lo, hi = to_utc(start), to_utc(end)
    shards = range(settings.shards_for(site))
    pks = [event_pk(site, day, shard) for day in days_between(lo, hi) for shard in shards]
    records = [
        event_from_item(item) for item in _query_days(settings, pks, lo, hi, dynamodb, page_limit)
    ]
    return events_frame(records)


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
    settings: Settings, dynamodb: Any, site: str, day: date, tz: str, with_before: bool
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A local day's raw events and, for its join, the previous day's events that may share a
    person or a visit with it (`rollups.read_before`)."""
    start, end = day_bounds(day, tz)

    def read(lo: datetime, hi: datetime) -> pd.DataFrame:
        return load_events(site, lo, hi, settings=settings, dynamodb=dynamodb)

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
