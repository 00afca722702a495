"""The dashboard's view (site, dates, comparison, time zone, filters) and its URL form.

Pure functions: the frame reads a `View` from `st.query_params` and writes it back, so a URL
reproduces what is on screen.

Filters in a URL (docs/dashboard.md, "Filters"): `f.<dimension>=value` is "is" (the form old
links use), `fn.<dimension>=` "is not", `fc.<dimension>=` "contains" (any case); a key repeated
gives several values, OR-ed (`f.path=/a&f.path=/b`); a custom property is `props.<key>`
(`f.props.plan=pro`). At most one filter per dimension and operator, which is what one URL key
can say.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.stats.metrics import Filter, filter_from

PRESETS = {
    "today": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "mtd": "Month to date",
    "last_month": "Last month",
    "12mo": "Last 12 months",
    "custom": "Custom range",
}
COMPARISONS = {"none": "No comparison", "previous": "Previous period", "year": "Previous year"}
FILTER_DIMENSIONS = {
    "path": "Page",
    "referrer_source": "Source",
    "referrer": "Referrer",
    "utm_source": "UTM source",
    "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign",
    "utm_term": "UTM term",
    "utm_content": "UTM content",
    "country": "Country",
    "region": "Region",
    "city": "City",
    "browser": "Browser",
    "browser_version": "Browser version",
    "os": "OS",
    "os_version": "OS version",
    "device": "Device",
    "screen": "Screen size",
    "name": "Event",
    "hostname": "Hostname",
}
PROPS = "props."  # a custom property's dimension is "props.<key>"
OPERATOR_WORDS = {"is": "is", "is_not": "is not", "contains": "contains"}
# The URL key's prefix of each operator: "f." stays "is", so links made before operators work.
URL_PREFIXES = {"is": "f", "is_not": "fn", "contains": "fc"}
OPERATOR_OF_PREFIX = {prefix: operator for operator, prefix in URL_PREFIXES.items()}
# What reads as a filter key: a prefix of letters starting with "f", a dot, the dimension.
_FILTER_KEY = re.compile(r"^(f[a-z]*)\.(.+)$")
DEFAULT_PERIOD = "30d"


def is_filterable(dimension: str) -> bool:
    """A dimension a filter can name: one of FILTER_DIMENSIONS or a property `props.<key>`."""
    return dimension in FILTER_DIMENSIONS or (
        dimension.startswith(PROPS) and bool(dimension[len(PROPS) :].strip())
    )


def dimension_label(dimension: str) -> str:
    """ "Page", "Hostname", "Property plan" (not Markdown-escaped)."""
    if dimension.startswith(PROPS):
        return f"Property {dimension[len(PROPS) :]}"
    return FILTER_DIMENSIONS.get(dimension, dimension)


def _as_filter(item: Filter | tuple[str, str]) -> Filter:
    # A (dimension, value) pair is the "is" filter of the views made before operators.
    if isinstance(item, Filter):
        return item
    dimension, value = item
    return Filter(dimension, "is", (value,))


@dataclass(frozen=True)
class View:
    site: str
    period: str = DEFAULT_PERIOD
    first: date | None = None  # custom range only, inclusive
    last: date | None = None
    compare: str = "none"
    tz: str = "UTC"
    filters: tuple[Filter, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # Frozen: normalised once, so two views of the same filters compare equal.
        object.__setattr__(self, "filters", tuple(_as_filter(f) for f in self.filters))

    def with_filter(self, dimension: str | Filter, value: str = "") -> View:
        """The view with `dimension is value` (or the given Filter), replacing the filter of
        the same dimension and operator."""
        new = dimension if isinstance(dimension, Filter) else Filter(dimension, "is", (value,))
        kept = tuple(f for f in self.filters if _slot(f) != _slot(new))
        return replace(self, filters=(*kept, new))

    def without_filter(self, dimension: str, operator: str = "is") -> View:
        return replace(
            self, filters=tuple(f for f in self.filters if _slot(f) != (dimension, operator))
        )


def _slot(item: Filter) -> tuple[str, str]:
    return item.dimension, item.operator


def period_dates(view: View, today: date) -> tuple[date, date]:
    """The first and last day (inclusive) the view covers, in the site's time zone."""
    if view.period == "custom" and view.first and view.last:
        return min(view.first, view.last), max(view.first, view.last)
    if view.period == "today":
        return today, today
    if view.period == "7d":
        return today - timedelta(days=6), today
    if view.period == "mtd":
        return today.replace(day=1), today
    if view.period == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if view.period == "12mo":
        return today - timedelta(days=364), today
    return today - timedelta(days=29), today


def comparison_dates(first: date, last: date, compare: str) -> tuple[date, date] | None:
    """The range to compare with: the same length just before, or the same days a year ago."""
    if compare == "previous":
        length = (last - first).days + 1
        return first - timedelta(days=length), first - timedelta(days=1)
    if compare == "year":
        return _year_before(first), _year_before(last)
    return None


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def utc_bounds(first: date, last: date, tz: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the local days first..last in time zone `tz`."""
    zone = ZoneInfo(tz)
    start = datetime.combine(first, time.min, zone)
    end = datetime.combine(last + timedelta(days=1), time.min, zone)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def _one(value: str | list[str] | None) -> str:
    if isinstance(value, list):
        return value[-1] if value else ""
    return value or ""


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _zone(text: str) -> str:
    try:
        ZoneInfo(text)
        return text
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"


def _all(value: str | list[str] | None) -> tuple[str, ...]:
    """Every non-empty value of a (possibly repeated) parameter, in order, once each."""
    values = value if isinstance(value, list) else [value or ""]
    return tuple(dict.fromkeys(v for v in values if v))


def filters_from_params(
    params: Mapping[str, str | list[str]],
) -> tuple[tuple[Filter, ...], list[str]]:
    """The filters of URL parameters, and one plain sentence per filter key that was ignored
    (unknown operator prefix or unknown dimension). A key without a value is no filter and
    needs no note (`f.x=`: a "(none)" row that was never added)."""
    filters: list[Filter] = []
    notes: list[str] = []
    for key, value in params.items():
        matched = _FILTER_KEY.match(key)
        if not matched:
            continue
        prefix, dimension = matched.groups()
        values = _all(value)
        if prefix not in OPERATOR_OF_PREFIX:
            known = ", ".join(f"{p}." for p in URL_PREFIXES.values())
            notes.append(
                f"Ignored the filter {key} from the link: unknown operator {prefix} (use {known})."
            )
            continue
        if not is_filterable(dimension):
            notes.append(f"Ignored the filter {key} from the link: unknown dimension {dimension}.")
            continue
        if not values:
            continue
        try:
            filters.append(filter_from(dimension, OPERATOR_OF_PREFIX[prefix], values))
        except ValueError as exc:  # the metrics' own sentence says why
            notes.append(f"Ignored the filter {key} from the link: {exc}")
    return tuple(filters), notes


def without_unknown_properties(view: View, known: Iterable[str]) -> tuple[View, list[str]]:
    """`view` without its filters on property keys not in `known` (the keys the period's
    events carry), and a note for each: a link's `f.props.plna=pro` is a typo, not a filter
    that silently matches nothing."""
    keys = set(known)
    kept, notes = [], []
    for item in view.filters:
        key = item.dimension[len(PROPS) :] if item.dimension.startswith(PROPS) else None
        if key is not None and key not in keys:
            notes.append(
                f"Ignored the filter on property {key} from the link: no event in this period "
                "has that property."
            )
        else:
            kept.append(item)
    return replace(view, filters=tuple(kept)), notes


def read_view(
    params: Mapping[str, str | list[str]],
    default_site: str,
    site_tz: Callable[[str], str] = lambda _site: "UTC",
) -> tuple[View, list[str]]:
    """`view_from_params`, and the notes on the filters it ignored (to show on the page)."""
    return view_from_params(params, default_site, site_tz), filters_from_params(params)[1]


def view_from_params(
    params: Mapping[str, str | list[str]],
    default_site: str,
    site_tz: Callable[[str], str] = lambda _site: "UTC",
) -> View:
    """A view from URL query parameters (a repeated key as a list of its values); anything
    unknown or malformed falls back to defaults (the time zone to the site's own,
    `site_tz(site)`), an unknown filter is left out (`read_view` says which)."""
    site = _one(params.get("site")) or default_site
    period = _one(params.get("period"))
    compare = _one(params.get("compare"))
    filters, _notes = filters_from_params(params)
    return View(
        site=site,
        period=period if period in PRESETS else DEFAULT_PERIOD,
        first=_day(_one(params.get("from"))),
        last=_day(_one(params.get("to"))),
        compare=compare if compare in COMPARISONS else "none",
        tz=_zone(_one(params.get("tz")) or site_tz(site)),
        filters=filters,
    )


def view_to_params(view: View, site_tz: str = "UTC") -> dict[str, str | list[str]]:
    """The URL form of `view`; the time zone only when it is not the site's own; a filter of
    several values as a repeated key (a list)."""
    params: dict[str, str | list[str]] = {"site": view.site, "period": view.period}
    if view.period == "custom" and view.first and view.last:
        params |= {"from": view.first.isoformat(), "to": view.last.isoformat()}
    if view.compare != "none":
        params["compare"] = view.compare
    if view.tz != site_tz:
        params["tz"] = view.tz
    for item in view.filters:
        values = list(item.values)
        key = f"{URL_PREFIXES[item.operator]}.{item.dimension}"
        params[key] = values[0] if len(values) == 1 else values
    return params
