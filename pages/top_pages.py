"""Pages: top, entry and exit pages. A row click filters by that page."""

import streamlit as st

from dashboard.context import load
from dashboard.tables import filterable_table

data = load()
st.title("Pages")
top, entry, exit_ = st.tabs(["Top pages", "Entry pages", "Exit pages"])
with top:
    # A page's `visits` are the visits that entered there: shown as "Entrances".
    filterable_table(data.breakdown("path"), "path", "pages_top")
with entry:
    filterable_table(data.breakdown("entry_page"), "entry_page", "pages_entry", "Entry page")
with exit_:
    filterable_table(data.breakdown("exit_page"), "exit_page", "pages_exit", "Exit page")
