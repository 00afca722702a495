"""Real time: current visitors, pageviews per minute over 30 minutes, active pages, a live feed."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from dashboard import format as fmt
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
            live_events(view.site, now - timedelta(minutes=30), now), view.filters
        )
    except PipelineError as exc:
        st.error(md_escape(exc))
        return
    st.metric(
        "Current visitors (last 5 minutes)",
        fmt.number(metrics.current_visitors(recent, pd.Timestamp(now))),
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
    # The minutes on the axis read in the view's time zone, like the feed's times.
    per_minute = minutes.reindex(full, fill_value=0).rename("Pageviews")
    per_minute.index = per_minute.index.tz_convert(view.tz).tz_localize(None)
    st.bar_chart(per_minute, x_label=f"Minute ({view.tz})", y_label="Pageviews")
    left, right = st.columns(2)
    active = recent[recent["ts"] > now - metrics.CURRENT_WINDOW]
    left.subheader("Active pages")
    left.dataframe(
        fmt.styled(metrics.breakdown(active, "path")[["value", "visitors"]]),
        hide_index=True,
        width="stretch",
        column_config={
            "value": st.column_config.TextColumn("Page"),
            "visitors": fmt.measure_column("visitors", "Visitors"),
        },
    )
    right.subheader("Live feed")
    # Engagement events (a page left) are no hits a person would recognise in a feed.
    hits = recent[recent["name"] != metrics.ENGAGEMENT]
    right.dataframe(fmt.live_feed(hits, view.tz), hide_index=True, width="stretch")
    st.caption(
        f"Times in {md_escape(view.tz)}. Updated {now.astimezone(ZoneInfo(view.tz)):%H:%M:%S}, every 10 seconds."
    )


live()
