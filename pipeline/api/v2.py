"""Plausible's Stats API v2 (`POST /api/v2/query`): the body parsed and checked as Plausible's
query parser does (its messages, status 400), then answered by `pipeline.stats.metrics` on raw
events or by `pipeline.store.rollups` where rollups answer exactly, so the API, the dashboard
and a notebook give one number for one question. docs/api.md says what is supported.

The answer has Plausible's shape::

    {"results": [{"dimensions": [...], "metrics": [...]}, ...],
     "meta": {...},  # total_rows / time_labels when asked for
     "query": {...}}  # the query as understood: site_id, metrics, date_range, ...
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pycountry

from pipeline.api.http import ApiError
from pipeline.api.source import StatsSource
from pipeline.stats import metrics
from pipeline.stats.countries import country_name
from pipeline.stats.metrics import Filter
from pipeline.store import rollups

METRICS = (
    "visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration",
    "events", "conversion_rate", "time_on_page", "scroll_depth", "percentage",
)  # fmt: skip
# Metrics of whole visits: Plausible refuses them beside an event dimension (not event:page).
SESSION_METRICS = ("bounce_rate", "visit_duration", "views_per_visit")
TIME_DIMENSIONS = ("time", "time:hour", "time:day", "time:week", "time:month")
GOAL = "event:goal"
# API dimension → the events frame's column (what metrics' filters and breakdowns read).
COLUMNS = {
    "event:page": "path",
    "event:name": "name",
    "event:hostname": "hostname",
    "visit:source": "referrer_source",
    "visit:referrer": "referrer",
    "visit:utm_medium": "utm_medium",
    "visit:utm_source": "utm_source",
    "visit:utm_campaign": "utm_campaign",
    "visit:utm_content": "utm_content",
    "visit:utm_term": "utm_term",
    "visit:country": "country",
    "visit:region": "region",
    "visit:city": "city",
    "visit:country_name": "country",  # answered as names (see `country_name`)
    "visit:city_name": "city",  # our city is its name already (CloudFront's)
    "visit:device": "device",
    "visit:browser": "browser",
    "visit:browser_version": "browser_version",
    "visit:os": "os",
    "visit:os_version": "os_version",
    "visit:entry_page": "entry_page",
    "visit:exit_page": "exit_page",
}
# Plausible's names this server knows but cannot answer (no such data is stored).
UNSUPPORTED_DIMENSIONS = (
    "time:minute", "visit:channel", "visit:region_name", "visit:entry_page_hostname",
    "visit:exit_page_hostname",
)  # fmt: skip
# Columns whose breakdown the rollups keep exactly (versions are stored as "Chrome 120" there,
# while the API answers the version alone, as Plausible: they read raw events).
ROLLUP_COLUMNS = {c for c in rollups.ROLLUP_DIMENSIONS if c not in rollups.VERSIONED} | {
    "path",
    "name",
}
ROLLUP_METRICS = {"visitors", "visits", "pageviews", "views_per_visit", "bounce_rate",
                  "visit_duration", "percentage"}  # fmt: skip
SERIES_METRICS = {"visitors", "visits", "pageviews"}  # what rollups keep per hour
OPERATORS = ("is", "is_not", "contains")  # the dashboard's operators
PLAUSIBLE_OPERATORS = (
    "is", "is_not", "matches", "matches_not", "matches_wildcard", "matches_wildcard_not",
    "contains", "contains_not", "and", "or", "not", "has_done", "has_not_done",
)  # fmt: skip
MAX_RANGE_DAYS = 3660  # ten years: a longer range is a mistake, and reads for minutes
MAX_SHORTHAND_DAYS = 5000  # Plausible's own bounds on "Nd" and "Nmo"
MAX_SHORTHAND_MONTHS = 100
DEFAULT_LIMIT = 10_000  # Plausible's default and largest page
MAX_LIMIT = 10_000
MAX_NESTED_VALUES = 1000  # values of a non-last dimension a multi-dimension query expands
QUERY_KEYS = ("site_id", "metrics", "date_range", "date", "filters", "dimensions", "order_by",
              "include", "pagination")  # fmt: skip
INCLUDE_KEYS = ("imports", "imports_meta", "time_labels", "total_rows", "comparisons",
                "legacy_time_on_page_cutoff")  # fmt: skip
COMPARISON_MODES = ("previous_period", "year_over_year", "custom")


def inspect(value: Any) -> str:
    """A JSON value as Elixir's `inspect` writes it in Plausible's messages."""
    return json.dumps(value, ensure_ascii=False)


def bad(message: str) -> ApiError:
    return ApiError(400, message)


# --- The parsed query ---------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """[start, end) in UTC; `first`/`last` the local days when the range is whole days."""

    start: datetime
    end: datetime
    first: date | None = None
    last: date | None = None
    label_end: datetime | None = None  # the inclusive end Plausible echoes (23:59:59)


@dataclass(frozen=True)
class Query:
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...]
    filters: tuple[Filter, ...]
    goals: tuple[str, ...]  # an event:goal "is" filter's goals (OR-ed)
    range: Range
    order_by: tuple[tuple[str, str], ...] | None
    limit: int
    offset: int
    include: Mapping[str, Any]
    comparison: Range | None
    raw_filters: list[Any] = field(default_factory=list)
    tz: str = "UTC"


def _schema_type(value: Any) -> str:
    """A JSON value's type as ExJsonSchema names it in a type-mismatch message."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    return "Object"


def _expect(value: Any, kind: type | tuple[type, ...], path: str, name: str) -> None:
    ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is int)
    if not ok:
        raise bad(f"{path}: Type mismatch. Expected {name} but got {_schema_type(value)}.")


def _check_shape(body: Any) -> None:
    """What Plausible's JSON schema refuses, with its messages (path first)."""
    _expect(body, dict, "#", "Object")
    missing = [k for k in ("site_id", "metrics", "date_range") if k not in body]
    if len(missing) == 1:
        raise bad(f"#: Required property {missing[0]} was not present.")
    if missing:
        raise bad(f"#: Required properties {', '.join(missing)} were not present.")
    extra = [k for k in body if k not in QUERY_KEYS]
    if extra:
        raise bad("#: Schema does not allow additional properties.")
    _expect(body["site_id"], str, "#/site_id", "String")
    _expect(body["metrics"], list, "#/metrics", "Array")
    if not body["metrics"]:
        raise bad("#/metrics: Expected a minimum of 1 items but got 0.")
    for n, metric in enumerate(body["metrics"]):
        if not isinstance(metric, str) or metric not in METRICS:
            raise bad(f"#/metrics/{n}: Invalid metric {inspect(metric)}")
    if len(set(body["metrics"])) != len(body["metrics"]):
        raise bad("#/metrics: Expected items to be unique but they were not.")
    for key, kind, name in (
        ("filters", list, "Array"),
        ("dimensions", list, "Array"),
        ("order_by", list, "Array"),
        ("include", dict, "Object"),
        ("pagination", dict, "Object"),
        ("date", str, "String"),
    ):
        if key in body:
            _expect(body[key], kind, f"#/{key}", name)
    for n, dimension in enumerate(body.get("dimensions", [])):
        if not _known_dimension(dimension, time_ok=True):
            raise bad(f"#/dimensions/{n}: Invalid dimension {inspect(dimension)}")
    if len(set(map(str, body.get("dimensions", [])))) != len(body.get("dimensions", [])):
        raise bad("#/dimensions: Expected items to be unique but they were not.")


def _known_dimension(dimension: Any, time_ok: bool = False) -> bool:
    """A dimension name Plausible's schema accepts (supported here or not)."""
    if not isinstance(dimension, str):
        return False
    if time_ok and dimension in TIME_DIMENSIONS:
        return True
    if dimension.startswith("event:props:"):
        return len(dimension) > len("event:props:")
    return dimension in COLUMNS or dimension == GOAL or dimension in UNSUPPORTED_DIMENSIONS


def _supported_dimension(dimension: str) -> None:
    if dimension in UNSUPPORTED_DIMENSIONS:
        raise bad(f"Dimension `{dimension}` is not supported by this server (see docs/api.md).")


def country_codes(names: Sequence[str], operator: str) -> list[str]:
    """The codes of the countries whose name is (contains, any case) one of `names`."""
    wanted = [n.lower() for n in names]
    found = []
    for country in pycountry.countries:
        # Plausible's names are not always pycountry's short ones ("United States of America").
        known = {
            getattr(country, key, "").lower() for key in ("name", "common_name", "official_name")
        } - {""}
        if operator == "contains":
            hit = any(w in name for w in wanted for name in known)
        else:
            hit = bool(known & set(wanted))
        if hit:
            found.append(country.alpha_2)
    if "" in names and operator != "contains":
        found.append("")  # no known country
    return found or [NO_COUNTRY]


NO_COUNTRY = "(no such country)"  # a code no event has: a filter by an unknown name matches none
NOT_SET = "(not set)"  # Plausible's label of an empty UTM, browser, OS or device value
DIRECT = "Direct / None"  # ... and of an empty referrer
BLANK_LABELS = {
    **{
        d: NOT_SET
        for d in (
            "visit:utm_medium", "visit:utm_source", "visit:utm_campaign", "visit:utm_content",
            "visit:utm_term", "visit:browser", "visit:browser_version", "visit:os",
            "visit:os_version", "visit:device",
        )
    },
    "visit:referrer": DIRECT,
    "visit:source": DIRECT,
}  # fmt: skip


def label(dimension: str, value: str) -> str:
    """A dimension value as Plausible prints it (a name for country_name, "(not set)" for an
    empty UTM value, ...)."""
    if dimension == "visit:country_name":
        return country_name(value)
    if value == "" and dimension in BLANK_LABELS:
        return BLANK_LABELS[dimension]
    return value


def stored_values(dimension: str, values: Sequence[str]) -> list[str]:
    """Filter values as stored: Plausible's blank labels back to ""."""
    blank = BLANK_LABELS.get(dimension)
    return ["" if v == blank else v for v in values]


def column(dimension: str) -> str:
    """An API dimension's column in the events frame ("props.<key>" for a property)."""
    if dimension.startswith("event:props:"):
        return metrics.PROPS_PREFIX + dimension[len("event:props:") :]
    return COLUMNS[dimension]


# --- Dates ----------------------------------------------------------------------------------


def _local_start(day: date, tz: str) -> datetime:
    return datetime.combine(day, time.min, ZoneInfo(tz)).astimezone(UTC)


def day_range(first: date, last: date, tz: str) -> Range:
    """The local days first..last (inclusive) of zone `tz`."""
    start, end = _local_start(first, tz), _local_start(last + timedelta(days=1), tz)
    return Range(start, end, first, last, end - timedelta(seconds=1))


def _month_start(day: date, months_back: int = 0) -> date:
    month = day.year * 12 + day.month - 1 - months_back
    return date(month // 12, month % 12 + 1, 1)


def _month_end(day: date) -> date:
    return _month_start(day, -1) - timedelta(days=1)


REALTIME = {"realtime": timedelta(minutes=5), "30m": timedelta(minutes=30)}


def parse_date_range(
    value: Any,
    today: date,
    tz: str,
    retention_days: int = 400,
    now: datetime | None = None,
) -> Range:
    """Plausible's `date_range`: a preset, "Nd"/"Nmo" (whole days or months before today,
    today excluded, as Plausible's current parser), "realtime"/"30m" (the last 5/30 minutes
    to 5 s ahead, as Plausible's), or [from, to] as dates or ISO datetimes."""
    if isinstance(value, list):
        return _pair_range(value, tz)
    if not isinstance(value, str):
        raise bad(f"#/date_range: Invalid date range {inspect(value)}")
    if value in REALTIME:
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        end = moment + timedelta(seconds=5)
        return Range(moment - REALTIME[value], end, label_end=end)
    if value == "day":
        return day_range(today, today, tz)
    if value == "month":
        return day_range(_month_start(today), _month_end(today), tz)
    if value == "year":
        return day_range(date(today.year, 1, 1), date(today.year, 12, 31), tz)
    if value == "all":
        # Nothing older than the retention is kept: "all" is every day that can hold data.
        return day_range(today - timedelta(days=retention_days - 1), today, tz)
    unit = "mo" if value.endswith("mo") else value[-1:]
    number = value[: -len(unit)] if unit else ""
    if number.isdigit() and unit == "d" and 0 < int(number) <= MAX_SHORTHAND_DAYS:
        n = int(number)
        return _checked(day_range(today - timedelta(days=n), today - timedelta(days=1), tz))
    if number.isdigit() and unit == "mo" and 0 < int(number) <= MAX_SHORTHAND_MONTHS:
        n = int(number)
        return _checked(day_range(_month_start(today, n), _month_start(today) - timedelta(1), tz))
    if number.isdigit() and unit in ("d", "mo"):
        raise bad(f"Invalid date_range {inspect(value)}")  # out of Plausible's bounds
    raise bad(f"#/date_range: Invalid date range {inspect(value)}")


def _pair_range(value: list[Any], tz: str) -> Range:
    if len(value) != 2 or not all(isinstance(v, str) for v in value):
        raise bad(f"#/date_range: Invalid date range {inspect(value)}")
    try:
        first, last = date.fromisoformat(value[0]), date.fromisoformat(value[1])
    except ValueError:
        first = last = None
    if first is not None and last is not None and len(value[0]) == len(value[1]) == 10:
        if last < first:
            raise bad(f"Invalid date_range {inspect(value)}: the first date is after the last one.")
        return _checked(day_range(first, last, tz))
    try:
        start, end = (_aware(datetime.fromisoformat(v)) for v in value)
    except ValueError:
        raise bad(f"Invalid date_range '{inspect(value)}'.") from None
    if end < start:
        raise bad(f"Invalid date_range {inspect(value)}: the first time is after the last one.")
    # Inclusive of the last second, as Plausible's (it stores whole seconds).
    return _checked(Range(start, end + timedelta(seconds=1), label_end=end))


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("a datetime needs its offset")
    return moment.astimezone(UTC)


def _checked(found: Range) -> Range:
    if found.end - found.start > timedelta(days=MAX_RANGE_DAYS + 1):
        raise bad(
            f"Invalid date_range: at most {MAX_RANGE_DAYS} days (ten years) can be queried at once."
        )
    return found


def comparison_range(main: Range, spec: Any, tz: str) -> Range:
    """`include.comparisons`: the previous period of the same length, the same days a year
    before, or a custom [from, to] of dates."""
    if not isinstance(spec, dict):
        raise bad("#/include/comparisons: Type mismatch. Expected Object but got "
                  f"{_schema_type(spec)}.")  # fmt: skip
    mode = spec.get("mode")
    if mode not in COMPARISON_MODES:
        raise bad(f"#/include/comparisons/mode: Invalid comparison mode {inspect(mode)}")
    if mode == "custom":
        pair = spec.get("date_range")
        if not isinstance(pair, list):
            raise bad("#/include/comparisons: Required property date_range was not present.")
        return _pair_range(pair, tz)
    if main.first is None or main.last is None:
        raise bad("Comparisons of a date_range of datetimes are not supported (see docs/api.md).")
    if mode == "previous_period":
        length = (main.last - main.first).days + 1
        first = main.first - timedelta(days=length)
        return day_range(first, main.first - timedelta(days=1), tz)
    return day_range(_year_before(main.first), _year_before(main.last), tz)


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


# --- Filters ----------------------------------------------------------------------------------


def _flatten(raw: Sequence[Any]) -> list[list[Any]]:
    """Top-level filters with `and` unnested (AND is what a list of filters means)."""
    found: list[list[Any]] = []
    for item in raw:
        if isinstance(item, list) and item[:1] == ["and"] and len(item) == 2:
            if not isinstance(item[1], list):
                raise bad(f"Invalid filter '{inspect(item)}'.")
            found += _flatten(item[1])
        else:
            found.append(item)
    return found


def _simple(item: Any) -> list[Any]:
    """`not` of one filter and `or` of filters on one dimension with one operator are what a
    dashboard filter can say: rewritten as is_not / several values. Other logic is refused."""
    if not isinstance(item, list) or not item or item[0] not in PLAUSIBLE_OPERATORS:
        raise bad(f"Unknown operator for filter '{inspect(item)}'.")
    operator = item[0]
    if operator == "not" and len(item) == 2 and isinstance(item[1], list):
        inner = _simple(item[1])
        if inner[0] == "is":
            return ["is_not", *inner[1:]]
        if inner[0] == "is_not":
            return ["is", *inner[1:]]
    if operator == "or" and len(item) == 2 and isinstance(item[1], list) and item[1]:
        parts = [_simple(part) for part in item[1]]
        if len({(p[0], p[1]) for p in parts}) == 1 and parts[0][0] in ("is", "contains"):
            values = [v for p in parts for v in p[2]]
            return [parts[0][0], parts[0][1], list(dict.fromkeys(values))]
    if operator in ("and", "or", "not", "has_done", "has_not_done"):
        raise bad(
            f"Unsupported filter '{inspect(item)}': this server takes `{operator}` only as "
            "`not` of an is/is_not filter, or `or` of filters on one dimension with one "
            "operator (see docs/api.md)."
        )
    if len(item) < 3 or len(item) > 4:
        raise bad(f"Invalid filter '{inspect(item)}'.")
    return item


def parse_filters(raw: Any) -> tuple[tuple[Filter, ...], tuple[str, ...]]:
    """Plausible filters as metrics' Filters (AND-ed), and the goals of an event:goal filter."""
    found: list[Filter] = []
    goals: list[str] = []
    for item in _flatten(raw):
        item = _simple(item)
        operator, dimension, clauses = item[0], item[1], item[2]
        if not _known_dimension(dimension):
            raise bad(f"Invalid filter '{inspect(item)}'.")
        _supported_dimension(dimension)
        if not isinstance(clauses, list) or not all(isinstance(c, str) for c in clauses):
            raise bad(f"Invalid filter '{inspect(item)}'.")
        modifiers = item[3] if len(item) == 4 else {}
        if not isinstance(modifiers, dict) or any(k != "case_sensitive" for k in modifiers):
            raise bad(f"Invalid filter '{inspect(item)}'.")
        if modifiers.get("case_sensitive") is False and operator in ("is", "is_not"):
            # contains is always case-insensitive here (as the dashboard's); is/is_not exact.
            raise bad(
                "Filters `is` and `is_not` are case-sensitive on this server: "
                "`case_sensitive: false` works with `contains` (see docs/api.md)."
            )
        two_letters = all(len(c) == 2 for c in clauses)
        if dimension == "visit:country" and operator in ("is", "is_not") and not two_letters:
            raise bad(
                "Invalid visit:country filter, visit:country needs to be a valid 2-letter "
                "country code"
            )
        if operator not in OPERATORS:
            raise bad(
                f"Unsupported filter operator `{operator}`: this server filters with is, "
                "is_not and contains (see docs/api.md)."
            )
        if not clauses:
            raise bad(f"Invalid filter '{inspect(item)}'.")
        if dimension == GOAL:
            if operator != "is":
                raise bad("Filters on event:goal take the `is` operator only (see docs/api.md).")
            goals += clauses
            continue
        if dimension == "visit:country_name":
            codes = country_codes(clauses, operator)
            operator = "is_not" if operator == "is_not" else "is"
            clauses = codes
        elif operator != "contains":
            clauses = stored_values(dimension, clauses)
        found.append(metrics.filter_from(column(dimension), operator, clauses))
    return tuple(found), tuple(dict.fromkeys(goals))


# --- Parsing ----------------------------------------------------------------------------------


def _order_by(raw: Any, metric_names: Sequence[str], dims: Sequence[str]):
    if raw is None:
        return None
    found = []
    for entry in raw:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or not (entry[0] in METRICS or _known_dimension(entry[0], time_ok=True))
            or entry[1] not in ("asc", "desc")
        ):
            raise bad(f"Invalid order_by entry '{inspect(entry)}'.")
        if entry[0] not in metric_names and entry[0] not in dims:
            raise bad(
                f"Invalid order_by entry '{inspect(entry)}'. Entry is not a queried metric or "
                "dimension."
            )
        found.append((entry[0], entry[1]))
    return tuple(found)


def _pagination(raw: Mapping[str, Any]) -> tuple[int, int]:
    unknown = [k for k in raw if k not in ("limit", "offset")]
    if unknown:
        raise bad("#/pagination: Schema does not allow additional properties.")
    limit, offset = raw.get("limit", DEFAULT_LIMIT), raw.get("offset", 0)
    _expect(limit, int, "#/pagination/limit", "Integer")
    _expect(offset, int, "#/pagination/offset", "Integer")
    if limit < 1:
        raise bad("#/pagination/limit: Expected the value to be >= 1")
    if limit > MAX_LIMIT:
        raise bad(f"#/pagination/limit: Expected the value to be <= {MAX_LIMIT}")
    if offset < 0:
        raise bad("#/pagination/offset: Expected the value to be >= 0")
    return limit, offset


def _include(raw: Mapping[str, Any]) -> dict[str, Any]:
    if any(k not in INCLUDE_KEYS for k in raw):
        raise bad("#/include: Schema does not allow additional properties.")
    for key in ("imports", "imports_meta", "time_labels", "total_rows"):
        if key in raw:
            _expect(raw[key], bool, f"#/include/{key}", "Boolean")
    return dict(raw)


def parse(body: Any, source: StatsSource) -> Query:
    """The body as a Query, or ApiError(400) with Plausible's message."""
    _check_shape(body)
    tz = source.timezone
    now = source.now()
    today = now.astimezone(ZoneInfo(tz)).date()
    if "date" in body:
        try:
            today = date.fromisoformat(body["date"])
        except ValueError:
            raise bad(f"Invalid date '{body['date']}'.") from None
    retention = int(getattr(source, "retention_days", 400))
    found_range = parse_date_range(body["date_range"], today, tz, retention, now)
    chosen = tuple(body["metrics"])
    filters, goals = parse_filters(body.get("filters", []))
    dims = tuple(body.get("dimensions", []))
    for dimension in dims:
        _supported_dimension(dimension)
    order_by = _order_by(body.get("order_by"), chosen, dims)
    include = _include(body.get("include", {}))
    limit, offset = _pagination(body.get("pagination", {}))
    comparison = (
        comparison_range(found_range, include["comparisons"], tz)
        if include.get("comparisons")
        else None
    )
    query = Query(
        chosen, dims, filters, goals, found_range, order_by, limit, offset, include,
        comparison, list(body.get("filters", [])), tz,
    )  # fmt: skip
    validate(query)
    return query


def validate(query: Query) -> None:
    """Plausible's checks of metrics against dimensions and filters, then this server's own
    limits (what it cannot answer exactly is refused, never approximated)."""
    dims = query.dimensions
    goal = bool(query.goals) or GOAL in dims
    page_filter = any(f.dimension == "path" for f in query.filters)
    for metric in query.metrics:
        if metric == "conversion_rate" and not goal:
            raise bad(
                "Metric `conversion_rate` can only be queried with event:goal filters or dimensions"
            )
        if metric == "scroll_depth" and not ("event:page" in dims or page_filter):
            raise bad(
                "Metric `scroll_depth` can only be queried with event:page filters or dimensions"
            )
        if metric == "views_per_visit" and page_filter:
            raise bad("Metric `views_per_visit` cannot be queried with a filter on `event:page`")
        if metric == "views_per_visit" and dims:
            raise bad("Metric `views_per_visit` cannot be queried with `dimensions`")
    session = [m for m in query.metrics if m in SESSION_METRICS]
    if session and any(d.startswith("event:") and d != "event:page" for d in dims):
        raise bad(
            f"Session metric(s) `{', '.join(session)}` cannot be queried along with event "
            "dimensions"
        )
    if query.include.get("time_labels") and not any(d in TIME_DIMENSIONS for d in dims):
        raise bad("Invalid include.time_labels: requires a time dimension")
    # This server's limits (docs/api.md).
    if len([d for d in dims if d in TIME_DIMENSIONS]) > 1:
        raise bad("At most one time dimension can be queried at once.")
    if goal:
        allowed = {"visitors", "events", "conversion_rate"}
        others = [m for m in query.metrics if m not in allowed]
        if others:
            raise bad(
                f"Metric(s) `{', '.join(others)}` cannot be queried with event:goal filters or "
                "dimensions on this server: visitors, events and conversion_rate can "
                "(see docs/api.md)."
            )
        if GOAL in dims and len(dims) > 1:
            raise bad("The event:goal dimension cannot be combined with other dimensions here.")
    if any(m in ("time_on_page", "scroll_depth") for m in query.metrics) and any(
        d != "event:page" for d in dims
    ):
        raise bad(
            "Metrics `time_on_page` and `scroll_depth` can only be queried without dimensions "
            "or with the event:page dimension alone on this server."
        )
    if "percentage" in query.metrics and not dims:
        raise bad("Metric `percentage` can only be queried with dimensions")


# --- Answering ----------------------------------------------------------------------------


def _round(value: float | None, digits: int = 0) -> float | int | None:
    """Half away from zero, as Elixir's round; None (no data) stays None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    scale = 10**digits
    rounded = math.floor(abs(value) * scale + 0.5) / scale
    rounded = math.copysign(rounded, value)
    return int(rounded) if digits == 0 else float(rounded)


def present(metric: str, value: float | None) -> float | int | None:
    """A metric as Plausible prints it: counts and seconds whole, rates in percent."""
    if metric in ("visitors", "visits", "pageviews", "events"):
        return round(float(value or 0))  # a Python int, whatever numpy type came in
    if metric == "views_per_visit":
        return _round(value, 2)
    if metric == "conversion_rate":
        return _round(value, 2)
    if metric == "percentage":
        return _round(value, 1)
    return _round(value)  # bounce_rate, visit_duration, time_on_page, scroll_depth


def change(metric: str, old: Any, new: Any) -> float | int | None:
    """Plausible's comparison change: points for bounce and conversion rates, else percent
    (from 0 to more is 100, 0 to 0 is 0)."""
    if old is None or new is None:
        return None
    if metric == "conversion_rate":
        return _round(new - old, 1)
    if metric == "bounce_rate":
        return new - old if old > 0 else None
    if old == 0:
        return 100 if new > 0 else 0
    return _round((new - old) / old * 100)


Row = tuple[tuple[Any, ...], dict[str, float | None]]


def _summary_values(summary: metrics.Summary) -> dict[str, float | None]:
    return {
        "visitors": summary.visitors,
        "visits": summary.visits,
        "pageviews": summary.pageviews,
        "views_per_visit": summary.views_per_visit,
        "bounce_rate": summary.bounce_rate * 100,
        "visit_duration": summary.visit_duration,
    }


def _aggregate_raw(selection: metrics.Selection, query: Query) -> dict[str, float | None]:
    found = _summary_values(metrics.summary(selection))
    core = selection.events[~(selection.events["name"] == metrics.ENGAGEMENT).to_numpy()]
    found["events"] = len(core)
    if any(m in query.metrics for m in ("time_on_page", "scroll_depth")):
        found.update(metrics.page_engagement(selection))
    return found


def _goal_rows(events: pd.DataFrame, query: Query, goals: Sequence[str]) -> list[Row]:
    """Per goal (or, without dimensions, all goals together): visitors who completed it,
    completions, and those visitors over all visitors (filters other than goal and property
    filters kept, as Plausible's conversion rate denominator)."""
    selection = metrics.select(events, query.filters)
    core = _core(selection)
    base_filters = [f for f in query.filters if not metrics.is_property(f.dimension)]
    base = metrics.select(events, base_filters) if len(base_filters) < len(query.filters) else None
    total = int((_core(base) if base is not None else core)["visitor"].nunique())

    def measure(mask: np.ndarray) -> dict[str, float | None]:
        visitors = int(core.loc[mask, "visitor"].nunique())
        rate = visitors / total * 100 if total else 0.0
        return {"visitors": visitors, "events": int(mask.sum()), "conversion_rate": rate}

    if GOAL not in query.dimensions:
        mask = np.zeros(len(core), dtype=bool)
        for goal in goals:
            mask |= metrics.goal_mask(core, goal)
        return [((), measure(mask))]
    return [((goal,), measure(metrics.goal_mask(core, goal))) for goal in goals]


def _core(selection: metrics.Selection) -> pd.DataFrame:
    events = selection.events
    return events[~(events["name"] == metrics.ENGAGEMENT).to_numpy()]


def goals_of(events: pd.DataFrame, query: Query) -> list[str]:
    """The goals an event:goal dimension lists: the filter's, else every custom event name
    (what the dashboard's Goals page lists; no goals are configured on this server)."""
    if query.goals:
        return list(query.goals)
    names = events.loc[~events["name"].isin([metrics.PAGEVIEW, metrics.ENGAGEMENT]), "name"].astype(
        str
    )
    return sorted(names.unique())


def _breakdown_values(table: pd.DataFrame, dimension: str) -> list[Row]:
    """Breakdown rows (metrics.finish's frame) as (value, metrics) rows."""
    found = []
    for record in table.to_dict("records"):
        values = {
            "visitors": record["visitors"],
            "visits": record["visits"],
            "pageviews": record["pageviews"],
            "bounce_rate": record["bounce_rate"] * 100,
            "visit_duration": record["visit_duration"],
            "events": record.get("events"),
            "time_on_page": record.get("time_on_page"),
            "scroll_depth": record.get("scroll_depth"),
        }
        if dimension == "name":
            # The tables show events in the pageviews column; the API counts pageviews.
            values["pageviews"] = values["events"] if record["value"] == metrics.PAGEVIEW else 0
        found.append(((record["value"],), values))
    return found


def _events_per_value(selection: metrics.Selection, name: str) -> dict[str, int]:
    """Events (not engagement) per value of a page or visit dimension: of the page itself,
    or of the visits that have the value."""
    core = selection.events["name"] != metrics.ENGAGEMENT
    if name == "path":
        return selection.events.loc[core.to_numpy(), "path"].astype(str).value_counts().to_dict()
    table = selection.visits
    if not len(table) or name not in table:
        return {}
    value_of = pd.Series(table[name].astype(str).to_numpy(), index=table["visit"].to_numpy())
    values = value_of.reindex(selection.visit_of[core.to_numpy()]).dropna()
    return values.value_counts().to_dict()


def _props_pageviews(selection: metrics.Selection, key: str) -> dict[str, int]:
    core = _core(selection)
    views = core[(core["name"] == metrics.PAGEVIEW).to_numpy()]
    return metrics.property_values(views, key).value_counts().to_dict()


def _interval(dimension: str, found: Range) -> str:
    """A time dimension's bucket; "time" picks as Plausible's default for the range."""
    if dimension != "time":
        return dimension.split(":")[1]
    days = (found.end - found.start) / timedelta(days=1)
    if days > 31:
        return "month"
    return "day" if days > 1 else "hour"


def _floor(moments: pd.Series, interval: str, tz: str) -> pd.Series:
    # metrics' own bucketing (private there), so a bucket here is the dashboard's bucket.
    return metrics._floor(moments.dt.tz_convert(tz), interval)


def _label(bucket: pd.Timestamp, interval: str) -> str:
    if interval == "hour":
        return bucket.strftime("%Y-%m-%d %H:%M:%S")
    return bucket.strftime("%Y-%m-%d")


def _series_raw(selection: metrics.Selection, query: Query, interval: str) -> list[Row]:
    """Per bucket of the range: visitors, visits, pageviews as the dashboard's chart counts
    them (a visit in the bucket it starts), bounce rate and duration of those visits, events."""
    tz, found = query.tz, query.range
    series = metrics.timeseries(selection, interval, tz, found.start, found.end)
    visits = selection.visits
    core = _core(selection)
    extra = pd.DataFrame(index=pd.DatetimeIndex(series["bucket"]))
    if len(visits):
        starts = _floor(visits["start"], interval, tz)
        grouped = visits.groupby(starts.to_numpy())
        extra["bounce_rate"] = grouped["bounce"].mean() * 100
        extra["visit_duration"] = grouped["duration"].mean()
    if len(core):
        extra["events"] = core.groupby(_floor(core["ts"], interval, tz).to_numpy()).size()
    rows = []
    for record in series.to_dict("records"):
        bucket = record["bucket"]
        values: dict[str, float | None] = {
            "visitors": record["visitors"],
            "visits": record["visits"],
            "pageviews": record["pageviews"],
        }
        for name in ("bounce_rate", "visit_duration", "events"):
            value = extra[name].get(bucket) if name in extra else None
            values[name] = 0.0 if value is None or pd.isna(value) else float(value)
        rows.append(((bucket,), values))
    return rows


def _rows_raw(events: pd.DataFrame, query: Query, dims: Sequence[str], filters) -> list[Row]:
    """Rows of `dims` over `events` under `filters`: one dimension by metrics' breakdown (or
    series), several by expanding the first one's values into "is" filters."""
    q = replace(query, filters=tuple(filters))
    if GOAL in dims:  # then the only dimension (validated)
        return _goal_rows(events, q, goals_of(events, q))
    if q.goals and not dims:
        return _goal_rows(events, q, q.goals)
    selection = metrics.select(events, filters)
    if not dims:
        return [((), _aggregate_raw(selection, q))]
    first, rest = dims[0], dims[1:]
    # Under a goal filter every group is a goal aggregate of its own: expand the values.
    nested = bool(rest) or bool(q.goals)
    if first in TIME_DIMENSIONS:
        rows = _series_raw(selection, q, _interval(first, q.range))
        if not nested:
            return rows
        interval = _interval(first, q.range)
        buckets = _floor(events["ts"], interval, q.tz) if len(events) else pd.Series([])
        found = []
        for (bucket,), values in rows:
            if not values["visitors"] and not values["pageviews"]:
                continue
            inside = events[(buckets == bucket).to_numpy()].reset_index(drop=True)
            found += [((bucket, *k), v) for k, v in _rows_raw(inside, q, rest, filters)]
        return _converted(found, q)
    name = column(first)
    if name == "hostname":
        values = sorted(_core(selection)["hostname"].astype(str).unique())
        table = None
    else:
        table = metrics.breakdown(selection, name)
        values = [str(v) for v in table["value"]]
    if not nested and table is not None:
        rows = _breakdown_values(table, name)
        if metrics.is_property(name):
            views = _props_pageviews(selection, name[len(metrics.PROPS_PREFIX) :])
            for (value,), found_values in rows:
                found_values["pageviews"] = views.get(value, 0)
        elif name != "name" and "events" in q.metrics:
            counts = _events_per_value(selection, name)
            for (value,), found_values in rows:
                found_values["events"] = counts.get(value, 0)
        return rows
    if len(values) > MAX_NESTED_VALUES:
        raise bad(
            f"Too many values of {first} ({len(values)}) to combine with other dimensions: "
            f"add a filter (at most {MAX_NESTED_VALUES})."
        )
    found = []
    for value in values:
        narrowed = (*filters, metrics.filter_from(name, "is", [value]))
        found += [((value, *k), v) for k, v in _rows_raw(events, q, rest, narrowed)]
    return _converted(found, q)


def _converted(rows: list[Row], query: Query) -> list[Row]:
    """Under a goal filter, only the groups where the goal was completed (as Plausible's)."""
    if not query.goals:
        return rows
    return [(key, values) for key, values in rows if values.get("events")]


def rollups_can_answer(query: Query) -> bool:
    """Whether daily rollups give this query's numbers exactly (docs/api.md): whole local days,
    no goal, and either no dimension with no filter or one visit filter "is" one value, or one
    rollup-kept dimension (or a time dimension for visitors, visits, pageviews) unfiltered."""
    if query.range.first is None or query.goals:
        return False
    chosen = set(query.metrics)
    dims = query.dimensions
    if query.comparison is not None and query.comparison.first is None:
        return False
    if not dims:
        if not query.filters:
            return chosen <= ROLLUP_METRICS | {"events"}
        if not chosen <= ROLLUP_METRICS:
            return False
        (only,) = query.filters if len(query.filters) == 1 else (None,)
        return (
            only is not None
            and only.operator == "is"
            and len(only.values) == 1
            and only.dimension in ROLLUP_COLUMNS - {"path", "name"}
        )
    if query.filters or len(dims) != 1:
        return False
    (dimension,) = dims
    if dimension in TIME_DIMENSIONS:
        return chosen <= SERIES_METRICS
    if dimension.startswith("event:props:") or dimension == GOAL:
        return False
    name = column(dimension)
    if name not in ROLLUP_COLUMNS:
        return False
    if name == "name":
        return chosen <= {"visitors", "visits", "events", "pageviews", "percentage"}
    if name == "path":
        return chosen <= ROLLUP_METRICS | {"time_on_page", "scroll_depth"}
    return chosen <= ROLLUP_METRICS


def _rows_rollups(days: list[dict[str, Any]], query: Query, found: Range) -> list[Row]:
    if not query.dimensions:
        visit_filter = None
        if query.filters:
            only = query.filters[0]
            visit_filter = (only.dimension, only.values[0])
        found = _summary_values(rollups.summary(days, visit_filter))
        if visit_filter is None:  # every event has a name: the names' events add up to all
            found["events"] = sum(row[2] for row in rollups.total(days, "names").values())
        return [((), found)]
    (dimension,) = query.dimensions
    if dimension in TIME_DIMENSIONS:
        interval = _interval(dimension, found)
        series = rollups.timeseries(days, interval, query.tz, found.start, found.end)
        return [
            (
                (r["bucket"],),
                {"visitors": r["visitors"], "visits": r["visits"], "pageviews": r["pageviews"]},
            )
            for r in series.to_dict("records")
        ]
    name = column(dimension)
    return _breakdown_values(rollups.breakdown(days, name), name)


@dataclass
class Answer:
    rows: list[Row]
    total_visitors: float  # for `percentage`
    source: str  # "rollups" or "raw"


def run(query: Query, source: StatsSource, found: Range, use_rollups: bool | None = None) -> Answer:
    """The rows of `query` over `found` (the main range or the comparison's)."""
    use = rollups_can_answer(query) if use_rollups is None else use_rollups
    if use and not rollups_can_answer(query):
        raise ValueError("rollups cannot answer this query exactly")
    want_total = "percentage" in query.metrics
    if use and found.first is not None and found.last is not None:
        days = source.days(found.first, found.last)
        rows = _rows_rollups(days, query, found)
        total = rollups.summary(days).visitors if want_total else 0
        return Answer(rows, total, "rollups")
    events = source.events(found.start, found.end)
    q = replace(query, range=found)
    rows = _rows_raw(events, q, query.dimensions, query.filters)
    total = metrics.summary(metrics.select(events, query.filters)).visitors if want_total else 0
    return Answer(rows, total, "raw")


def _time_index(query: Query) -> int | None:
    return next((n for n, d in enumerate(query.dimensions) if d in TIME_DIMENSIONS), None)


def _labels(query: Query, found: Range) -> list[str]:
    n = _time_index(query)
    if n is None:
        return []
    interval = _interval(query.dimensions[n], found)
    buckets = rollups.buckets(interval, query.tz, found.start, found.end)
    return [_clamped(b, interval, found, query.tz) for b in buckets]


def _clamped(bucket: pd.Timestamp, interval: str, found: Range, tz: str) -> str:
    """A bucket's label; a week starting before the range is labelled by the range's first
    day, as Plausible's `weekstart_not_before`."""
    if interval == "week":
        start = pd.Timestamp(found.start).tz_convert(tz)
        if bucket < start:
            return start.strftime("%Y-%m-%d")
    return _label(bucket, interval)


def _values(row_metrics: Mapping[str, float | None], query: Query, total: float) -> list[Any]:
    found = []
    for metric in query.metrics:
        if metric == "percentage":
            visitors = row_metrics.get("visitors") or 0
            found.append(present(metric, visitors / total * 100 if total else 0.0))
        else:
            found.append(present(metric, row_metrics.get(metric)))
    return found


def _dimension_labels(key: tuple[Any, ...], query: Query, found: Range) -> list[Any]:
    labels = []
    for dimension, value in zip(query.dimensions, key, strict=True):
        if dimension in TIME_DIMENSIONS:
            labels.append(_clamped(value, _interval(dimension, found), found, query.tz))
        else:
            labels.append(label(dimension, value))
    return labels


def _empty(values: Sequence[Any]) -> bool:
    return all(not v for v in values)


def _sorted(results: list[dict[str, Any]], query: Query) -> list[dict[str, Any]]:
    """Plausible's order: order_by entries in turn, else time ascending, else the first metric
    descending; dimension values ascending break ties, so the order is stable."""
    order = list(query.order_by or ())
    if not order:
        order = [(name, direction) for name, direction in _default_order(query)]
    names = list(query.dimensions) + list(query.metrics)
    tie = [(d, "asc") for d in query.dimensions if (d, "asc") not in order]
    for name, direction in reversed(order + tie):
        where = names.index(name)

        def key(row: dict[str, Any], where: int = where) -> Any:
            items = row["dimensions"] + row["metrics"]
            value = items[where]
            return (value is None, value if value is not None else 0)

        results.sort(key=key, reverse=direction == "desc")
    return results


def query(body: Any, source: StatsSource, use_rollups: bool | None = None) -> dict[str, Any]:
    """Answer a v2 query body (already authorised for its site) from `source`.
    `use_rollups` forces a path (tests compare them); None picks as `rollups_can_answer`."""
    parsed = parse(body, source)
    found = parsed.range
    answer = run(parsed, source, found, use_rollups)
    time_at = _time_index(parsed)
    results = []
    for key, row_metrics in answer.rows:
        values = _values(row_metrics, parsed, answer.total_visitors)
        if time_at is not None and _empty(values) and parsed.comparison is None:
            continue  # Plausible lists buckets with data; time_labels lists them all
        results.append(
            {"dimensions": _dimension_labels(key, parsed, found), "metrics": values, "_key": key}
        )
    if parsed.comparison is not None:
        _compare(results, parsed, source, use_rollups)
    results = _sorted(results, parsed)
    total_rows = len(results)
    page = results[parsed.offset : parsed.offset + parsed.limit]
    for row in page:
        row.pop("_key", None)
    meta: dict[str, Any] = {}
    if parsed.include.get("imports"):
        meta["imports_included"] = False  # nothing is ever imported here
    if parsed.include.get("time_labels"):
        meta["time_labels"] = _labels(parsed, found)
    if parsed.include.get("total_rows"):
        meta["total_rows"] = total_rows
    return {"results": page, "meta": meta, "query": echo(body, parsed)}


def _compare(
    results: list[dict[str, Any]], parsed: Query, source: StatsSource, use: bool | None
) -> None:
    """Each row's `comparison`: the same dimensions in the comparison range (time buckets by
    position, other values by equality), its metrics and the change."""
    other = parsed.comparison
    if other is None:
        return
    answer = run(parsed, source, other, use)
    time_at = _time_index(parsed)
    before: dict[tuple[Any, ...], list[Any]] = {}
    labels: dict[tuple[Any, ...], list[Any]] = {}
    main_buckets = _bucket_list(parsed, parsed.range)
    other_buckets = _bucket_list(parsed, other)
    for key, row_metrics in answer.rows:
        matched = key
        if time_at is not None:
            position = other_buckets.index(key[time_at]) if key[time_at] in other_buckets else -1
            if position < 0 or position >= len(main_buckets):
                continue
            matched = (*key[:time_at], main_buckets[position], *key[time_at + 1 :])
        before[matched] = _values(row_metrics, parsed, answer.total_visitors)
        labels[matched] = _dimension_labels(key, parsed, other)
    for row in results:
        key = row["_key"]
        old = before.get(key) or [present(m, 0) for m in parsed.metrics]
        if key not in labels and time_at is not None:
            position = main_buckets.index(key[time_at])
            shifted = list(key)
            shifted[time_at] = (
                other_buckets[position] if position < len(other_buckets) else key[time_at]
            )
            label = _dimension_labels(tuple(shifted), parsed, other)
        else:
            label = labels.get(key, row["dimensions"])
        row["comparison"] = {
            "dimensions": label,
            "metrics": old,
            "change": [
                change(m, o, n) for m, o, n in zip(parsed.metrics, old, row["metrics"], strict=True)
            ],
        }


def _bucket_list(parsed: Query, found: Range) -> list[pd.Timestamp]:
    n = _time_index(parsed)
    if n is None:
        return []
    interval = _interval(parsed.dimensions[n], found)
    return list(rollups.buckets(interval, parsed.tz, found.start, found.end))


def echo(body: Mapping[str, Any], parsed: Query) -> dict[str, Any]:
    """The query as understood, in Plausible's order and form."""
    tz = ZoneInfo(parsed.tz)
    end = parsed.range.label_end or parsed.range.end
    include = {k: v for k, v in parsed.include.items() if v}
    return {
        "site_id": body["site_id"],
        "metrics": list(parsed.metrics),
        "date_range": [
            parsed.range.start.astimezone(tz).isoformat(),
            end.astimezone(tz).isoformat(),
        ],
        "filters": parsed.raw_filters,
        "dimensions": list(parsed.dimensions),
        "order_by": (
            [list(e) for e in parsed.order_by] if parsed.order_by else _default_order(parsed)
        ),
        "include": include,
        "pagination": {"limit": parsed.limit, "offset": parsed.offset},
    }


def _default_order(parsed: Query) -> list[list[str]]:
    """Plausible's default: time ascending first when there is one, then the first metric."""
    n = _time_index(parsed)
    first = [parsed.metrics[0], "desc"]
    return [[parsed.dimensions[n], "asc"], first] if n is not None else [first]
