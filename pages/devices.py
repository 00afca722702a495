"""Devices: browsers and OS (with versions), device classes and screen sizes."""

import streamlit as st

from dashboard.context import load
from dashboard.tables import filterable_table
from pipeline.stats import metrics

data = load()
st.title("Devices")
versioned = data.events.assign(
    browser_version=data.events["browser"].astype(str)
    + " "
    + data.events["browser_version"].astype(str),
    os_version=data.events["os"].astype(str) + " " + data.events["os_version"].astype(str),
)
versioned_visits = metrics.visits(versioned)
tabs = st.tabs(["Browser", "Browser version", "OS", "OS version", "Device", "Screen size"])
for tab, (frame, dimension) in zip(
    tabs,
    [
        (data.events, "browser"),
        (versioned, "browser_version"),
        (data.events, "os"),
        (versioned, "os_version"),
        (data.events, "device"),
        (data.events, "screen"),
    ],
    strict=True,
):
    with tab:
        visits = data.visits if frame is data.events else versioned_visits
        filterable_table(
            metrics.breakdown(frame, dimension, table=visits), dimension, f"devices_{dimension}"
        )
