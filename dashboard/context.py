"""What every page needs: the current view, its data, and filter actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from dashboard.data import events
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
from pipeline.stats import metrics


@dataclass
class Data:
    view: View
    first: date
    last: date
    start: datetime  # UTC bounds of first..last in the view's time zone
    end: datetime
    events: pd.DataFrame  # filtered
    previous: pd.DataFrame | None  # the comparison range, filtered
    unfiltered: pd.DataFrame

    @cached_property
    def visits(self) -> pd.DataFrame:
        """The visits of `events`, computed once per page run and shared by every metric."""
        return metrics.visits(self.events)

    def breakdown(self, dimension: str, limit: int | None = None) -> pd.DataFrame:
        """`metrics.breakdown` of the view for `dimension` (value, visitors, visits, pageviews,
        bounce_rate, visit_duration): what every page's tables show."""
        return metrics.breakdown(self.events, dimension, limit, table=self.visits)

    def cities(self) -> pd.DataFrame:
        """Located visitors by city (city, lat, lon, visitors), for the map."""
        located = self.events.dropna(subset=["lat", "lon"])
        grouped = located.groupby(["city", "lat", "lon"], observed=True)["visitor"].nunique()
        return grouped.rename("visitors").reset_index()


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
    st.query_params.from_dict(view_to_params(view))


def add_filter(dimension: str, value: str) -> None:
    set_view(current_view().with_filter(dimension, value))


def remove_filter(dimension: str) -> None:
    set_view(current_view().without_filter(dimension))


def load() -> Data:
    """The view's events (filtered) and its comparison range; stops the page with a plain
    sentence when the backend fails or there is nothing to show."""
    view = current_view()
    if not view.site:
        st.info("Choose a site in the sidebar.")
        st.stop()
    first, last = period_dates(view, today(view))
    start, end = utc_bounds(first, last, view.tz)
    try:
        unfiltered = events(view.site, start, end)
        previous = None
        compared = comparison_dates(first, last, view.compare)
        if compared:
            previous = metrics.filter_events(
                events(view.site, *utc_bounds(*compared, view.tz)), dict(view.filters)
            )
    except PipelineError as exc:
        st.error(md_escape(exc))
        st.stop()
    filtered = metrics.filter_events(unfiltered, dict(view.filters))
    if filtered.empty:
        from dashboard.tables import empty_state  # tables import this module

        empty_state(view, bool(view.filters))
        st.stop()
    return Data(view, first, last, start, end, filtered, previous, unfiltered)
