"""The breakdown tables every page shows, and what a page says when there is nothing to show."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.context import add_filter
from dashboard.format import md_escape
from dashboard.view import FILTER_DIMENSIONS, View


def empty_state(view: View, filtered: bool) -> None:
    if filtered:
        st.info(
            "No events match these filters in this period. Remove a filter (✕ above) or widen the dates."
        )
        return
    st.info(
        f"No events for **{md_escape(view.site)}** in this period yet. Add the script to your pages "
        '(`<script defer data-domain="…" src="https://<collector>/script.js"></script>`, see the '
        "README's *Install on your site*), or pick a wider date range."
    )


def filterable_table(
    table: pd.DataFrame, dimension: str, key: str, label: str | None = None
) -> None:
    """A breakdown table; choosing a row filters the whole dashboard by that value."""
    shown = table.rename(columns={"value": label or FILTER_DIMENSIONS.get(dimension, dimension)})
    selection = st.dataframe(
        shown,
        key=key,
        hide_index=True,
        width="stretch",
        on_select="rerun" if dimension in FILTER_DIMENSIONS else "ignore",
        selection_mode="single-row",
        column_config={
            "bounce_rate": st.column_config.NumberColumn("Bounce rate", format="percent"),
            "visit_duration": st.column_config.NumberColumn("Visit duration (s)", format="%.0f"),
            "conversion_rate": st.column_config.NumberColumn("Conversion", format="percent"),
        },
    )
    rows = selection.selection.rows if dimension in FILTER_DIMENSIONS else []
    if rows:
        add_filter(dimension, str(table.iloc[rows[0]]["value"]))
        st.rerun()
