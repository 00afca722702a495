"""What every page needs: the current view, its data, and filter actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import TypeVar
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from dashboard.data import events, rollup_days, site_timezone
from dashboard.format import md_escape
from dashboard.navigation import pages
from dashboard.view import (
    View,
    comparison_dates,
    period_dates,
    utc_bounds,
    view_to_params,
)
from pipeline import PipelineError
from pipeline.errors import RollupsIncomplete
from pipeline.stats import metrics
from pipeline.store import rollups

T = TypeVar("T")


@dataclass
class Data:
    """The view's numbers, read only as a page needs them.

    An unfiltered view in the site's own time zone answers `summary`, `breakdown` and
    `cities` from the daily rollups plus today's raw events; raw events (`events`,
    `previous`, `unfiltered`) are read only when a page asks for them, or when the view is
    filtered, in another zone, or the rollups are not computed yet (the same numbers)."""

    view: View
    first: date
    last: date
    start: datetime  # UTC bounds of first..last in the view's time zone
    end: datetime
    site_tz: str = "UTC"

    @property
    def rollups_answer(self) -> bool:
        """Whether the view's numbers come from rollups (unfiltered, in the site's zone)."""
        return self.days is not None

    @cached_property
    def days(self) -> list[dict] | None:
        """The rollup records of the view's local days; None when rollups can't answer."""
        if self.view.filters or self.view.tz != self.site_tz:
            return None
        try:
            return _stopping_on_errors(
                lambda: rollup_days(
                    self.view.site, self.first, self.last, self.view.tz, today(self.view)
                )
            )
        except RollupsIncomplete:
            return None  # not compacted yet: raw events give the same numbers

    @cached_property
    def unfiltered(self) -> pd.DataFrame:
        return _stopping_on_errors(lambda: events(self.view.site, self.start, self.end))

    @cached_property
    def events(self) -> pd.DataFrame:
        """The view's raw events, filtered (read on first use)."""
        return metrics.filter_events(self.unfiltered, dict(self.view.filters))

    @cached_property
    def previous(self) -> pd.DataFrame | None:
        """The comparison range's raw events, filtered; None without a comparison."""
        compared = comparison_dates(self.first, self.last, self.view.compare)
        if not compared:
            return None
        bounds = utc_bounds(*compared, self.view.tz)
        found = _stopping_on_errors(lambda: events(self.view.site, *bounds))
        return metrics.filter_events(found, dict(self.view.filters))

    @cached_property
    def visits(self) -> pd.DataFrame:
        """The visits of `events`, computed once per page run and shared by every metric
        (browser_version/os_version as "Chrome 120", as the breakdowns show them)."""
        return metrics.visits(rollups.with_versions(self.events))

    @cached_property
    def summary(self) -> metrics.Summary:
        if self.days is not None:
            return rollups.summary(self.days)
        return metrics.summary(self.events, self.visits)

    def breakdown(self, dimension: str, limit: int | None = None) -> pd.DataFrame:
        """`metrics.breakdown` of the view for `dimension` (value, visitors, visits, pageviews,
        bounce_rate, visit_duration): what every page's tables show. `browser_version` and
        `os_version` values are "Chrome 120" (name and version)."""
        if self.days is not None:
            return rollups.breakdown(self.days, dimension, limit)
        return metrics.breakdown(
            rollups.with_versions(self.events), dimension, limit, table=self.visits
        )

    def cities(self) -> pd.DataFrame:
        """Located visitors by city (city, lat, lon, visitors), for the map."""
        if self.days is not None:
            return rollups.cities(self.days)
        located = self.events.dropna(subset=["lat", "lon"])
        grouped = located.groupby(["city", "lat", "lon"], observed=True)["visitor"].nunique()
        return grouped.rename("visitors").reset_index()


def _stopping_on_errors(read: Callable[[], T]) -> T:
    """A backend read; a failure stops the page with its plain sentence."""
    try:
        return read()
    except RollupsIncomplete:
        raise  # not a failure: the caller reads raw events instead
    except PipelineError as exc:
        st.error(md_escape(exc))
        st.stop()
        raise  # st.stop() raises; this only tells type checkers


def today(view: View) -> date:
    return datetime.now(ZoneInfo(view.tz)).date()


def current_view() -> View:
    if "view" not in st.session_state:
        # A page run without the frame: Streamlit's legacy pages/ discovery does that for the
        # first request of a fresh server when the URL names a page. Declaring the navigation
        # switches the legacy mode off, and the rerun goes through streamlit_app.py.
        st.navigation(pages())
        st.rerun()
    return st.session_state["view"]


def set_view(view: View) -> None:
    st.session_state["view"] = view
    st.query_params.from_dict(view_to_params(view, site_timezone(view.site)))


def add_filter(dimension: str, value: str) -> None:
    set_view(current_view().with_filter(dimension, value))


def remove_filter(dimension: str) -> None:
    set_view(current_view().without_filter(dimension))


def load() -> Data:
    """The view's data, read lazily (see `Data`); stops the page with a plain sentence when
    the backend fails or there is nothing to show. Cheap: an unfiltered view in the site's
    zone checks emptiness from the rollups' summary, without reading raw events."""
    view = current_view()
    if not view.site:
        st.info("Choose a site in the sidebar.")
        st.stop()
    first, last = period_dates(view, today(view))
    start, end = utc_bounds(first, last, view.tz)
    data = Data(view, first, last, start, end, site_timezone(view.site))
    nothing = (
        not (data.summary.visits or data.summary.pageviews)
        if data.rollups_answer
        else data.events.empty
    )
    if nothing:
        from dashboard.tables import empty_state  # tables import this module

        empty_state(view, bool(view.filters))
        st.stop()
    return data
