"""Pages, as Plausible's report: top pages (visitors, pageviews, bounce rate, time on page,
scroll depth), entry pages (entrances) and exit pages (exits, exit rate). A row click filters by
that page; with a comparison on, each row shows its change of visitors."""

import pandas as pd
import streamlit as st

from dashboard.context import load
from dashboard.tables import filterable_table

# The columns of each tab, in Plausible's order; "change" only when the view compares.
TOP = ["value", "visitors", "pageviews", "bounce_rate", "time_on_page", "scroll_depth", "change"]
ENTRY = ["value", "visitors", "visits", "bounce_rate", "visit_duration", "change"]
EXIT = ["value", "visitors", "visits", "exit_rate", "change"]


def columns(table: pd.DataFrame, wanted: list[str]) -> pd.DataFrame:
    return table[[column for column in wanted if column in table]]


data = load()
st.title("Pages")
top, entry, exit_ = st.tabs(["Top pages", "Entry pages", "Exit pages"])
with top:
    # Bounce rate of the visits that entered on the page; time on page and scroll depth from
    # engagement events ("—" where a page has none).
    filterable_table(columns(data.table("path"), TOP), "path", "pages_top")
with entry:
    filterable_table(
        columns(data.table("entry_page"), ENTRY), "entry_page", "pages_entry", "Entry page"
    )
with exit_:
    filterable_table(columns(data.table("exit_page"), EXIT), "exit_page", "pages_exit", "Exit page")
