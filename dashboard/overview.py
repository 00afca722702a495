"""The overview's numbers, from daily rollups when they can answer, else from raw events.

Rollups answer a view of whole UTC days without filters (the common case: what a site owner
opens), reading one record per day whatever the traffic. Another time zone or any filter
falls back to raw events; the numbers are the same either way (tests/test_rollups.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
import streamlit as st

from dashboard.context import Data, load
from dashboard.data import backend, cached_rollups
from dashboard.format import md_escape
from dashboard.view import View, comparison_dates, period_dates
from pipeline.errors import RollupsIncomplete
from pipeline.stats import anomalies, metrics
from pipeline.store import rollups

TOPS = {"referrer_source": 10, "path": 10, "country": 10, "device": None}


@dataclass
class Overview:
    view: View
    first: date
    last: date
    summary: metrics.Summary
    previous: metrics.Summary | None
    series: pd.DataFrame
    previous_series: pd.DataFrame | None
    interval: str
    tops: dict[str, pd.DataFrame]
    insights: list[str]
    source: str  # "daily rollups" or "raw events"


def interval_for(first: date, last: date) -> str:
    days = (last - first).days + 1
    return "hour" if days <= 2 else "day" if days <= 92 else "week"


def rollups_can_answer(view: View, first: date, last: date) -> bool:
    return view.tz == "UTC" and not view.filters and interval_for(first, last) == "day"


def _from_rollups(view: View, first: date, last: date, today: date) -> Overview:
    settings = backend().settings
    days = cached_rollups(settings, view.site, first, last, today)
    compared = comparison_dates(first, last, view.compare)
    before = cached_rollups(settings, view.site, *compared, today) if compared else None
    by_label = {
        f"{label} {value}": series
        for dimension, label in anomalies.DIMENSION_LABELS
        for value, series in rollups.daily_values(days, dimension).items()
        if value
    }
    return Overview(
        view, first, last,
        summary=rollups.summary(days),
        previous=rollups.summary(before) if before is not None else None,
        series=rollups.daily(days),
        previous_series=rollups.daily(before) if before is not None else None,
        interval="day",
        tops={d: rollups.breakdown(days, d, limit) for d, limit in TOPS.items()},
        insights=anomalies.insights_from(rollups.daily(days).set_index("bucket")["visitors"], by_label),
        source="daily rollups",
    )  # fmt: skip


def _from_events(data: Data) -> Overview:
    interval = interval_for(data.first, data.last)
    previous = data.previous if data.previous is not None and len(data.previous) else None
    return Overview(
        data.view, data.first, data.last,
        summary=metrics.summary(data.events, data.visits),
        previous=metrics.summary(data.previous) if data.previous is not None else None,
        series=metrics.timeseries(data.events, interval, data.view.tz, data.start, data.end, table=data.visits),
        previous_series=metrics.timeseries(previous, interval, data.view.tz) if previous is not None else None,
        interval=interval,
        tops={d: metrics.breakdown(data.events, d, limit, table=data.visits) for d, limit in TOPS.items()},
        insights=anomalies.insights(data.events, data.view.tz),
        source="raw events",
    )  # fmt: skip


def overview(view: View, today: date) -> Overview:
    first, last = period_dates(view, today)
    if rollups_can_answer(view, first, last):
        try:
            found = _from_rollups(view, first, last, today)
        except RollupsIncomplete:
            found = None  # not compacted yet: one range read of raw events is cheaper
        if found and (found.summary.pageviews or found.summary.visits):
            return found
    return _from_events(load())


def empty(found: Overview) -> bool:
    return not (found.summary.visits or found.summary.pageviews)


def show_source(found: Overview) -> None:
    st.caption(f"Computed from {md_escape(found.source)}.")
