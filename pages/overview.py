"""Overview: the six top-line numbers, the time chart, insights and the top breakdowns."""

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard import format as fmt
from dashboard.context import current_view, today
from dashboard.format import md_escape
from dashboard.overview import allowed_intervals, empty, overview, show_source
from dashboard.tables import empty_state, filterable_table
from dashboard.view import COMPARISONS
from pipeline import PipelineError
from pipeline.stats import anomalies, metrics

INTERVAL_LABELS = {"hour": "Hourly", "day": "Daily", "week": "Weekly", "month": "Monthly"}

view = current_view()
if not view.site:
    st.info("Choose a site in the sidebar.")
    st.stop()
try:
    # The interval control is drawn below the cards; its last choice is read here.
    found = overview(view, today(view), st.session_state.get("overview_interval"))
except PipelineError as exc:
    st.error(md_escape(exc))
    st.stop()
if empty(found):
    empty_state(view, bool(view.filters))
    st.stop()

# The title's dates and the cards' values and changes go through dashboard.format: one way
# to write each measure, "—" for a change without a baseline.
st.title(f"{md_escape(view.site)} · {found.first:%d %b %Y} – {found.last:%d %b %Y}")
CARDS = [
    ("Unique visitors", "visitors"),
    ("Total visits", "visits"),
    ("Total pageviews", "pageviews"),
    ("Views per visit", "views_per_visit"),
    ("Bounce rate", "bounce_rate"),
    ("Visit duration", "visit_duration"),
]
against = COMPARISONS.get(view.compare, "").lower()
for column, (label, field) in zip(st.columns(6), CARDS, strict=True):
    now_value = getattr(found.summary, field)
    if found.previous is None:  # no comparison chosen: no delta at all
        # markdown-safe: the labels are the literals above; the value is a formatted number
        column.metric(label, fmt.measure(field, now_value))
        continue
    change = metrics.percent_change(now_value, getattr(found.previous, field))
    # markdown-safe: the labels are the literals above; values and deltas are formatted numbers
    column.metric(
        label,
        fmt.measure(field, now_value),
        fmt.change(change),
        delta_color=fmt.change_color(change, lower_is_better=field == "bounce_rate"),
        delta_arrow=fmt.change_arrow(change),
        delta_description=f"vs {against}" if change is not None else "no baseline",
        help=None
        if change is not None
        else "Nothing to compare with: the comparison period has no data (or zero).",
    )

chart_metric, chart_interval = st.columns([3, 2])
# markdown-safe: the options are column names, shown through the literal labels of METRIC_LABELS
metric = chart_metric.radio(
    "Chart",
    list(charts.METRIC_LABELS),
    format_func=charts.METRIC_LABELS.__getitem__,
    horizontal=True,
    key="overview_metric",
    label_visibility="collapsed",
)
intervals = allowed_intervals(found.first, found.last)
# A choice the new period doesn't offer (hours of a year) becomes the one actually drawn.
if st.session_state.get("overview_interval") not in intervals:
    st.session_state["overview_interval"] = found.interval
# markdown-safe: the options are fixed interval names shown through the literal INTERVAL_LABELS
chart_interval.radio(
    "Interval",
    intervals,
    format_func=INTERVAL_LABELS.__getitem__,
    horizontal=True,
    key="overview_interval",
    label_visibility="collapsed",
)
moment = pd.Timestamp.now(tz="UTC")
# Only whole buckets are judged: the one still filling is low by construction.
whole = charts.settled(found.series, moment)
whole = whole[~whole["partial"]]
flagged = (
    anomalies.flag(whole.set_index("bucket")[metric], anomalies.PERIODS[found.interval])
    if found.interval in anomalies.PERIODS
    else None
)
st.plotly_chart(
    charts.time_chart(found.series, metric, found.previous_series, flagged, now=moment),
    width="stretch",
    key="overview_chart",
)

if found.insights:
    with st.expander(f"Insights ({len(found.insights)})", expanded=True):
        for line in found.insights:
            st.markdown(f"- {md_escape(line)}")


def shown(table: pd.DataFrame, measure: str) -> pd.DataFrame:
    """A top table's columns on the overview: value, visitors, `measure`, and the change per
    row when a comparison is on."""
    return table[[c for c in ("value", "visitors", measure, "change") if c in table]]


left, right = st.columns(2)
with left:
    st.subheader("Top sources")
    filterable_table(
        shown(found.tops["referrer_source"], "visits"),
        "referrer_source",
        "top_sources",
    )
    st.subheader("Top countries")
    filterable_table(shown(found.tops["country"], "visits"), "country", "top_countries")
with right:
    st.subheader("Top pages")
    filterable_table(shown(found.tops["path"], "pageviews"), "path", "top_pages")
    st.subheader("Devices")
    filterable_table(shown(found.tops["device"], "visits"), "device", "top_devices")
show_source(found)
