"""The dashboard's frame: backend, the view (site, dates, comparison, time zone, filters) kept
in the URL, filter chips, and navigation over the files in pages/."""

from datetime import date

import streamlit as st

from dashboard.access import require_access
from dashboard.context import current_view, remove_filter, set_view, today
from dashboard.data import (
    apply_secrets,
    aws_configured,
    backend,
    compact_demo_in_background,
    refresh,
    registered_sites,
)
from dashboard.format import md_escape
from dashboard.navigation import pages
from dashboard.view import COMPARISONS, FILTER_DIMENSIONS, PRESETS, View, view_from_params
from pipeline import PipelineError

st.set_page_config(page_title="Analytics", page_icon="📈", layout="wide")
TIME_ZONES = ["UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Tokyo", "Australia/Sydney"]  # fmt: skip

apply_secrets()
# The gate comes before any data is read; the demo and local emulators are open.
require_access(is_demo=not aws_configured())

try:
    current = backend()
except PipelineError as exc:
    st.error(f"**The analytics backend is not reachable.** {md_escape(exc)}")
    st.stop()

sites = registered_sites()
if "view" not in st.session_state:
    # A shared link: the URL's parameters are the starting view.
    default_site = current.default_site or next(iter(sites), "")
    start = view_from_params(st.query_params.to_dict(), default_site)
    st.session_state["view"] = start
    st.session_state.update(
        site=start.site, period=start.period, compare=start.compare, tz=start.tz
    )
    if start.first and start.last:
        st.session_state["custom_range"] = (start.first, start.last)

if current.is_demo:
    st.info(
        "**Demo data.** No AWS is configured, so this runs on an embedded local emulator with "
        "generated traffic. Set `AWS_ENDPOINT_URL` (local) or `PIPELINE_STACK` (a deployed stack) "
        "to see real data.",
        icon="🧪",
    )

with st.sidebar:
    if sites:
        # A site no longer registered (or typed in) keeps its stored data: it stays choosable.
        chosen = [st.session_state["site"]] if st.session_state["site"] else []
        choices = list(dict.fromkeys([*sites, *chosen]))
        st.selectbox("Site", choices, key="site", accept_new_options=True)
    else:
        st.text_input("Site", key="site")
    st.selectbox("Period", list(PRESETS), format_func=PRESETS.get, key="period")
    first = last = None
    if st.session_state["period"] == "custom":
        now = today(current_view())
        chosen = st.date_input(
            "Dates", value=st.session_state.get("custom_range", (now, now)), key="custom_range"
        )
        if (
            isinstance(chosen, tuple)
            and len(chosen) == 2
            and all(isinstance(d, date) for d in chosen)
        ):
            first, last = chosen
    st.selectbox("Compare with", list(COMPARISONS), format_func=COMPARISONS.get, key="compare")
    zones = (
        TIME_ZONES
        if st.session_state["tz"] in TIME_ZONES
        else [*TIME_ZONES, st.session_state["tz"]]
    )
    st.selectbox("Time zone", zones, key="tz")
    st.button(
        "↻ Refresh data",
        key="refresh",
        on_click=refresh,
        help="Query results are cached for 5 minutes.",
    )
    with st.expander("Add a filter"):
        dimension = st.selectbox(
            "Dimension",
            list(FILTER_DIMENSIONS),
            format_func=FILTER_DIMENSIONS.get,
            key="filter_dimension",
        )
        value = st.text_input("Value (exact)", key="filter_value")
        if st.button("Add filter", key="filter_add") and value:
            set_view(current_view().with_filter(dimension, value))

view = current_view()
set_view(
    View(
        site=st.session_state["site"].strip().lower(),
        period=st.session_state["period"],
        first=first,
        last=last,
        compare=st.session_state["compare"],
        tz=st.session_state["tz"],
        filters=view.filters,
    )
)

if current_view().filters:
    chips = st.columns(len(current_view().filters) + 1)
    for column, (dimension, value) in zip(chips, current_view().filters, strict=False):
        column.button(
            f"✕ {md_escape(FILTER_DIMENSIONS[dimension])}: {md_escape(value)}",
            key=f"chip-{dimension}",
            on_click=remove_filter,
            args=(dimension,),
        )

st.navigation(pages()).run()

if current.is_demo:
    compact_demo_in_background(current.settings)
