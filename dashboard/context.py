"""What every page needs: the current view, its data, and filter actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import cached_property
from typing import TypeVar
from zoneinfo import ZoneInfo

import numpy as np
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
        """The range's events the view's filters select from: with filters, only those of the
        people who could pass them (`load_events(people_matching=...)`: the same selection
        from a fraction of the rows)."""
        return _stopping_on_errors(
            lambda: events(self.view.site, self.start, self.end, self.view.filters)
        )

    @cached_property
    def selection(self) -> metrics.Selection:
        """The view's filters applied with Plausible's semantics (`metrics.select`: a page
        filter keeps whole visits that viewed the page), computed once per page run and shared
        by every metric."""
        return _selected(self.unfiltered, self.view)

    @cached_property
    def events(self) -> pd.DataFrame:
        """The view's raw events that match its filters (read on first use)."""
        return self.selection.events

    @cached_property
    def visits(self) -> pd.DataFrame:
        """The visits of the selection (browser_version/os_version as "Chrome 120")."""
        return self.selection.visits

    @cached_property
    def visit_events(self) -> pd.DataFrame:
        """Every event of the selected visits (what a funnel follows through a visit)."""
        chosen = self.selection
        if chosen.source is None or chosen.source_visit_of is None:
            return chosen.events
        inside = np.isin(chosen.source_visit_of, chosen.visits["visit"].to_numpy())
        return chosen.source[inside]

    @cached_property
    def compared(self) -> tuple[date, date] | None:
        return comparison_dates(self.first, self.last, self.view.compare)

    @cached_property
    def previous_selection(self) -> metrics.Selection | None:
        """The comparison range's selection; None without a comparison."""
        if not self.compared:
            return None
        bounds = utc_bounds(*self.compared, self.view.tz)
        found = _stopping_on_errors(lambda: events(self.view.site, *bounds, self.view.filters))
        return _selected(found, self.view)

    @cached_property
    def previous(self) -> pd.DataFrame | None:
        """The comparison range's matching raw events; None without a comparison."""
        chosen = self.previous_selection
        return chosen.events if chosen is not None else None

    @cached_property
    def previous_days(self) -> list[dict] | None:
        """The comparison range's rollup records when rollups answer the view (None else)."""
        if self.days is None or not self.compared:
            return None
        first, last = self.compared
        try:
            return _stopping_on_errors(
                lambda: rollup_days(self.view.site, first, last, self.view.tz, today(self.view))
            )
        except RollupsIncomplete:
            return None

    @cached_property
    def summary(self) -> metrics.Summary:
        if self.days is not None:
            return rollups.summary(self.days)
        return metrics.summary(self.selection)

    def breakdown(self, dimension: str, limit: int | None = None) -> pd.DataFrame:
        """`metrics.breakdown` of the view for `dimension` (value, visitors, visits, pageviews,
        bounce_rate, visit_duration, and what the dimension adds: time on page and scroll
        depth for pages, exit rate for exit pages, events for events and properties): what
        every page's tables show. `browser_version` and `os_version` values are "Chrome 120"
        (name and version). Rollups answer every dimension they carry (a record of an older
        version, without the new measures, counts as missing: raw events answer)."""
        if self.days is not None and rollups_carry(dimension):
            return rollups.breakdown(self.days, dimension, limit)
        return metrics.breakdown(self.selection, dimension, limit)

    def previous_breakdown(self, dimension: str) -> pd.DataFrame | None:
        """`breakdown` of the comparison range (every row); None without a comparison."""
        if not self.compared:
            return None
        if self.previous_days is not None and rollups_carry(dimension):
            return rollups.breakdown(self.previous_days, dimension)
        chosen = self.previous_selection
        return metrics.breakdown(chosen, dimension) if chosen is not None else None

    def table(self, dimension: str, limit: int | None = None) -> pd.DataFrame:
        """`breakdown`, with each row's change of visitors against the comparison range
        (column "change", percent or None) when the view compares."""
        current = self.breakdown(dimension, limit)
        if not self.compared:
            return current
        return metrics.with_change(current, self.previous_breakdown(dimension))

    def cities(self) -> pd.DataFrame:
        """Located visitors by city (city, lat, lon, visitors), for the map."""
        if self.days is not None:
            return rollups.cities(self.days)
        located = self.events.dropna(subset=["lat", "lon"])
        grouped = located.groupby(["city", "lat", "lon"], observed=True)["visitor"].nunique()
        return grouped.rename("visitors").reset_index()


def rollups_carry(dimension: str) -> bool:
    """Whether the daily rollups hold `dimension`'s breakdown (properties, hostnames: raw)."""
    return dimension in (*rollups.ROLLUP_DIMENSIONS, "path", "name")


def _selected(found: pd.DataFrame, view: View) -> metrics.Selection:
    """`metrics.select` of `found` by the view's filters (on the stored columns: a version
    filter says "120"), its events and visits then shown with "Chrome 120" versions."""
    chosen = metrics.select(found, view.filters)
    return replace(
        chosen,
        events=rollups.with_versions(chosen.events),
        visits=rollups.with_versions(chosen.visits),
    )


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


def remove_filter(dimension: str, operator: str = "is") -> None:
    set_view(current_view().without_filter(dimension, operator))


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
