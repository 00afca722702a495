"""The dashboard's frame: backend, the view (site, dates, comparison, time zone, filters) kept
in the URL, filter chips, and navigation over the files in pages/."""

from dataclasses import replace
from datetime import date
from functools import partial

import streamlit as st

from dashboard.access import SHARE_PARAM, SHARED_LINK, Access, require_access, site_for
from dashboard.context import current_view, remove_filter, set_view, today
from dashboard.data import (
    apply_secrets,
    aws_configured,
    backend,
    compact_demo_in_background,
    refresh,
    registered_sites,
    site_timezone,
)
from dashboard.format import md_escape
from dashboard.navigation import OPERATOR, pages
from dashboard.tables import dimension_values, filter_chips, property_keys, value_label
from dashboard.unsubscribe import answer_unsubscribe
from dashboard.view import (
    COMPARISONS,
    FILTER_DIMENSIONS,
    OPERATOR_WORDS,
    PRESETS,
    PROPS,
    View,
    dimension_label,
    read_view,
    without_unknown_properties,
)
from pipeline import PipelineError
from pipeline.stats.metrics import filter_from

st.set_page_config(page_title="Analytics", page_icon="📈", layout="wide")
TIME_ZONES = ["UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Tokyo", "Australia/Sydney"]  # fmt: skip


URL_NOTES = "url_notes"  # (filters the notes were about, the notes) of the link opened
SITE_NOTE = "site_note"  # why the site a link asked for is not shown (a login's allowlist)


def chosen_values(operator: str) -> list[str]:
    """What the "Add a filter" box holds: the picked values, or the typed text for contains."""
    if operator == "contains":
        text = str(st.session_state.get("filter_text") or "").strip()
        return [text] if text else []
    return [str(v) for v in st.session_state.get("filter_values") or [] if str(v)]


def add_chosen_filter() -> None:
    """The "Add a filter" box's filter is added to the view (replacing one of the same
    dimension and operator); the box empties."""
    dimension = st.session_state.get("filter_dimension")
    operator = st.session_state.get("filter_operator") or "is"
    values = chosen_values(operator)
    if dimension and values:
        set_view(current_view().with_filter(filter_from(dimension, operator, values)))
    st.session_state["filter_values"] = []
    st.session_state["filter_text"] = ""


def opened_view(site: str) -> tuple[View, list[str]]:
    """The view of the link this session opened, on `site` (what the link asks, as far as
    this visitor may see it), and a note per filter of it that was ignored (unknown operator,
    dimension, or a property no event of the period has)."""
    params = {key: st.query_params.get_all(key) for key in st.query_params}
    if site != (st.query_params.get("site") or ""):
        # Another site than the link's: its own zone, unless the link chose one.
        params = {key: value for key, value in params.items() if key != "site"}
    view, notes = read_view(params, site, site_timezone)
    if any(item.dimension.startswith(PROPS) for item in view.filters):
        try:
            view, unknown = without_unknown_properties(view, property_keys(view))
        except PipelineError:
            unknown = []  # the page itself says the backend failed
        notes += unknown
    return view, notes


def follow_site_timezone() -> None:
    """Another site is seen in its own time zone, as Plausible does. The zone box is started
    afresh from the view (by `index`), not set through its state (see below)."""
    site = (st.session_state.get("site") or "").strip().lower()
    st.session_state.pop(SITE_NOTE, None)
    set_view(replace(current_view(), site=site, tz=site_timezone(site)))
    st.session_state.pop("tz", None)


apply_secrets()
# A report's unsubscribe link works without logging in: it carries its own secret token.
answer_unsubscribe()
# The gate comes before any data is read; the demo and local emulators are open. A share
# link or an allowlisted login narrows the sites this session may see.
access: Access = require_access(is_demo=not aws_configured())
st.session_state[OPERATOR] = access.operator

try:
    current = backend()
except PipelineError as exc:
    st.error(f"**The analytics backend is not reachable.** {md_escape(exc)}")
    st.stop()

sites = registered_sites() if access.sites is None else list(access.sites)
default_site = current.default_site or next(iter(sites), "")
if "view" not in st.session_state:
    # A link: the URL's parameters are the starting view, on a site this visitor may see.
    site, refused = site_for(access, st.query_params.get("site") or "", default_site)
    start, notes = opened_view(site)
    st.session_state["view"] = start
    if refused:
        st.session_state[SITE_NOTE] = refused
    st.session_state[URL_NOTES] = (start.filters, notes)
# The sidebar's widgets start from the view through `index`/`value`, not by presetting their
# session state: a browser reset such preset widgets to their first option on the next rerun
# (a link with ?period=7d became "Today" at the first click). Later runs keep the widget's own
# state, which the view below is built from, so `index` then names the same option.
shown = current_view()

if current.is_demo:
    st.info(
        "**Demo data.** No AWS is configured, so this runs on an embedded local emulator with "
        "generated traffic. Set `AWS_ENDPOINT_URL` (local) or `PIPELINE_STACK` (a deployed stack) "
        "to see real data.",
        icon="🧪",
    )

with st.sidebar:
    if access.shared:
        # A share link's viewer sees its one site: no picker to try others with.
        st.markdown(f"**Site:** {md_escape(access.shared)}")
        st.caption("Shared link: read only.")
    elif access.sites is not None:
        # An allowlisted login: only its sites, nothing typed in.
        st.selectbox(
            "Site",
            sites,
            index=sites.index(shown.site) if shown.site in sites else 0,
            key="site",
            on_change=follow_site_timezone,
        )
    elif sites:
        # A site no longer registered (or typed in) keeps its stored data: it stays choosable.
        chosen = [shown.site] if shown.site else []
        choices = list(dict.fromkeys([*sites, *chosen]))
        st.selectbox(
            "Site",
            choices,
            index=choices.index(shown.site) if shown.site else None,
            key="site",
            accept_new_options=True,
            on_change=follow_site_timezone,
        )
    else:
        st.text_input("Site", value=shown.site, key="site", on_change=follow_site_timezone)
    st.selectbox(
        "Period",
        list(PRESETS),
        index=list(PRESETS).index(shown.period),
        format_func=PRESETS.get,
        key="period",
    )
    first = last = None
    if st.session_state["period"] == "custom":
        now = today(shown)
        chosen = st.date_input(
            "Dates",
            value=(shown.first, shown.last) if shown.first and shown.last else (now, now),
            key="custom_range",
        )
        if (
            isinstance(chosen, tuple)
            and len(chosen) == 2
            and all(isinstance(d, date) for d in chosen)
        ):
            first, last = chosen
    st.selectbox(
        "Compare with",
        list(COMPARISONS),
        index=list(COMPARISONS).index(shown.compare),
        format_func=COMPARISONS.get,
        key="compare",
    )
    zones = TIME_ZONES if shown.tz in TIME_ZONES else [*TIME_ZONES, shown.tz]
    st.selectbox(
        "Time zone",
        zones,
        index=zones.index(shown.tz),
        key="tz",
        help="Days and hours are counted in this zone. The site's own zone (set when it is "
        "registered) reads its daily rollups; another zone reads raw events.",
    )
    st.button(
        "↻ Refresh data",
        key="refresh",
        on_click=refresh,
        help="Query results are cached for 5 minutes.",
    )
    # Lazy: the values are read only while the box is open and a dimension is chosen.
    with st.expander("Add a filter", key="filter_box", on_change="rerun") as box:
        if box.open:
            # Custom properties of the period's events join the fixed dimensions.
            keys = [f"{PROPS}{key}" for key in property_keys(shown)]
            dimension = st.selectbox(
                "Dimension",
                [*FILTER_DIMENSIONS, *keys],
                index=None,
                placeholder="Choose a dimension",
                format_func=dimension_label,  # options are plain text, not Markdown
                key="filter_dimension",
            )
            if dimension:
                # markdown-safe: the options are the literal keys of OPERATOR_WORDS
                operator = st.radio(
                    "Operator",
                    list(OPERATOR_WORDS),
                    format_func=OPERATOR_WORDS.__getitem__,
                    horizontal=True,
                    key="filter_operator",
                )
                name, word = dimension_label(dimension), OPERATOR_WORDS[operator]
                if operator == "contains":
                    # Any text: a part of values, in any case ("blog" matches "/Blog/x").
                    st.text_input(
                        f"{md_escape(name)} {md_escape(word)}",
                        key="filter_text",
                        placeholder="Part of a value",
                    )
                else:
                    # Searchable, any case. Only values of the view are offered (no filter
                    # that matches nothing by a typo); a link with `f.<dimension>=` sets any.
                    st.multiselect(
                        f"{md_escape(name)} {md_escape(word)}",
                        dimension_values(current_view(), dimension),
                        placeholder="Type to search; several values are OR-ed",
                        format_func=partial(value_label, dimension),
                        key="filter_values",
                    )
                st.button(
                    "Add filter",
                    key="filter_add",
                    on_click=add_chosen_filter,
                    disabled=not chosen_values(operator),
                    type="primary",
                )

view = current_view()
# Whatever the session's widgets say, the view stays on a site this visitor may see.
site, _ = site_for(access, access.shared or (st.session_state.get("site") or ""), default_site)
set_view(
    View(
        site=site,
        period=st.session_state["period"],
        first=first,
        last=last,
        compare=st.session_state["compare"],
        tz=st.session_state["tz"],
        filters=view.filters,
    )
)

if access.shared:
    # The link stays in the address bar (set_view rewrote it), so a reload keeps working.
    st.query_params[SHARE_PARAM] = st.session_state[SHARED_LINK]

if st.session_state.get(SITE_NOTE):
    st.warning(md_escape(st.session_state[SITE_NOTE]), icon="⚠️")
filter_chips(current_view(), remove_filter)
# What a link asked for and the dashboard ignored stays said while its filters are on screen.
noted_filters, url_notes = st.session_state.get(URL_NOTES, ((), []))
if url_notes and current_view().filters == noted_filters:
    for note in url_notes:
        st.warning(md_escape(note), icon="⚠️")

st.navigation(pages(access.operator)).run()

if current.is_demo:
    compact_demo_in_background(current.settings)
