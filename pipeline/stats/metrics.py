"""Metric maths on the events frame: pure pandas, shared by the dashboard and notebooks.

Definitions follow Plausible, so numbers can be compared:

- **Visit**: one visitor's events with no gap of 30 minutes or more.
- **Unique visitors**: distinct visitor hashes. The hash's salt rotates every UTC day, so one
  person on two days is two hashes by design: over several days, unique visitors are the sum
  of each day's unique visitors.
- **Bounce rate**: visits with exactly one pageview and no custom event, over visits.
- **Visit duration**: last event time - first event time of a visit, averaged over visits.
- **Views per visit**: pageviews / visits.
- **Current visitors**: distinct visitors with an event in the last 5 minutes.

Edge cases, written down once: every metric of an empty frame is 0 (rates too, never NaN);
a percent change from a zero or missing baseline is `None` (shown as "—"), except 0 → 0,
which is 0 %.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

PAGEVIEW = "pageview"
VISIT_GAP = pd.Timedelta(minutes=30)
CURRENT_WINDOW = pd.Timedelta(minutes=5)
# Dimensions that describe a whole visit: a visit counts for the value its first event has.
VISIT_DIMENSIONS = (
    "referrer_source", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_term",
    "utm_content", "country", "region", "city", "browser", "browser_version", "os",
    "os_version", "device", "screen", "hostname",
)  # fmt: skip


@dataclass(frozen=True)
class Summary:
    visitors: int
    visits: int
    pageviews: int
    views_per_visit: float
    bounce_rate: float  # 0..1
    visit_duration: float  # seconds

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / denominator if denominator else 0.0


def filter_events(events: pd.DataFrame, filters: Mapping[str, str]) -> pd.DataFrame:
    """The events that match every filter (filters combine with AND).

    A filter on a visit dimension (source, UTM, place, device, ...) keeps whole visits whose
    first event has that value, as Plausible's session filters do: a visit that arrived from
    Google keeps its later pages, whose own referrer is the site itself. A filter on a page or
    an event name keeps the matching events.
    """
    mask = np.ones(len(events), dtype=bool)
    for column, value in filters.items():
        if column not in VISIT_DIMENSIONS:
            mask &= (events[column].astype(str) == str(value)).to_numpy()
    by_visit = {c: v for c, v in filters.items() if c in VISIT_DIMENSIONS}
    if by_visit and len(events):
        order, starts = _visit_order(events)
        first_rows = order[starts]
        keep_visit = np.ones(len(starts), dtype=bool)
        for column, value in by_visit.items():
            keep_visit &= events[column].astype(str).to_numpy()[first_rows] == str(value)
        keep_row = np.empty(len(order), dtype=bool)
        keep_row[order] = keep_visit[_visit_numbers(len(order), starts)]
        mask &= keep_row
    return events[mask]


def _visit_order(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row order by visitor then time, and the sorted positions where a visit starts."""
    codes, _ = pd.factorize(events["visitor"])
    stamps = events["ts"].dt.tz_localize(None).to_numpy().astype("datetime64[us]").astype("int64")
    order = np.lexsort((stamps, codes))
    codes, stamps = codes[order], stamps[order]
    gap_us = VISIT_GAP // pd.Timedelta(microseconds=1)
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (codes[1:] != codes[:-1]) | (np.diff(stamps) >= gap_us)
    return order, np.flatnonzero(starts)


def _visit_numbers(rows: int, starts: np.ndarray) -> np.ndarray:
    """For rows in visit order, the number of the visit each belongs to."""
    marks = np.zeros(rows, dtype="int64")
    marks[starts] = 1
    return np.cumsum(marks) - 1


def with_visits(events: pd.DataFrame) -> pd.DataFrame:
    """The events ordered by visitor and time, with a `visit` number per visit."""
    if events.empty:
        return events.assign(visit=pd.Series(dtype="int64"))
    order, starts = _visit_order(events)
    return events.iloc[order].assign(visit=_visit_numbers(len(order), starts))


def visits(events: pd.DataFrame) -> pd.DataFrame:
    """One row per visit: visitor, start, end, duration (s), pageviews, custom events,
    bounce, entry and exit page, and the visit's first value of every visit dimension.

    Pass it to `summary`, `breakdown` and `timeseries` (`table=`) to compute it once."""
    columns = ["visit", "visitor", "start", "end", "duration", "pageviews", "custom_events"]
    columns += ["bounce", "entry_page", "exit_page"]
    dimensions = [c for c in VISIT_DIMENSIONS if c in events]
    if events.empty:
        return pd.DataFrame(columns=columns + dimensions)
    order, starts = _visit_order(events)
    ends = np.append(starts[1:], len(order)) - 1
    first_rows, last_rows = order[starts], order[ends]
    visit_of = _visit_numbers(len(order), starts)
    is_pageview = (events["name"] == PAGEVIEW).to_numpy()[order]
    views = np.add.reduceat(is_pageview.astype("int64"), starts)
    # Entry and exit pages: the first and last pageview of each visit (Arrow takes, no copies
    # through Python objects: this is the hot path at a million events).
    positions = np.flatnonzero(is_pageview)
    pv_visits = visit_of[positions]
    firsts = np.unique(pv_visits, return_index=True)[1]
    lasts = len(pv_visits) - 1 - np.unique(pv_visits[::-1], return_index=True)[1]
    every_visit = pd.RangeIndex(len(starts))

    def page_at(picks: np.ndarray) -> pd.Series:
        found = events["path"].iloc[order[positions[picks]]]
        return pd.Series(found.to_numpy(), index=pv_visits[picks]).reindex(every_visit)

    start = events["ts"].iloc[first_rows].reset_index(drop=True)
    end = events["ts"].iloc[last_rows].reset_index(drop=True)
    table = pd.DataFrame(
        {
            "visit": np.arange(len(starts)),
            "visitor": events["visitor"].iloc[first_rows].reset_index(drop=True),
            "start": start,
            "end": end,
            "duration": (end - start).dt.total_seconds(),
            "pageviews": views,
            "custom_events": (ends - starts + 1) - views,
            "entry_page": page_at(firsts),
            "exit_page": page_at(lasts),
        }
    )
    table["bounce"] = (table["pageviews"] == 1) & (table["custom_events"] == 0)
    for column in dimensions:
        table[column] = events[column].iloc[first_rows].reset_index(drop=True)
    return table[columns + dimensions]


def pageviews(events: pd.DataFrame) -> int:
    return int((events["name"] == PAGEVIEW).sum())


def unique_visitors(events: pd.DataFrame) -> int:
    """Distinct visitor hashes (= the sum of daily uniques; see the module docstring)."""
    return int(events["visitor"].nunique())


def summary(events: pd.DataFrame, table: pd.DataFrame | None = None) -> Summary:
    """The six top-line numbers."""
    table = visits(events) if table is None else table
    count = len(table)
    views = pageviews(events)
    return Summary(
        visitors=unique_visitors(events),
        visits=count,
        pageviews=views,
        views_per_visit=_ratio(views, count),
        bounce_rate=_ratio(table["bounce"].sum(), count) if count else 0.0,
        visit_duration=float(table["duration"].mean()) if count else 0.0,
    )


def percent_change(current: float, previous: float | None) -> float | None:
    """Change in percent; None from a missing or zero baseline (except 0 → 0, which is 0)."""
    if previous is None or pd.isna(previous):
        return None
    if previous == 0:
        return 0.0 if current == 0 else None
    return (current - previous) / previous * 100


def _visit_stats(table: pd.DataFrame, key: str) -> pd.DataFrame:
    grouped = table.groupby(key, observed=True, sort=False)
    return pd.DataFrame(
        {
            "visitors": grouped["visitor"].nunique(),
            "visits": grouped.size(),
            "pageviews": grouped["pageviews"].sum(),
            "bounce_rate": grouped["bounce"].mean(),
            "visit_duration": grouped["duration"].mean(),
        }
    )


def breakdown(
    events: pd.DataFrame,
    dimension: str,
    limit: int | None = None,
    table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Top values of `dimension`, most visitors first.

    `path` counts the page's own visitors and pageviews (bounce rate and duration of visits
    that entered there); `entry_page`/`exit_page` and the visit dimensions (source, UTM,
    place, device, ...) count each visit once, for its first event's value; `name` counts
    events. Columns: value, visitors, visits, pageviews, bounce_rate, visit_duration.
    """
    columns = ["value", "visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]
    if events.empty:
        return pd.DataFrame(columns=columns)
    table = visits(events) if table is None else table
    if dimension == "path":
        page_views = events[events["name"] == PAGEVIEW]
        grouped = page_views.groupby("path", observed=True)
        stats = pd.DataFrame(
            {"visitors": grouped["visitor"].nunique(), "pageviews": grouped.size()}
        )
        entries = _visit_stats(table, "entry_page")[["visits", "bounce_rate", "visit_duration"]]
        stats = stats.join(entries, how="left").fillna(
            {"visits": 0, "bounce_rate": 0.0, "visit_duration": 0.0}
        )
    elif dimension == "name":
        grouped = events.groupby("name", observed=True)
        stats = pd.DataFrame(
            {"visitors": grouped["visitor"].nunique(), "pageviews": grouped.size()}
        )
        stats = stats.assign(visits=0, bounce_rate=0.0, visit_duration=0.0)
    else:
        stats = _visit_stats(table, dimension)
    stats = stats.rename_axis("value").reset_index()
    stats["value"] = stats["value"].astype(str)
    stats = stats.sort_values(
        ["visitors", "pageviews", "value"], ascending=[False, False, True], kind="stable"
    )
    stats = stats[columns].reset_index(drop=True)
    return stats.head(limit) if limit else stats


def timeseries(
    events: pd.DataFrame,
    interval: str = "day",
    tz: str = "UTC",
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Visitors, visits and pageviews per hour/day/week/month in time zone `tz`.

    Every bucket from `start` to `end` (exclusive; default: the first and last event) is
    there, 0 where nothing happened. A visit counts in the bucket where it starts.
    """
    columns = ["bucket", "visitors", "visits", "pageviews"]
    buckets = _floor(events["ts"].dt.tz_convert(tz), interval)
    stats = pd.DataFrame(
        {
            "visitors": events["visitor"].groupby(buckets).nunique(),
            "pageviews": (events["name"] == PAGEVIEW).groupby(buckets).sum(),
        }
    )
    table = visits(events) if table is None else table
    starts = _floor(table["start"].dt.tz_convert(tz), interval) if len(table) else None
    stats["visits"] = starts.value_counts() if starts is not None else 0
    first = _bucket_of(start, tz, interval) if start is not None else stats.index.min()
    last = (
        _bucket_of(pd.Timestamp(end) - pd.Timedelta(microseconds=1), tz, interval)
        if end is not None
        else stats.index.max()
    )
    if pd.isna(first) or pd.isna(last):
        return pd.DataFrame(columns=columns)
    full = pd.DatetimeIndex(_bucket_range(first, last, interval), name="bucket")
    stats = stats.reindex(full).fillna(0).astype("int64")
    return stats.reset_index()[columns]


def _bucket_of(moment: pd.Timestamp, tz: str, interval: str) -> pd.Timestamp:
    return _floor(pd.Series([pd.Timestamp(moment).tz_convert(tz)]), interval).iloc[0]


def _bucket_range(first: pd.Timestamp, last: pd.Timestamp, interval: str) -> list[pd.Timestamp]:
    """Every bucket from `first` to `last` (both bucket starts), built at once: hours step in
    absolute time, longer buckets on the calendar's wall time, then floored like the events."""
    if interval == "hour":
        hours = pd.date_range(first.tz_convert("UTC"), last.tz_convert("UTC"), freq="h")
        starts = pd.Series(hours.tz_convert(first.tz))
    else:
        step = {"day": "D", "week": "7D", "month": "MS"}[interval]
        wall = pd.date_range(first.tz_localize(None), last.tz_localize(None), freq=step)
        local = wall.tz_localize(first.tz, ambiguous=True, nonexistent="shift_forward")
        starts = pd.Series(local)
    return list(_floor(starts, interval).drop_duplicates())


def _floor(local: pd.Series, interval: str) -> pd.Series:
    if interval == "hour":
        # Back to the start of the local hour in absolute time, not by wall-clock rounding:
        # the hour repeated when clocks go back is two buckets (its two offsets), never NaT.
        into_hour = local.dt.minute * 60 + local.dt.second
        return (
            local
            - pd.to_timedelta(into_hour, unit="s")
            - pd.to_timedelta(local.dt.microsecond * 1000 + local.dt.nanosecond, unit="ns")
        )
    # On wall time, then back to the zone: subtracting days of 24 h from an aware time would
    # land at 23:00 or 01:00 across a daylight-saving change, and where clocks change at
    # midnight (America/Santiago) a day starts at the first moment that exists.
    wall = local.dt.tz_localize(None).dt.normalize()
    if interval != "day":
        back = wall.dt.day_of_week if interval == "week" else wall.dt.day - 1
        wall = wall - pd.to_timedelta(back, unit="D")
    return wall.dt.tz_localize(local.dt.tz, ambiguous=True, nonexistent="shift_forward")


def current_visitors(events: pd.DataFrame, now: pd.Timestamp) -> int:
    now = pd.Timestamp(now)
    recent = events[(events["ts"] > now - CURRENT_WINDOW) & (events["ts"] <= now)]
    return int(recent["visitor"].nunique())


def goal_conversions(events: pd.DataFrame, goals: Sequence[str]) -> pd.DataFrame:
    """Per goal (a custom event name, or a page path starting with "/"): the visitors who
    completed it, how often, and the conversion rate (those visitors / all visitors)."""
    total = unique_visitors(events)
    rows = []
    for goal in goals:
        done = _goal_mask(events, goal)
        uniques = int(events.loc[done, "visitor"].nunique())
        rows.append(
            {
                "goal": goal,
                "visitors": uniques,
                "events": int(done.sum()),
                "conversion_rate": _ratio(uniques, total),
            }
        )
    return pd.DataFrame(rows, columns=["goal", "visitors", "events", "conversion_rate"])


def _goal_mask(events: pd.DataFrame, goal: str) -> pd.Series:
    if goal.startswith("/"):
        return (events["name"] == PAGEVIEW) & (events["path"] == goal)
    return events["name"] == goal


def funnel(events: pd.DataFrame, steps: Sequence[str]) -> pd.DataFrame:
    """An ordered funnel within visits: how many visits reached each step after the previous
    ones (a step is an event name, or a page path starting with "/")."""
    columns = ["step", "visits", "conversion_rate", "drop_off"]
    if not steps:
        return pd.DataFrame(columns=columns)
    ordered = with_visits(events)
    # For every visit, the time at which it completed the funnel so far (NaT = not reached).
    reached = pd.Series(
        pd.Timestamp.min.tz_localize("UTC"), index=pd.Index(ordered["visit"].unique())
    )
    counts = []
    for step in steps:
        hits = ordered[_goal_mask(ordered, step).to_numpy()]
        hits = hits[hits["ts"].to_numpy() >= reached.reindex(hits["visit"]).to_numpy()]
        reached = hits.groupby("visit")["ts"].min()
        counts.append(len(reached))
    start = counts[0]
    rows = [
        {
            "step": step,
            "visits": n,
            "conversion_rate": _ratio(n, start),
            "drop_off": (_ratio(prev - n, prev) if i else 0.0),
        }
        for i, (step, n, prev) in enumerate(zip(steps, counts, [start, *counts[:-1]], strict=True))
    ]
    return pd.DataFrame(rows, columns=columns)
