"""Traffic that departs from its usual level: a robust seasonal baseline, and plain-word insights.

For each point of a regular series, the baseline is the median of the same phase in earlier
seasons (the same weekday in the previous weeks for days, the same hour of the week for
hours); the spread is the median absolute deviation of those values. A point is an anomaly
when it is more than `threshold` robust deviations (at least √baseline, Poisson's noise, and
at least 1) away from its baseline and differs by at least `min_change`. Medians ignore the
outliers they are meant to find; with fewer than `min_history` earlier seasons a point is
never flagged.

History is data, not the zeros before it: the days before a site's first visit (a 30-day view
of a site that started last week) are no history at all, so the first `min_history` seasons
after the first non-zero point are never flagged, whatever the view's period.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd

from pipeline.stats import metrics

PERIODS = {"day": 7, "hour": 24 * 7}
MAD_TO_SIGMA = 1.4826


def flag(
    series: pd.Series,
    period: int,
    seasons: int = 4,
    threshold: float = 3.5,
    min_change: float = 5,
    min_history: int = 2,
    data_from: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Columns value, baseline, ratio (value / baseline; NaN from a zero baseline), anomaly.
    `data_from`: when the site's data starts (a zero after it is a real zero); by default the
    series' own first non-zero point."""
    values = series.astype(float)
    # Leading zeros are "no data yet": without this the first day of data stood out against
    # a baseline of zeros and was flagged "unusual".
    started = values.ne(0).cummax() if data_from is None else values.index >= data_from
    known = values.where(started)
    earlier = pd.concat([known.shift(period * k) for k in range(1, seasons + 1)], axis=1)
    history = earlier.notna().sum(axis=1)
    baseline = earlier.median(axis=1, skipna=True)
    spread = earlier.sub(baseline, axis=0).abs().median(axis=1, skipna=True) * MAD_TO_SIGMA
    scale = np.maximum(np.maximum(spread, np.sqrt(baseline.clip(lower=0))), 1.0)
    score = (values - baseline) / scale
    anomaly = (
        (history >= min_history)
        & (score.abs() > threshold)
        & ((values - baseline).abs() >= min_change)
    )
    ratio = values / baseline.where(baseline > 0)
    return pd.DataFrame(
        {"value": values, "baseline": baseline, "ratio": ratio, "anomaly": anomaly.fillna(False)}
    )


def daily_visitors(
    events: pd.DataFrame, tz: str, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> pd.Series:
    series = metrics.timeseries(events, "day", tz, start, end)
    return series.set_index("bucket")["visitors"]


def _phrase(label: str, row: pd.Series, day: pd.Timestamp) -> str:
    weekday, when = day.strftime("%A"), day.strftime("%a %d %b")
    if math.isnan(row["ratio"]):
        return f"{label}: {row['value']:.0f} visitors on {when}, usually none on a {weekday}"
    usual = f"{row['baseline']:.1f}".removesuffix(".0")
    counts = f"{row['value']:.0f} visitors, usually {usual}"
    return f"{label}: {row['ratio']:.1f}× the usual {weekday} on {when} ({counts})"


DIMENSION_LABELS = (
    ("referrer_source", "Visitors from"),
    ("path", "Visitors of"),
    ("country", "Visitors in"),
)


def insights_from(
    total: pd.Series,
    by_label: Mapping[str, pd.Series],
    limit: int = 5,
    counting: date | None = None,
) -> list[str]:
    """Findings from daily visitor series: the whole site's, and one per labelled value.
    Days from `counting` on are still counting: low by construction, so only a rise there is
    a finding (a spike happening now is news; a half-day "drop" is not)."""
    found: list[tuple[float, str]] = []
    # The site's first day of data is where every series' history starts: a source that
    # was zero for weeks of the site's life and now brings 50 visitors is news.
    seen = total[total.ne(0)].index
    data_from = seen.min() if len(seen) else None
    for label, series in [("All visitors", total), *by_label.items()]:
        flagged = flag(series, PERIODS["day"], data_from=data_from)
        for day, row in flagged[flagged["anomaly"]].iterrows():
            if counting and day.date() >= counting and row["value"] <= row["baseline"]:
                continue
            found.append((_strength(row), _phrase(label, row, day)))
    found.sort(key=lambda item: -item[0])
    return [text for _, text in found[:limit]]


def insights(
    events: pd.DataFrame, tz: str = "UTC", limit: int = 5, counting: date | None = None
) -> list[str]:
    """Plain-word findings, largest departures first, e.g. "Visitors from Hacker News: 12.0×
    the usual Tuesday on Tue 18 Nov (480 visitors, usually 40)"."""
    if events.empty:
        return []
    start, end = events["ts"].min(), events["ts"].max() + pd.Timedelta(microseconds=1)
    by_label = {
        f"{label} {value}": daily_visitors(subset, tz, start, end)
        for column, label in DIMENSION_LABELS
        for value, subset in events.groupby(column, observed=True)
        if str(value)
    }
    return insights_from(daily_visitors(events, tz, start, end), by_label, limit, counting)


def _strength(row: pd.Series) -> float:
    # How far from usual, either way; a value that appears from nothing ranks by its size.
    if math.isnan(row["ratio"]):
        return row["value"]
    return max(row["ratio"], 1 / row["ratio"] if row["ratio"] else math.inf)
