"""Explorer: the raw events with a search box, column filters, pages, and downloads."""

import streamlit as st

from dashboard.context import load
from dashboard.export import to_csv, to_parquet
from dashboard.format import md_escape

data = load()
st.title("Explorer")
frame = data.events.assign(
    props=data.events["props"].map(lambda p: ", ".join(f"{k}={v}" for k, v in p.items()))
)
frame = frame.assign(ts=frame["ts"].dt.tz_convert(data.view.tz))

search = st.text_input("Search every column", key="explorer_search")
if search:
    text = frame.astype(str).apply(
        lambda column: column.str.contains(search, case=False, regex=False)
    )
    frame = frame[text.any(axis=1)]
columns = st.multiselect(
    "Filter columns",
    [c for c in frame.columns if c not in ("ts", "visitor", "props", "lat", "lon", "screen_width")],
    key="explorer_columns",
)
for column in columns:
    chosen = st.multiselect(
        md_escape(column), sorted(frame[column].astype(str).unique()), key=f"explorer_{column}"
    )
    if chosen:
        frame = frame[frame[column].astype(str).isin(chosen)]

size = st.selectbox("Rows per page", [50, 100, 500], key="explorer_size")
pages = max(1, -(-len(frame) // size))
page = st.number_input(
    f"Page (of {pages:,})", min_value=1, max_value=pages, value=1, key="explorer_page"
)
st.caption(f"{len(frame):,} events")
st.dataframe(
    frame.iloc[(page - 1) * size : page * size],
    hide_index=True,
    width="stretch",
    key="explorer_table",
)

left, right = st.columns(2)
left.download_button(
    "Download CSV",
    to_csv(frame),
    f"{data.view.site}-events.csv",
    "text/csv",
    key="explorer_csv",
)
right.download_button(
    "Download Parquet",
    to_parquet(frame),
    f"{data.view.site}-events.parquet",
    "application/vnd.apache.parquet",
    key="explorer_parquet",
)
