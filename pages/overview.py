"""Overview: visitors, pageviews and the daily chart for a site and date range."""

from datetime import UTC, datetime, time, timedelta

import plotly.express as px
import streamlit as st

from dashboard.data import backend, events
from pipeline import PipelineError, metrics

current = backend()
today = datetime.now(UTC).date()
site = st.sidebar.text_input("Site", value=current.default_site, key="site")
chosen = st.sidebar.date_input("Dates", value=(today - timedelta(days=27), today), key="dates")
first, last = (chosen[0], chosen[-1]) if isinstance(chosen, tuple) and chosen else (today, today)

st.title(f"Overview · {site or 'no site'}")
if not site:
    st.info("Choose a site in the sidebar.")
    st.stop()
try:
    frame = events(
        site,
        datetime.combine(first, time.min, UTC),
        datetime.combine(last + timedelta(days=1), time.min, UTC),
    )
except PipelineError as exc:
    st.error(str(exc))
    st.stop()

if frame.empty:
    st.info(
        "No events for this site and period yet. Add the pixel to a page: "
        '`<img src="https://<collector>/pixel?d=your-site.com" alt="">`'
    )
    st.stop()

visitors, views = st.columns(2)
visitors.metric("Unique visitors", f"{metrics.unique_visitors(frame):,}")
views.metric("Pageviews", f"{metrics.pageviews(frame):,}")
series = metrics.daily_series(frame)
chart = px.line(
    series, x="day", y=["visitors", "pageviews"], markers=True, labels={"value": "", "day": ""}
)
st.plotly_chart(chart, width="stretch")
