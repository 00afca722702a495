"""Sources: referrer sources and domains, and every UTM field."""

import streamlit as st

from dashboard.context import load
from dashboard.format import md_escape
from dashboard.tables import filterable_table

data = load()
st.title("Sources")
tabs = {
    "Sources": "referrer_source",
    "Referrers": "referrer",
    "UTM source": "utm_source",
    "UTM medium": "utm_medium",
    "UTM campaign": "utm_campaign",
    "UTM term": "utm_term",
    "UTM content": "utm_content",
}
for tab, dimension in zip(
    st.tabs([md_escape(label) for label in tabs]), tabs.values(), strict=True
):
    with tab:
        table = data.table(dimension)
        table = table[table["value"] != ""]
        if table.empty:
            st.caption("No visits with this field in this period.")
        else:
            filterable_table(table, dimension, f"sources_{dimension}")
