"""Plausible's legacy Stats API v1 (`GET /api/v1/stats/...`) for older clients: its query
parameters, periods, filter syntax, messages and response shapes, answered by the v2 engine
(`pipeline.api.v2`), so both versions give the dashboard's numbers.

- `aggregate`: `{"results": {"visitors": {"value": 5}}}` (with `"change"` when compared)
- `timeseries`: `{"results": [{"date": "2026-11-19", "visitors": 3}, ...]}`, every bucket
- `breakdown`: `{"results": [{"source": "Google", "visitors": 2}, ...]}`
- `realtime_visitors`: a number
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from pipeline.api import v2
from pipeline.api.http import ApiError
from pipeline.api.source import StatsSource
from pipeline.stats import metrics

DOCS = "https://plausible.io/docs/stats-api"
PERIODS = ("day", "7d", "30d", "month", "6mo", "12mo", "custom")
METRICS = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate",
           "visit_duration", "events", "conversion_rate", "time_on_page")  # fmt: skip
INTERVALS = {"date": "day", "day": "day", "month": "month"}
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
EVENT_ONLY = ("event:name", "event:goal")
# `a==b|c;d!=e;f~g`: conditions split on ";", values on "|" (a "\|" is a literal bar).
_CONDITION = re.compile(r"^(?P<key>[^=!~]+?)\s*(?P<op>==|!=|~)\s*(?P<value>.*)$", re.S)
_BAR = re.compile(r"(?<!\\)\|")


def bad(message: str) -> ApiError:
    return ApiError(400, message)


def _period(params: Mapping[str, str], source: StatsSource) -> v2.Range:
    """v1's periods, counted as Plausible's legacy parser does (its "30d" is the 30 days
    before `date` and `date` itself)."""
    period = params.get("period", "30d")
    if period not in PERIODS:
        raise bad(
            f"Error parsing `period` parameter: invalid period `{period}`. Please find accepted "
            f"values in our docs: {DOCS}#time-periods"
        )
    tz = source.timezone
    if period == "custom":
        text = params.get("date")
        if text is None:
            raise bad(
                "The `date` parameter is required when using a custom period. See "
                f"{DOCS}#time-periods"
            )
        parts = text.split(",")
        try:
            first, last = (date.fromisoformat(p.strip()) for p in parts)
        except ValueError:
            raise bad(
                "Invalid format for `date` parameter. When using a custom period, please include "
                f"two ISO-8601 formatted dates joined by a comma. See {DOCS}#time-periods"
            ) from None
        if last < first:
            raise bad(f"Invalid `date` parameter: {first} is after {last}.")
        return v2._checked(v2.day_range(first, last, tz))
    day = source.now().astimezone(ZoneInfo(tz)).date()
    if "date" in params and params["date"] != "today":
        try:
            day = date.fromisoformat(params["date"])
        except ValueError:
            raise bad(
                "Error parsing `date` parameter: invalid_format. Please specify a valid date in "
                "ISO-8601 format."
            ) from None
    if period == "day":
        return v2.day_range(day, day, tz)
    if period == "7d":
        return v2.day_range(day - timedelta(days=6), day, tz)
    if period == "30d":
        return v2.day_range(day - timedelta(days=30), day, tz)
    if period == "month":
        return v2.day_range(v2._month_start(day), v2._month_end(day), tz)
    months = 6 if period == "6mo" else 12
    return v2.day_range(v2._month_start(day, months - 1), v2._month_end(day), tz)


def _values(text: str) -> list[str]:
    return [v.replace("\\|", "|") for v in _BAR.split(text)]


def parse_filters(text: str) -> list[list[Any]]:
    """v1 filters (`visit:browser==Firefox;event:page==/a|/b`, `!=`, `~` contains) as v2's."""
    found = []
    for condition in (c for c in text.split(";") if c.strip()):
        matched = _CONDITION.match(condition.strip())
        if not matched:
            raise bad(f"Invalid filter '{condition}'. See {DOCS}#filtering")
        key, op, value = matched["key"].strip(), matched["op"], matched["value"]
        if not v2._known_dimension(key):
            raise bad(
                f"Invalid filter property '{key}'. Please provide a valid filter property: "
                f"{DOCS}#properties"
            )
        values = _values(value)
        if any("*" in v for v in values) and key != "event:goal":
            raise bad(
                f"Wildcard filter values ('{value}') are not supported by this server "
                "(see docs/api.md)."
            )
        operator = {"==": "is", "!=": "is_not", "~": "contains"}[op]
        found.append([operator, key, values])
    return found


def _metrics(params: Mapping[str, str], dims: Sequence[str], raw: list[list[Any]]) -> list[str]:
    """The metrics asked for, checked as Plausible's v1 controller does (its messages)."""
    names = params.get("metrics", "visitors").split(",")
    if len(names) != len(set(names)):
        raise bad("Metrics cannot be queried multiple times.")
    filtered = [f[1] for f in raw]
    for metric in names:
        if metric not in METRICS:
            raise bad(
                f"The metric `{metric}` is not recognized. Find valid metrics from the "
                f"documentation: {DOCS}#metrics"
            )
        if metric == "time_on_page":
            for dimension in ("event:goal", "event:name"):
                if dimension in filtered:
                    raise bad(
                        f"Metric `{metric}` cannot be queried when filtering by `{dimension}`"
                    )
            if list(dims) != ["event:page"] and dims:
                raise bad(
                    f"Metric `{metric}` is not supported in breakdown queries (except "
                    "`event:page` breakdown)"
                )
            if not dims and "event:page" not in filtered:
                raise bad(
                    f"Metric `{metric}` can only be queried in a page breakdown or with a page "
                    "filter."
                )
        goal_asked = list(dims) == ["event:goal"] or "event:goal" in filtered
        if metric == "conversion_rate" and not goal_asked:
            raise bad(
                f"Metric `{metric}` can only be queried in a goal breakdown or with a goal filter"
            )
        if metric == "views_per_visit":
            if "event:page" in filtered:
                raise bad(f"Metric `{metric}` cannot be queried with a filter on `event:page`.")
            if dims and not all(d in v2.TIME_DIMENSIONS for d in dims):
                raise bad(f"Metric `{metric}` is not supported in breakdown queries.")
        if metric in ("visits", "bounce_rate", "visit_duration", "views_per_visit"):
            only = [d for d in dims if _event_only(d)]
            if only and len(dims) == 1:
                raise bad(
                    f"Session metric `{metric}` cannot be queried for breakdown by `{only[0]}`."
                )
            found = next((f for f in filtered if _event_only(f)), None)
            if found:
                raise bad(
                    f"Session metric `{metric}` cannot be queried when using a filter on `{found}`."
                )
    return names


def _event_only(dimension: str) -> bool:
    return dimension in EVENT_ONLY or dimension.startswith("event:props:")


def _query(
    params: Mapping[str, str],
    source: StatsSource,
    dims: tuple[str, ...],
    include_change: bool = False,
) -> tuple[v2.Query, list[str]]:
    """The v2 query that answers these v1 parameters, and the metrics to show."""
    found_range = _period(params, source)
    raw = parse_filters(params.get("filters", ""))
    names = _metrics(params, dims, raw)
    filters, goals = v2.parse_filters(raw)
    # views_per_visit by time bucket is pageviews / visits of the bucket: ask for those.
    asked = [m for m in names if m != "views_per_visit"]
    if "views_per_visit" in names:
        asked += [m for m in ("visits", "pageviews") if m not in asked]
    comparison = None
    if include_change and params.get("compare") == "previous_period":
        comparison = v2.comparison_range(found_range, {"mode": "previous_period"}, source.timezone)
    query = v2.Query(
        tuple(asked) if dims else tuple(names), dims, filters, goals, found_range, None,
        v2.DEFAULT_LIMIT, 0, {}, comparison, raw, source.timezone,
    )  # fmt: skip
    v2.validate(query)
    return query, names


def _shown(metric: str, row: Mapping[str, Any]) -> Any:
    if metric == "views_per_visit" and "views_per_visit" not in row:
        visits = row.get("visits") or 0
        return v2.present(metric, row.get("pageviews", 0) / visits if visits else 0.0)
    return v2.present(metric, row.get(metric))


def aggregate(params: Mapping[str, str], source: StatsSource) -> dict[str, Any]:
    """`GET /api/v1/stats/aggregate`."""
    query, names = _query(params, source, (), include_change=True)
    (_, row), *_ = v2.run(query, source, query.range).rows
    results: dict[str, Any] = {m: {"value": _shown(m, row)} for m in names}
    if query.comparison is not None:
        (_, before), *_ = v2.run(query, source, query.comparison).rows
        for metric in names:
            old, new = _shown(metric, before), results[metric]["value"]
            results[metric]["change"] = v2.change(metric, old, new)
    return {"results": results}


def timeseries(params: Mapping[str, str], source: StatsSource) -> dict[str, Any]:
    """`GET /api/v1/stats/timeseries`: every bucket of the period, 0 where nothing happened."""
    interval = params.get("interval")
    if interval is not None and interval not in INTERVALS:
        raise bad(
            f"Error parsing `interval` parameter: invalid interval `{interval}`. Valid intervals "
            "are `day`, `month`"
        )
    period = params.get("period", "30d")
    default = {"day": "hour", "6mo": "month", "12mo": "month"}.get(period, "day")
    chosen = INTERVALS[interval] if interval else default
    query, names = _query(params, source, (f"time:{chosen}",))
    rows = v2.run(query, source, query.range).rows
    results = []
    for (bucket,), row in rows:
        entry: dict[str, Any] = {"date": v2._label(bucket, chosen)}
        entry.update({m: _shown(m, row) for m in names})
        results.append(entry)
    return {"results": results}


def breakdown(params: Mapping[str, str], source: StatsSource) -> dict[str, Any]:
    """`GET /api/v1/stats/breakdown`: `property`'s values, most of the first metric first."""
    prop = params.get("property")
    if prop is None:
        raise bad(
            "The `property` parameter is required. Please provide at least one property to show "
            "a breakdown by."
        )
    if prop == "event:hostname":
        raise bad(
            "Property 'event:hostname' is currently not supported for breakdowns.  Please provide "
            f"a valid property for the breakdown endpoint: {DOCS}#properties"
        )
    if not v2._known_dimension(prop) or prop in v2.UNSUPPORTED_DIMENSIONS:
        raise bad(
            f"Invalid property '{prop}'. Please provide a valid property for the breakdown "
            f"endpoint: {DOCS}#properties"
        )
    limit, page = _positive(params, "limit", DEFAULT_LIMIT), _positive(params, "page", 1)
    query, names = _query(params, source, (prop,))
    query = replace(query, order_by=((names[0], "desc"),))
    rows = v2.run(query, source, query.range).rows
    key = prop.split(":")[-1]
    results = []
    for (value,), row in rows:
        results.append({key: v2.label(prop, value), **{m: _shown(m, row) for m in names}})
    results.sort(key=lambda r: str(r[key]))
    results.sort(key=lambda r: r[names[0]] if r[names[0]] is not None else -1, reverse=True)
    start = (page - 1) * limit
    return {"results": results[start : start + limit]}


def _positive(params: Mapping[str, str], name: str, default: int) -> int:
    if name not in params:
        return default
    text = params[name]
    number = int(text) if text.isdigit() else 0
    if name == "limit" and not 0 < number <= MAX_LIMIT:
        raise bad(f"Please provide limit as a number between 1 and {MAX_LIMIT}.")
    if number <= 0:
        raise bad("Please provide page as a positive number.")
    return number


def realtime_visitors(params: Mapping[str, str], source: StatsSource) -> int:
    """`GET /api/v1/stats/realtime/visitors`: visitors of the last 5 minutes."""
    now = pd.Timestamp(source.now())
    events = source.events(
        (now - metrics.CURRENT_WINDOW).to_pydatetime(),
        (now + pd.Timedelta(seconds=1)).to_pydatetime(),
    )
    return metrics.current_visitors(events, now) if len(events) else 0
