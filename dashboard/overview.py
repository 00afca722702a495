"""The overview's numbers, from daily rollups when they can answer, else from raw events.

Rollups answer every unfiltered view in the site's own time zone: any period, any chart
interval (hour, day, week, month) and the comparison period, reading one record per local
day whatever the traffic, plus today's raw events. A filter, or another time zone than the
site's, reads raw events; the numbers are the same either way
(tests/store/test_rollups_zones.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
import streamlit as st

from dashboard.context import Data, load
from dashboard.data import rollup_days, site_timezone
from dashboard.format import md_escape
from dashboard.view import View, comparison_dates, period_dates, utc_bounds
from pipeline.errors import RollupsIncomplete
from pipeline.stats import anomalies, metrics
from pipeline.store import rollups

TOPS = {"referrer_source": 10, "path": 10, "country": 10, "device": None}
INTERVALS = rollups.INTERVALS  # hour, day, week (ISO, Monday first), month
ROLLUPS, RAW = "daily rollups", "raw events"


@dataclass
class Overview:
    view: View
    first: date
    last: date
    summary: metrics.Summary
    previous: metrics.Summary | None
    series: pd.DataFrame  # bucket, visitors, visits, pageviews, partial (True: holds now)
    previous_series: pd.DataFrame | None
    interval: str
    tops: dict[str, pd.DataFrame]
    insights: list[str]
    source: str  # "daily rollups" or "raw events"
    note: str = ""  # why raw events were read, when the reader may want to know


def interval_for(first: date, last: date) -> str:
    """The automatic interval: hours for a day or two, days up to a quarter, then weeks."""
    days = (last - first).days + 1
    return "hour" if days <= 2 else "day" if days <= 92 else "week"


def allowed_intervals(first: date, last: date) -> list[str]:
    """The intervals a chart of first..last may use, as Plausible offers them: hours up to a
    week (at most 168 points), days up to a year (12 months is 365 days), weeks from 8 days,
    months from 28 days; a single day only by hour."""
    days = (last - first).days + 1
    allowed = []
    if days <= 7:
        allowed.append("hour")
    if 1 < days <= 366:
        allowed.append("day")
    if days >= 8:
        allowed.append("week")
    if days >= 28:
        allowed.append("month")
    return allowed or [interval_for(first, last)]


def _chosen(interval: str | None, first: date, last: date) -> str:
    allowed = allowed_intervals(first, last)
    if interval in allowed:
        return interval
    automatic = interval_for(first, last)
    return automatic if automatic in allowed else allowed[0]


def rollups_can_answer(view: View, site_tz: str) -> bool:
    """Unfiltered, in the site's own zone (its rollups are of its local days)."""
    return not view.filters and view.tz == site_tz


def _from_rollups(
    view: View, first: date, last: date, today: date, interval: str, now: datetime
) -> Overview:
    tz = view.tz
    days = rollup_days(view.site, first, last, tz, today)
    compared = comparison_dates(first, last, view.compare)
    before = rollup_days(view.site, *compared, tz, today) if compared else None
    by_label = {
        f"{label} {value}": series
        for dimension, label in anomalies.DIMENSION_LABELS
        for value, series in rollups.daily_values(days, dimension).items()
        if value
    }
    start, end = utc_bounds(first, last, tz)
    daily = rollups.daily(days)
    return Overview(
        view, first, last,
        summary=rollups.summary(days),
        previous=rollups.summary(before) if before is not None else None,
        series=rollups.timeseries(days, interval, tz, start, end, now),
        previous_series=(
            rollups.timeseries(before, interval, tz, *utc_bounds(*compared, tz), now)
            if before is not None and compared else None
        ),
        interval=interval,
        tops={
            d: _with_change(
                rollups.breakdown(days, d, limit),
                rollups.breakdown(before, d) if before is not None else None,
                before is not None,
            )
            for d, limit in TOPS.items()
        },
        insights=anomalies.insights_from(
            daily.set_index("bucket")["visitors"], by_label, counting=today
        )
        if len(daily) else [],
        source=ROLLUPS,
    )  # fmt: skip


def _from_events(data: Data, interval: str, now: datetime, note: str = "") -> Overview:
    tz = data.view.tz
    compared = comparison_dates(data.first, data.last, data.view.compare)
    previous = data.previous_selection
    previous_series = None
    if previous is not None and compared:
        previous_series = rollups.mark_partial(
            metrics.timeseries(previous, interval, tz, *utc_bounds(*compared, tz)),
            now,
            utc_bounds(*compared, tz)[1],
        )
    return Overview(
        data.view, data.first, data.last,
        summary=metrics.summary(data.selection),
        previous=metrics.summary(previous) if previous is not None else None,
        series=rollups.mark_partial(
            metrics.timeseries(data.selection, interval, tz, data.start, data.end),
            now,
            data.end,
        ),
        previous_series=previous_series,
        interval=interval,
        tops={d: data.table(d, limit) for d, limit in TOPS.items()},
        insights=anomalies.insights(
            data.events, tz, counting=pd.Timestamp(now).tz_convert(tz).date()
        ),
        source=RAW,
        note=note,
    )  # fmt: skip


def _with_change(
    current: pd.DataFrame, previous: pd.DataFrame | None, comparing: bool
) -> pd.DataFrame:
    """A top table with its rows' change of visitors when the view compares."""
    return metrics.with_change(current, previous) if comparing else current


def zone_note(view: View, site_tz: str) -> str:
    """One sentence when the view's zone is not the site's (its days are not the rollups')."""
    if view.tz == site_tz:
        return ""
    return (
        f"Times in {view.tz} are computed from raw events, which takes longer; the site's own "
        f"time zone ({site_tz}) reads its daily rollups."
    )


def overview(
    view: View, today: date, interval: str | None = None, now: datetime | None = None
) -> Overview:
    """The overview of `view` (`today` in the view's zone). `interval`: one of
    `allowed_intervals`, or None for the automatic one (`interval_for`)."""
    now = now or datetime.now(UTC)
    first, last = period_dates(view, today)
    chosen = _chosen(interval, first, last)
    site_tz = site_timezone(view.site)
    if rollups_can_answer(view, site_tz):
        try:
            found = _from_rollups(view, first, last, today, chosen, now)
        except RollupsIncomplete:
            found = None  # not compacted yet: one range read of raw events is cheaper
        if found and (found.summary.pageviews or found.summary.visits):
            return found
    return _from_events(load(), chosen, now, zone_note(view, site_tz))


def empty(found: Overview) -> bool:
    return not (found.summary.visits or found.summary.pageviews)


def show_source(found: Overview) -> None:
    st.caption(
        f"Computed from {md_escape(found.source)}."
        + (f" {md_escape(found.note)}" if found.note else "")
    )
