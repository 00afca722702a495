"""Overview: the six top-line numbers, the time chart, insights and the top breakdowns."""

import streamlit as st

from dashboard import charts
from dashboard import format as fmt
from dashboard.context import filterable_table, load
from pipeline import anomalies, metrics

data = load()
st.title(f"{data.view.site} · {data.first:%d %b %Y} – {data.last:%d %b %Y}")

now, before = (
    metrics.summary(data.events, data.visits),
    metrics.summary(data.previous) if data.previous is not None else None,
)
cards = [
    ("Unique visitors", "visitors", fmt.number),
    ("Total visits", "visits", fmt.number),
    ("Total pageviews", "pageviews", fmt.number),
    ("Views per visit", "views_per_visit", lambda v: f"{v:.2f}"),
    ("Bounce rate", "bounce_rate", fmt.percent),
    ("Visit duration", "visit_duration", fmt.duration),
]
for column, (label, field, shown) in zip(st.columns(6), cards, strict=True):
    change = metrics.percent_change(getattr(now, field), getattr(before, field)) if before else None
    column.metric(
        label,
        shown(getattr(now, field)),
        fmt.change(change),
        delta_color="inverse" if field == "bounce_rate" else "normal",
    )

days = (data.last - data.first).days + 1
interval = "hour" if days <= 2 else "day" if days <= 92 else "week"
metric = st.radio(
    "Chart",
    ["visitors", "visits", "pageviews"],
    horizontal=True,
    key="overview_metric",
    label_visibility="collapsed",
)
series = metrics.timeseries(
    data.events, interval, data.view.tz, data.start, data.end, table=data.visits
)
previous = (
    metrics.timeseries(data.previous, interval, data.view.tz)
    if data.previous is not None and len(data.previous)
    else None
)
flagged = (
    anomalies.flag(series.set_index("bucket")[metric], anomalies.PERIODS[interval])
    if interval in anomalies.PERIODS
    else None
)
st.plotly_chart(
    charts.time_chart(series, metric, previous, flagged), width="stretch", key="overview_chart"
)

found = anomalies.insights(data.events, data.view.tz)
if found:
    with st.expander(f"Insights ({len(found)})", expanded=True):
        for line in found:
            st.markdown(f"- {line}")

left, right = st.columns(2)
with left:
    st.subheader("Top sources")
    filterable_table(
        metrics.breakdown(data.events, "referrer_source", limit=10, table=data.visits)[
            ["value", "visitors", "visits"]
        ],
        "referrer_source",
        "top_sources",
    )
    st.subheader("Top countries")
    countries = metrics.breakdown(data.events, "country", limit=10, table=data.visits)[
        ["value", "visitors", "visits"]
    ]
    filterable_table(countries, "country", "top_countries")
with right:
    st.subheader("Top pages")
    filterable_table(
        metrics.breakdown(data.events, "path", limit=10, table=data.visits)[
            ["value", "visitors", "pageviews"]
        ],
        "path",
        "top_pages",
    )
    st.subheader("Devices")
    filterable_table(
        metrics.breakdown(data.events, "device", table=data.visits)[
            ["value", "visitors", "visits"]
        ],
        "device",
        "top_devices",
    )
