"""The dashboard's view (site, dates, comparison, time zone, filters) and its URL form.

Pure functions: the frame reads a `View` from `st.query_params` and writes it back, so a URL
reproduces what is on screen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
}
DEFAULT_PERIOD = "30d"


@dataclass(frozen=True)
class View:
    site: str
    period: str = DEFAULT_PERIOD
    first: date | None = None  # custom range only, inclusive
    last: date | None = None
    compare: str = "none"
    tz: str = "UTC"
    filters: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def with_filter(self, dimension: str, value: str) -> View:
        kept = tuple((d, v) for d, v in self.filters if d != dimension)
        return replace(self, filters=(*kept, (dimension, value)))

    def without_filter(self, dimension: str) -> View:
        return replace(self, filters=tuple((d, v) for d, v in self.filters if d != dimension))


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


def view_from_params(
    params: Mapping[str, str | list[str]],
    default_site: str,
    site_tz: Callable[[str], str] = lambda _site: "UTC",
) -> View:
    """A view from URL query parameters; anything unknown or malformed falls back to defaults
    (the time zone to the site's own, `site_tz(site)`)."""
    site = _one(params.get("site")) or default_site
    period = _one(params.get("period"))
    compare = _one(params.get("compare"))
    filters = tuple(
        (key[2:], _one(value))
        for key, value in params.items()
        if key.startswith("f.") and key[2:] in FILTER_DIMENSIONS and _one(value)
    )
    return View(
        site=site,
        period=period if period in PRESETS else DEFAULT_PERIOD,
        first=_day(_one(params.get("from"))),
        last=_day(_one(params.get("to"))),
        compare=compare if compare in COMPARISONS else "none",
        tz=_zone(_one(params.get("tz")) or site_tz(site)),
        filters=filters,
    )


def view_to_params(view: View, site_tz: str = "UTC") -> dict[str, str]:
    """The URL form of `view`; the time zone only when it is not the site's own."""
    params = {"site": view.site, "period": view.period}
    if view.period == "custom" and view.first and view.last:
        params |= {"from": view.first.isoformat(), "to": view.last.isoformat()}
    if view.compare != "none":
        params["compare"] = view.compare
    if view.tz != site_tz:
        params["tz"] = view.tz
    params |= {f"f.{dimension}": value for dimension, value in view.filters}
    return params
