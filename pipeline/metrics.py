"""Metric maths on the events frame: pure pandas, shared by the dashboard and notebooks.

Unique visitors over several days are the sum of each UTC day's unique visitors: the
visitor hash's salt rotates daily, so one person on two days is two hashes by design.
"""

from __future__ import annotations

import pandas as pd

from pipeline.enrich import PAGEVIEW


def pageviews(events: pd.DataFrame) -> int:
    return int((events["name"] == PAGEVIEW).sum())


def unique_visitors(events: pd.DataFrame) -> int:
    """Sum over UTC days of the distinct visitor hashes of that day (0 for no events)."""
    if events.empty:
        return 0
    return int(events.groupby(events["ts"].dt.date)["visitor"].nunique().sum())


def daily_series(events: pd.DataFrame, tz: str = "UTC") -> pd.DataFrame:
    """Per day in `tz`: `visitors` (distinct hashes) and `pageviews`; days without events are 0."""
    columns = ["day", "visitors", "pageviews"]
    if events.empty:
        return pd.DataFrame(columns=columns)
    local = events.assign(day=events["ts"].dt.tz_convert(tz).dt.floor("D"))
    grouped = local.groupby("day").agg(
        visitors=("visitor", "nunique"),
        pageviews=("name", lambda names: int((names == PAGEVIEW).sum())),
    )
    full = pd.date_range(grouped.index.min(), grouped.index.max(), freq="D", tz=tz, name="day")
    return grouped.reindex(full, fill_value=0).reset_index()[columns]
