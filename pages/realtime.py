"""Real time: current visitors, pageviews per minute over 30 minutes, active pages, a live feed."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from dashboard.context import current_view
from dashboard.data import live_events
from dashboard.format import md_escape
from pipeline import PipelineError
from pipeline.stats import metrics

st.title("Real time")


@st.fragment(run_every=timedelta(seconds=10))
def live() -> None:
    view, now = current_view(), datetime.now(UTC)
    try:
        recent = metrics.filter_events(
            live_events(view.site, now - timedelta(minutes=30), now), dict(view.filters)
        )
    except PipelineError as exc:
        st.error(md_escape(exc))
        return
    st.metric(
        "Current visitors (last 5 minutes)",
        f"{metrics.current_visitors(recent, pd.Timestamp(now)):,}",
    )
    if recent.empty:
        st.info("Nobody in the last 30 minutes.")
        return
    minutes = (
        recent[recent["name"] == metrics.PAGEVIEW]["ts"].dt.floor("min").value_counts().sort_index()
    )
    full = pd.date_range(
        (now - timedelta(minutes=29)).replace(second=0, microsecond=0),
        now.replace(second=0, microsecond=0),
        freq="min",
        tz="UTC",
    )
    st.bar_chart(minutes.reindex(full, fill_value=0).rename("pageviews"))
    left, right = st.columns(2)
    active = recent[recent["ts"] > now - metrics.CURRENT_WINDOW]
    left.subheader("Active pages")
    left.dataframe(
        metrics.breakdown(active, "path")[["value", "visitors"]].rename(columns={"value": "Page"}),
        hide_index=True,
        width="stretch",
    )
    right.subheader("Live feed")
    feed = recent.sort_values("ts", ascending=False).head(50)[
        ["ts", "name", "path", "referrer_source", "country", "device"]
    ]
    right.dataframe(feed, hide_index=True, width="stretch")
    st.caption(f"Updated {now:%H:%M:%S} UTC, every 10 seconds.")


live()
