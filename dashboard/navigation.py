"""The dashboard's pages, in menu order."""

from __future__ import annotations

import streamlit as st


def pages() -> list[st.Page]:
    return [
        st.Page("pages/overview.py", title="Overview", icon="📊", default=True),
        st.Page("pages/top_pages.py", title="Pages", icon="📄"),
        st.Page("pages/sources.py", title="Sources", icon="🔗"),
        st.Page("pages/geography.py", title="Geography", icon="🌍"),
        st.Page("pages/devices.py", title="Devices", icon="💻"),
        st.Page("pages/goals.py", title="Goals & funnels", icon="🎯"),
        st.Page("pages/realtime.py", title="Real time", icon="⚡"),
        st.Page("pages/explorer.py", title="Explorer", icon="🔎"),
        st.Page("pages/health.py", title="Pipeline health", icon="🩺"),
    ]
