"""Daily rollups: what the dashboard needs for one site and one closed local day, in one record.

A rollup covers one day of the site's own time zone (its registered `timezone`; UTC by
default): [local midnight, next local midnight), 23 or 25 hours on a daylight-saving change.
It is computed from the day's raw events by the same metric code the dashboard uses
(`pipeline.stats.metrics`), so the two paths agree number for number, for any range of whole
local days, any chart interval and the comparison period (tests/store/test_rollups_zones.py).

Why a record also carries a `join`: the visitor hash's salt rotates at UTC midnight, so in a
zone other than UTC one hash can be seen on both sides of local midnight (it lives inside one
UTC day, which two local days share). Over a range holding both days the raw path counts that
person once and a visit crossing local midnight once; the day's `join` is exactly that
correction (the numbers of the shared hashes' events taken together, minus the same taken per
day), applied when the previous local day is in the same range. A hash never spans more than
two local days, so pairwise corrections are exact. In UTC the join is always empty.

Record (JSON, zlib-compressed, stored under `pk = "rollup#{site}"`, `sk = "{day}#{part}"`):

- `v`, `site`, `day` (local, ISO), `tz` (the zone it was computed in), `events`
- `summary`: visitors, visits, pageviews, bounces, duration (sum of visit durations, seconds)
- `hours["YYYY-MM-DDTHH:MM"]` (the local hour's start in UTC, so DST days and half-hour zones
  stay right): [visitors, visits, pageviews] (visits by the hour they start)
- `dims[dimension][value]`: [visitors, visits, pageviews, bounces, duration] for every visit
  dimension and entry/exit page (a visit counts for its first event's value);
  `browser_version`/`os_version` hold "Chrome 120"-style values (name and version)
- `pages[path]`: [visitors, pageviews, entries, entry bounces, entry duration]
- `names[name]`: [visitors, events]
- `cities["{city}|{lat}|{lon}"]`: visitors (for the map)
- `join`: the same measures (`summary`, `hours`, `dims`, `pages`, `names`, `cities`) as
  differences, see above

A record of another `v` or `tz` counts as missing: changing a site's zone falls back to raw
events until its days are recomputed, never to numbers of the wrong days.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipeline.stats import metrics
from pipeline.store.storage import JOIN_LOOKBACK, day_bounds

ROLLUP_VERSION = 3  # 2: site-local days, hour keys, joins; 3: Plausible's page measures
PART_BYTES = 350_000  # DynamoDB items stop at 400 KB
ROLLUP_DIMENSIONS = (*metrics.VISIT_DIMENSIONS, "entry_page", "exit_page")
# Shown as "Chrome 120": the version alone means nothing without its browser or OS.
VERSIONED = {"browser_version": "browser", "os_version": "os"}
INTERVALS = ("hour", "day", "week", "month")
SERIES_COLUMNS = ["bucket", "visitors", "visits", "pageviews", "partial"]
_TINY = 1e-9  # float sums of durations: a difference this small is zero


def with_versions(events: pd.DataFrame) -> pd.DataFrame:
    """`browser_version`/`os_version` as "Chrome 120" (name and version), as the pages show."""
    if not all(c in events for c in (*VERSIONED, *VERSIONED.values())):
        return events
    combined = {
        column: (events[name].astype(str) + " " + events[column].astype(str)).str.strip()
        for column, name in VERSIONED.items()
    }
    return events.assign(**combined)


# What a record keeps of each breakdown row: the additive measures (`metrics.TOTALS`) that
# kind of dimension needs; `breakdown` adds the days up and lets `metrics.finish` divide.
VISIT_TOTALS = ["visitors", "visits", "pageviews", "bounces", "duration"]
KEPT_TOTALS = {
    "path": [
        "visitors", "visits", "pageviews", "bounces", "bounce_base", "duration",
        "duration_base", "engaged_ms", "engaged_pairs", "depth_sum", "depth_pairs",
        "legacy_seconds", "legacy_moves",
    ],
    "name": ["visitors", "visits", "events"],
}  # fmt: skip


def kept_totals(dimension: str) -> list[str]:
    return KEPT_TOTALS.get(dimension, VISIT_TOTALS)


def _rows(totals: pd.DataFrame, dimension: str) -> dict[str, list[float]]:
    """Breakdown totals as record rows: counts as ints, sums as floats."""
    columns = kept_totals(dimension)
    whole = [c not in ("duration", "engaged_ms", "depth_sum", "legacy_seconds") for c in columns]
    values = totals.to_numpy()[:, [metrics.TOTAL_AT[c] for c in columns]].tolist()
    return {
        str(value): [round(v) if w else v for v, w in zip(row, whole, strict=True)]
        for value, row in zip(totals.index, values, strict=True)
    }


def hour_key(bucket: pd.Timestamp) -> str:
    """An hour bucket's key: its start in UTC (unambiguous on DST days)."""
    return pd.Timestamp(bucket).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M")


def _measures(events: pd.DataFrame, tz: str) -> dict[str, Any]:
    """Every measure of a record, for `events` (with combined versions) in zone `tz`."""
    selection = metrics.select(events)  # the visits, computed once for every measure
    table = selection.visits
    summary = metrics.summary(selection)
    hours: dict[str, list[int]] = {}
    if len(events):
        hourly = metrics.timeseries(selection, "hour", tz)
        for bucket, visitors, visits, pageviews in hourly.itertuples(index=False):
            if visitors or visits or pageviews:
                hours[hour_key(bucket)] = [int(visitors), int(visits), int(pageviews)]
    pages = _rows(metrics.breakdown_totals(selection, "path"), "path")
    names = _rows(metrics.breakdown_totals(selection, "name"), "name")
    located = events.dropna(subset=["lat", "lon"])
    cities = {}
    if len(located):
        grouped = located.groupby(["city", "lat", "lon"], observed=True)["visitor"].nunique()
        cities = {f"{city}|{lat!r}|{lon!r}": int(v) for (city, lat, lon), v in grouped.items()}
    return {
        "summary": {
            "visitors": summary.visitors,
            "visits": summary.visits,
            "pageviews": summary.pageviews,
            "bounces": int(table["bounce"].sum()) if len(table) else 0,
            "duration": float(table["duration"].sum()) if len(table) else 0.0,
        },
        "hours": hours,
        "dims": {
            d: _rows(metrics.breakdown_totals(selection, d), d)
            for d in ROLLUP_DIMENSIONS
            if d in table
        }
        if len(table)
        else {},
        "pages": pages,
        "names": names,
        "cities": cities,
    }


def _zero_like(value: Any) -> Any:
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return [0] * len(value)
    return 0


def _combine(a: Any, b: Any, sign: int = 1) -> Any:
    """a + sign·b over nested dicts, lists and numbers (a missing key counts as zero)."""
    if a is None:
        a = _zero_like(b)
    if b is None:
        return a
    if isinstance(b, dict):
        return {k: _combine(a.get(k), b.get(k), sign) for k in a.keys() | b.keys()}
    if isinstance(b, list):
        return [_combine(x, y, sign) for x, y in zip(a, b, strict=True)]
    return a + sign * b


def _nonzero(value: Any) -> bool:
    if isinstance(value, list):
        return any(abs(v) > _TINY for v in value)
    return abs(value) > _TINY


def _prune(measures: dict[str, Any]) -> dict[str, Any]:
    """Drop the rows of a difference that are zero (most of them: the join is small)."""
    pruned = {"summary": measures["summary"]}
    for key in ("hours", "pages", "names", "cities"):
        pruned[key] = {k: v for k, v in measures[key].items() if _nonzero(v)}
    dims = {
        d: {k: v for k, v in rows.items() if _nonzero(v)} for d, rows in measures["dims"].items()
    }
    pruned["dims"] = {d: rows for d, rows in dims.items() if rows}
    return pruned


def shared_people(before: pd.DataFrame, events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row masks of `before` and `events` for the people seen on both sides of the day's
    start: one hash on both sides (a local midnight inside a UTC day), or a hash that continues
    the previous UTC day's through its `prev_visitor` (a visit across the salt change)."""
    if before.empty or events.empty:
        return np.zeros(len(before), dtype=bool), np.zeros(len(events), dtype=bool)
    people = metrics.people(pd.concat([before, events], ignore_index=True))
    left, right = people[: len(before)], people[len(before) :]
    shared = np.intersect1d(left, right)
    return np.isin(left, shared), np.isin(right, shared)


def reaches_back(before: pd.DataFrame, events: pd.DataFrame, lo: datetime) -> bool:
    """Whether a visit shared across the day's start may begin before `lo` (the start of what
    was read of the previous day): then the join needs an earlier read."""
    mine, _ = shared_people(before, events)
    if not mine.any():
        return False
    return bool((before.loc[mine, "ts"] < pd.Timestamp(lo) + metrics.VISIT_GAP).any())


# How much of the previous day a join reads at most (it starts at JOIN_LOOKBACK and doubles
# while a visit across the day's start may begin earlier).
MAX_LOOKBACK = timedelta(days=3)


def join_window(day: date, tz: str) -> datetime:
    """Where the read of a day's join starts: the UTC midnight before the local day's start (a
    hash seen across local midnight lives from there) and at least JOIN_LOOKBACK before the start
    (a visit continuing across the salt change)."""
    start, _ = day_bounds(day, tz)
    return min(datetime.combine(start.date(), time.min, UTC), start - JOIN_LOOKBACK)


def read_before(
    read: Callable[[datetime, datetime], pd.DataFrame],
    events: pd.DataFrame,
    day: date,
    tz: str,
) -> pd.DataFrame:
    """The previous day's events a join needs, via `read(lo, hi)`: from `join_window`, and
    earlier while a shared visit may begin before what was read."""
    start, _ = day_bounds(day, tz)
    lo = join_window(day, tz)
    before = read(lo, start)
    while reaches_back(before, events, lo) and start - lo < MAX_LOOKBACK:
        earlier = lo - (start - lo)
        before = pd.concat([read(earlier, lo), before], ignore_index=True)
        lo = earlier
    return before


def _join(before: pd.DataFrame, events: pd.DataFrame, tz: str) -> dict:
    """The correction for the people seen on both sides of this day's start: their numbers
    taken together, minus the same taken per day. Every measure adds up across people and
    visits, so only theirs need computing (a few: the join is small)."""
    mine, theirs = shared_people(before, events)
    if not mine.any():
        return {}
    x, y = before[mine], events[theirs]
    shared_hash = np.intersect1d(x["visitor"].astype(str), y["visitor"].astype(str)).size
    if not shared_hash and not metrics.shares_a_visit(x, y):
        return {}  # hashes linked across the salt change, but no visit goes on: nothing to join
    both = pd.concat([x, y]).sort_values("ts", kind="stable").reset_index(drop=True)
    # The two sides taken apart, in one frame: each side's hashes (and links) tagged, so no
    # hash or visit is shared between them and every measure of it is x's plus y's.
    apart = pd.concat([_tagged(x, "x|"), _tagged(y, "y|")]).sort_values("ts", kind="stable")
    return _prune(_combine(_measures(both, tz), _measures(apart.reset_index(drop=True), tz), -1))


def _tagged(events: pd.DataFrame, tag: str) -> pd.DataFrame:
    """`events` with `tag` before every visitor hash and link: people of their own."""
    tagged = events.assign(visitor=tag + events["visitor"].astype(str))
    if "prev_visitor" in tagged:
        linked = tagged["prev_visitor"].astype(str)
        tagged["prev_visitor"] = linked.where(linked == "", tag + linked)
    return tagged


def compute(
    events: pd.DataFrame,
    site: str,
    day: date,
    tz: str = "UTC",
    before: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The rollup of one site's events of local day `day` in zone `tz`.

    `before`: events of the previous local day (at least those in the UTC day that holds this
    day's start), for the join; without it the record has none (fine when the previous day is
    not in the same range)."""
    events = with_versions(events)
    record = {
        "v": ROLLUP_VERSION,
        "site": site,
        "day": day.isoformat(),
        "tz": tz,
        "events": len(events),
        **_measures(events, tz),
        "join": _join(with_versions(before), events, tz) if before is not None else {},
    }
    return record


def empty(site: str, day: date, tz: str = "UTC") -> dict[str, Any]:
    """The record of a day without events (what `compute` gives for none, without the work:
    a year view of a young site has hundreds of them)."""
    return {
        "v": ROLLUP_VERSION,
        "site": site,
        "day": day.isoformat(),
        "tz": tz,
        "events": 0,
        "summary": {"visitors": 0, "visits": 0, "pageviews": 0, "bounces": 0, "duration": 0.0},
        "hours": {},
        "dims": {},
        "pages": {},
        "names": {},
        "cities": {},
        "join": {},
    }


def current(record: Mapping[str, Any], tz: str) -> bool:
    """Whether a stored record answers for zone `tz` (else it counts as missing)."""
    return record.get("v") == ROLLUP_VERSION and record.get("tz", "UTC") == tz


def encode(rollup: Mapping[str, Any]) -> list[bytes]:
    """The rollup as compressed parts small enough for DynamoDB items."""
    blob = zlib.compress(json.dumps(rollup, separators=(",", ":"), sort_keys=True).encode(), 6)
    return [blob[i : i + PART_BYTES] for i in range(0, len(blob), PART_BYTES)] or [blob]


def decode(parts: Iterable[bytes]) -> dict[str, Any]:
    return json.loads(zlib.decompress(b"".join(parts)))


# ---- answering from rollups (pure) ----


def _joined(records: Sequence[Mapping[str, Any]]) -> list[bool]:
    """For each record, whether the one before it in the list is the previous local day."""
    days = [date.fromisoformat(r["day"]) for r in records]
    return [n > 0 and days[n - 1] == day - timedelta(days=1) for n, day in enumerate(days)]


def _at(source: Mapping[str, Any], path: Sequence[str]) -> Mapping[str, Any]:
    for key in path:
        source = source.get(key) or {}
    return source


def _accumulate(found: dict[str, Any], part: Mapping[str, Any]) -> dict[str, Any]:
    """found += part, in place (rows are lists, numbers add up, dicts nest)."""
    for key, value in part.items():
        if isinstance(value, list):
            row = found.get(key)
            found[key] = [a + b for a, b in zip(row, value, strict=True)] if row else list(value)
        elif isinstance(value, dict):
            found[key] = _accumulate(found.get(key) or {}, value)
        else:
            found[key] = found.get(key, 0) + value
    return found


def total(records: Iterable[Mapping[str, Any]], *path: str) -> dict[str, Any]:
    """One measure (`"summary"`, `"dims", "country"`, `"pages"`, ...) over consecutive days,
    joins applied: what the raw path counts. Only that part is summed (a year of records
    answers in milliseconds)."""
    records = list(records)
    found: dict[str, Any] = {}
    for record, joined in zip(records, _joined(records), strict=True):
        _accumulate(found, _at(record, path))
        if joined and record.get("join"):
            _accumulate(found, _at(record["join"], path))
    return found


def _summary_of(row: Sequence[float]) -> metrics.Summary:
    visitors, visits, views, bounces, duration = row
    return metrics.Summary(
        visitors=round(visitors),
        visits=round(visits),
        pageviews=round(views),
        views_per_visit=views / visits if visits else 0.0,
        bounce_rate=bounces / visits if visits else 0.0,
        visit_duration=duration / visits if visits else 0.0,
    )


def summary(
    rollups: Iterable[Mapping[str, Any]], visit_filter: tuple[str, str] | None = None
) -> metrics.Summary:
    """The six numbers over several days, optionally for one value of one visit dimension."""
    if visit_filter:
        row = total(rollups, "dims", visit_filter[0]).get(visit_filter[1]) or [0, 0, 0, 0, 0.0]
        return _summary_of(row)
    s = total(rollups, "summary")
    if not s:
        return _summary_of([0, 0, 0, 0, 0.0])
    return _summary_of([s["visitors"], s["visits"], s["pageviews"], s["bounces"], s["duration"]])


def breakdown(
    rollups: Iterable[Mapping[str, Any]], dimension: str, limit: int | None = None
) -> pd.DataFrame:
    """`metrics.breakdown` over several days, from rollups (versions as "Chrome 120")."""
    rollups = list(rollups)
    if dimension == "path":
        rows = total(rollups, "pages")
    elif dimension == "name":
        rows = total(rollups, "names")
    else:
        rows = total(rollups, "dims", dimension)
    totals = pd.DataFrame.from_dict(rows, orient="index", columns=kept_totals(dimension))
    if dimension == "exit_page":  # exit rate: over the page's pageviews, exits or not
        views = {page: row[2] for page, row in total(rollups, "pages").items()}
        totals["page_pageviews"] = [views.get(page, 0) for page in totals.index]
    if "bounce_base" not in totals:  # a visit dimension: the rates are over its visits
        totals = totals.assign(bounce_base=totals["visits"], duration_base=totals["visits"])
    totals = totals.reindex(columns=metrics.TOTALS).fillna(0.0).rename_axis("value")
    return metrics.finish(totals, dimension, limit)


def cities(rollups: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Located visitors by city (city, lat, lon, visitors), for the map."""
    rows = []
    for key, visitors in total(rollups, "cities").items():
        city, lat, lon = key.rsplit("|", 2)
        if round(visitors):
            rows.append([city, float(lat), float(lon), round(visitors)])
    table = pd.DataFrame(rows, columns=["city", "lat", "lon", "visitors"])
    return table.sort_values(["city", "lat", "lon"], kind="stable").reset_index(drop=True)


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.Series(dtype="datetime64[ms, UTC]"),
            "visitor": pd.Series(dtype=object),
            "name": pd.Series(dtype=object),
            "path": pd.Series(dtype=object),
        }
    )


def buckets(interval: str, tz: str, start: datetime, end: datetime) -> pd.DatetimeIndex:
    """Every bucket of `interval` in zone `tz` that [start, end) touches (as the raw path)."""
    frame = metrics.timeseries(
        _empty_events(), interval, tz, pd.Timestamp(start), pd.Timestamp(end)
    )
    return pd.DatetimeIndex(frame["bucket"])


def _day_bucket(day: date, interval: str, tz: str) -> pd.Timestamp:
    if interval == "week":
        day -= timedelta(days=day.weekday())
    elif interval == "month":
        day = day.replace(day=1)
    return pd.Timestamp(day).tz_localize(tz, ambiguous=True, nonexistent="shift_forward")


def timeseries(
    rollups: Iterable[Mapping[str, Any]],
    interval: str,
    tz: str,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
) -> pd.DataFrame:
    """`metrics.timeseries` from rollups (records of zone `tz`), with `partial` and no bucket
    after `now` (see `mark_partial`). Hours come from the hour buckets; days, ISO weeks
    (Monday first) and months add up whole local days, joins applied the way raw counts: a
    visit crossing midnight counts once, where it starts; a person seen on both sides of
    midnight once when both days fall in one bucket."""
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}")
    records = list(rollups)
    index = buckets(interval, tz, start, end)
    counts = pd.DataFrame(0, index=index, columns=["visitors", "visits", "pageviews"])
    sums: dict[pd.Timestamp, np.ndarray] = {}

    def add(bucket: pd.Timestamp, row: Sequence[float]) -> None:
        sums[bucket] = sums.get(bucket, np.zeros(3)) + np.asarray(row, dtype=float)

    for record, joined in zip(records, _joined(records), strict=True):
        join = record.get("join") or {} if joined else {}
        if interval == "hour":
            for source in (record.get("hours", {}), join.get("hours", {})):
                for key, row in source.items():
                    add(pd.Timestamp(key, tz="UTC").tz_convert(tz), row)
            continue
        day = date.fromisoformat(record["day"])
        bucket = _day_bucket(day, interval, tz)
        s = record["summary"]
        add(bucket, [s["visitors"], s["visits"], s["pageviews"]])
        if join:
            j = join["summary"]
            same = _day_bucket(day - timedelta(days=1), interval, tz) == bucket
            add(bucket, [j["visitors"] if same else 0, j["visits"], j["pageviews"]])
    for bucket, row in sums.items():
        if bucket in counts.index:
            counts.loc[bucket] = np.rint(row).astype("int64")
    series = counts.astype("int64").rename_axis("bucket").reset_index()
    return mark_partial(series, now, end)


def mark_partial(series: pd.DataFrame, now: datetime | None, end: datetime) -> pd.DataFrame:
    """No bucket that starts after `now`, and `partial` True for the bucket holding `now`
    (the last one left when the range goes on past now). Both paths' series go through it."""
    series = series.copy()
    if now is not None and len(series):
        series = series[series["bucket"] <= pd.Timestamp(now)].reset_index(drop=True)
    partial = np.zeros(len(series), dtype=bool)
    if now is not None and len(series) and pd.Timestamp(end) > pd.Timestamp(now):
        partial[-1] = True
    series["partial"] = partial
    return series[SERIES_COLUMNS]


def daily(rollups: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Visitors, visits and pageviews per local day of the records (the day chart)."""
    records = sorted(rollups, key=lambda r: r["day"])
    if not records:
        return pd.DataFrame(columns=SERIES_COLUMNS[:-1])
    tz = records[0].get("tz", "UTC")
    start = day_bounds(date.fromisoformat(records[0]["day"]), tz)[0]
    end = day_bounds(date.fromisoformat(records[-1]["day"]), tz)[1]
    return timeseries(records, "day", tz, start, end)[SERIES_COLUMNS[:-1]]


def daily_values(rollups: Iterable[Mapping[str, Any]], dimension: str) -> dict[str, pd.Series]:
    """Visitors per local day for every value of `dimension` (0 on days without it)."""
    rollups = list(rollups)
    index = pd.DatetimeIndex(
        [pd.Timestamp(r["day"]).tz_localize(r.get("tz", "UTC")) for r in rollups]
    )
    values: dict[str, list[float]] = {}
    for position, rollup in enumerate(rollups):
        source = rollup["pages"] if dimension == "path" else rollup["dims"].get(dimension, {})
        for value, row in source.items():
            values.setdefault(value, [0.0] * len(rollups))[position] = row[0]
    return {value: pd.Series(counts, index=index) for value, counts in values.items()}
