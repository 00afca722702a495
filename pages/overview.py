"""Overview: the six top-line numbers, the time chart, insights and the top breakdowns."""

import streamlit as st

from dashboard import charts
from dashboard import format as fmt
from dashboard.context import current_view, today
from dashboard.format import md_escape
from dashboard.overview import empty, overview, show_source
from dashboard.tables import empty_state, filterable_table
from pipeline import PipelineError
from pipeline.stats import anomalies, metrics

view = current_view()
if not view.site:
    st.info("Choose a site in the sidebar.")
    st.stop()
try:
    found = overview(view, today(view))
except PipelineError as exc:
    st.error(md_escape(exc))
    st.stop()
if empty(found):
    empty_state(view, bool(view.filters))
    st.stop()

st.title(f"{md_escape(view.site)} · {found.first:%d %b %Y} – {found.last:%d %b %Y}")
cards = [
    ("Unique visitors", "visitors", fmt.number),
    ("Total visits", "visits", fmt.number),
    ("Total pageviews", "pageviews", fmt.number),
    ("Views per visit", "views_per_visit", lambda v: f"{v:.2f}"),
    ("Bounce rate", "bounce_rate", fmt.percent),
    ("Visit duration", "visit_duration", fmt.duration),
]
for column, (label, field, shown) in zip(st.columns(6), cards, strict=True):
    now, before = (
        getattr(found.summary, field),
        getattr(found.previous, field) if found.previous else None,
    )
    change = metrics.percent_change(now, before) if found.previous else None
    # markdown-safe: the labels are the literals above; values and deltas are formatted numbers
    column.metric(
        label,
        shown(now),
        fmt.change(change),
        delta_color="inverse" if field == "bounce_rate" else "normal",
    )

metric = st.radio(
    "Chart",
    ["visitors", "visits", "pageviews"],
    horizontal=True,
    key="overview_metric",
    label_visibility="collapsed",
)
flagged = (
    anomalies.flag(found.series.set_index("bucket")[metric], anomalies.PERIODS[found.interval])
    if found.interval in anomalies.PERIODS
    else None
)
st.plotly_chart(
    charts.time_chart(found.series, metric, found.previous_series, flagged),
    width="stretch",
    key="overview_chart",
)

if found.insights:
    with st.expander(f"Insights ({len(found.insights)})", expanded=True):
        for line in found.insights:
            st.markdown(f"- {md_escape(line)}")

left, right = st.columns(2)
with left:
    st.subheader("Top sources")
    filterable_table(
        found.tops["referrer_source"][["value", "visitors", "visits"]],
        "referrer_source",
        "top_sources",
    )
    st.subheader("Top countries")
    filterable_table(
        found.tops["country"][["value", "visitors", "visits"]], "country", "top_countries"
    )
with right:
    st.subheader("Top pages")
    filterable_table(found.tops["path"][["value", "visitors", "pageviews"]], "path", "top_pages")
    st.subheader("Devices")
    filterable_table(found.tops["device"][["value", "visitors", "visits"]], "device", "top_devices")
show_source(found)
