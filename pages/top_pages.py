"""Pages: top, entry and exit pages."""

import streamlit as st

from dashboard.context import filterable_table, load
from pipeline.stats import metrics

data = load()
st.title("Pages")
top, entry, exit_ = st.tabs(["Top pages", "Entry pages", "Exit pages"])
with top:
    filterable_table(metrics.breakdown(data.events, "path", table=data.visits), "path", "pages_top")
with entry:
    filterable_table(
        metrics.breakdown(data.events, "entry_page", table=data.visits),
        "entry_page",
        "pages_entry",
        "Entry page",
    )
with exit_:
    filterable_table(
        metrics.breakdown(data.events, "exit_page", table=data.visits),
        "exit_page",
        "pages_exit",
        "Exit page",
    )
