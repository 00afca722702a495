"""Daily rollups: what the dashboard needs for one site and one closed UTC day, in one record.

A rollup is computed from the day's raw events by the same metric code the dashboard uses
(`pipeline.stats.metrics`), so the two paths agree number for number. Unique visitors add up across
days because the visitor hash's salt rotates every UTC day (one person on two days is two
visitors by design), and a visit never crosses UTC midnight for the same reason.

Record (JSON, zlib-compressed, stored under `pk = "rollup#{site}"`, `sk = "{day}#{part}"`):

- `summary`: visitors, visits, pageviews, bounces, duration (sum of visit durations, seconds)
- `hours`: 24 × [visitors, visits, pageviews] by UTC hour (visits by the hour they start)
- `dims[dimension][value]`: [visitors, visits, pageviews, bounces, duration] for every visit
  dimension and entry/exit page (a visit counts for its first event's value)
- `pages[path]`: [visitors, pageviews, entries, entry bounces, entry duration]
- `names[name]`: [visitors, events]
- `cities["{city}|{lat}|{lon}"]`: visitors (for the map)
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from pipeline.stats import metrics

ROLLUP_VERSION = 1
PART_BYTES = 350_000  # DynamoDB items stop at 400 KB
ROLLUP_DIMENSIONS = (*metrics.VISIT_DIMENSIONS, "entry_page", "exit_page")


def _visit_stats(table: pd.DataFrame, key: str) -> dict[str, list[float]]:
    grouped = table.groupby(key, observed=True, sort=False)
    stats = pd.DataFrame(
        {
            "visitors": grouped["visitor"].nunique(),
            "visits": grouped.size(),
            "pageviews": grouped["pageviews"].sum(),
            "bounces": grouped["bounce"].sum(),
            "duration": grouped["duration"].sum(),
        }
    )
    return {
        str(value): [int(r[0]), int(r[1]), int(r[2]), int(r[3]), float(r[4])]
        for value, r in zip(stats.index, stats.to_numpy(), strict=True)
    }


def compute(events: pd.DataFrame, site: str, day: date) -> dict[str, Any]:
    """The rollup of one site's events of one UTC day."""
    table = metrics.visits(events)
    summary = metrics.summary(events, table)
    hours = [[0, 0, 0] for _ in range(24)]
    if len(events):
        hourly = metrics.timeseries(events, "hour", "UTC", table=table)
        for bucket, visitors, visits, pageviews in hourly.itertuples(index=False):
            hours[bucket.hour] = [int(visitors), int(visits), int(pageviews)]
    page_groups = events[events["name"] == metrics.PAGEVIEW].groupby("path", observed=True)
    page_visitors, page_views = page_groups["visitor"].nunique(), page_groups.size()
    entries = _visit_stats(table, "entry_page") if len(table) else {}
    pages = {}
    for path in page_visitors.index:
        _, entry_visits, _, entry_bounces, entry_duration = entries.get(
            str(path), [0, 0, 0, 0, 0.0]
        )
        pages[str(path)] = [
            int(page_visitors[path]),
            int(page_views[path]),
            entry_visits,
            entry_bounces,
            entry_duration,
        ]
    name_groups = events.groupby("name", observed=True)
    name_visitors, name_counts = name_groups["visitor"].nunique(), name_groups.size()
    names = {
        str(name): [int(name_visitors[name]), int(name_counts[name])]
        for name in name_visitors.index
    }
    located = events.dropna(subset=["lat", "lon"])
    cities = {}
    if len(located):
        grouped = located.groupby(["city", "lat", "lon"], observed=True)["visitor"].nunique()
        cities = {f"{city}|{lat}|{lon}": int(v) for (city, lat, lon), v in grouped.items()}
    return {
        "v": ROLLUP_VERSION,
        "site": site,
        "day": day.isoformat(),
        "events": len(events),
        "summary": {
            "visitors": summary.visitors,
            "visits": summary.visits,
            "pageviews": summary.pageviews,
            "bounces": int(table["bounce"].sum()) if len(table) else 0,
            "duration": float(table["duration"].sum()) if len(table) else 0.0,
        },
        "hours": hours,
        "dims": {d: _visit_stats(table, d) for d in ROLLUP_DIMENSIONS if d in table}
        if len(table)
        else {},
        "pages": pages,
        "names": names,
        "cities": cities,
    }


def encode(rollup: Mapping[str, Any]) -> list[bytes]:
    """The rollup as compressed parts small enough for DynamoDB items."""
    blob = zlib.compress(json.dumps(rollup, separators=(",", ":"), sort_keys=True).encode(), 6)
    return [blob[i : i + PART_BYTES] for i in range(0, len(blob), PART_BYTES)] or [blob]


def decode(parts: Iterable[bytes]) -> dict[str, Any]:
    return json.loads(zlib.decompress(b"".join(parts)))


# ---- answering from rollups (pure) ----


def summary(
    rollups: Iterable[Mapping[str, Any]], visit_filter: tuple[str, str] | None = None
) -> metrics.Summary:
    """The six numbers over several days, optionally for one value of one visit dimension."""
    visitors = visits = views = bounces = 0
    duration = 0.0
    for rollup in rollups:
        if visit_filter:
            row = rollup["dims"].get(visit_filter[0], {}).get(visit_filter[1])
            if not row:
                continue
            v, n, p, b, d = row
        else:
            s = rollup["summary"]
            v, n, p, b, d = s["visitors"], s["visits"], s["pageviews"], s["bounces"], s["duration"]
        visitors, visits, views, bounces, duration = (
            visitors + v,
            visits + n,
            views + p,
            bounces + b,
            duration + d,
        )
    return metrics.Summary(
        visitors=visitors,
        visits=visits,
        pageviews=views,
        views_per_visit=views / visits if visits else 0.0,
        bounce_rate=bounces / visits if visits else 0.0,
        visit_duration=duration / visits if visits else 0.0,
    )


def daily(rollups: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Visitors, visits and pageviews per UTC day (the time chart)."""
    rows = [
        {
            "bucket": pd.Timestamp(r["day"], tz="UTC"),
            "visitors": r["summary"]["visitors"],
            "visits": r["summary"]["visits"],
            "pageviews": r["summary"]["pageviews"],
        }
        for r in rollups
    ]
    return (
        pd.DataFrame(rows, columns=["bucket", "visitors", "visits", "pageviews"])
        .sort_values("bucket")
        .reset_index(drop=True)
    )


def breakdown(
    rollups: Iterable[Mapping[str, Any]], dimension: str, limit: int | None = None
) -> pd.DataFrame:
    """`metrics.breakdown` over several days, from rollups."""
    columns = ["value", "visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]
    totals: dict[str, np.ndarray] = {}
    for rollup in rollups:
        if dimension == "path":
            source = {p: [v, views, e, b, d] for p, (v, views, e, b, d) in rollup["pages"].items()}
        elif dimension == "name":
            source = {n: [v, 0, c, 0, 0.0] for n, (v, c) in rollup["names"].items()}
        else:
            source = {
                k: [v, n, p, b, d]
                for k, (v, n, p, b, d) in rollup["dims"].get(dimension, {}).items()
            }
        for value, row in source.items():
            totals[value] = totals.get(value, np.zeros(5)) + np.asarray(row, dtype=float)
    rows = []
    for value, (visitors, a, b, bounces, duration) in totals.items():
        if dimension == "path":  # a = pageviews, b = entries
            views, visits = a, b
        else:
            visits, views = a, b
        rows.append(
            [
                value,
                int(visitors),
                int(visits),
                int(views),
                bounces / visits if visits else 0.0,
                duration / visits if visits else 0.0,
            ]
        )
    table = pd.DataFrame(rows, columns=columns)
    table = table.sort_values(
        ["visitors", "pageviews", "value"], ascending=[False, False, True], kind="stable"
    ).reset_index(drop=True)
    return table.head(limit) if limit else table


def daily_values(rollups: Iterable[Mapping[str, Any]], dimension: str) -> dict[str, pd.Series]:
    """Visitors per UTC day for every value of `dimension` (0 on days without it)."""
    rollups = list(rollups)
    index = pd.DatetimeIndex([pd.Timestamp(r["day"], tz="UTC") for r in rollups])
    values: dict[str, list[float]] = {}
    for position, rollup in enumerate(rollups):
        source = rollup["pages"] if dimension == "path" else rollup["dims"].get(dimension, {})
        for value, row in source.items():
            values.setdefault(value, [0.0] * len(rollups))[position] = row[0]
    return {value: pd.Series(counts, index=index) for value, counts in values.items()}
