"""The dashboard's pages, in menu order."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

# Absolute, so the pages resolve whichever script is the entry point (tests use their own).
PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"


# Session state: whether this session is offered operator pages (streamlit_app.py sets it from
# dashboard.access; a page links to Pipeline health only when it is offered).
OPERATOR = "operator_pages"


def offers_operator_pages() -> bool:
    return bool(st.session_state.get(OPERATOR, True))


def pages(operator: bool = True) -> list[st.Page]:
    """The pages offered; operator pages (Pipeline health: the queues of every site) only to
    an operator, never to a share link's viewer or a login allowed on some sites only."""
    offered = [
        st.Page(PAGES_DIR / "overview.py", title="Overview", icon="📊", default=True),
        st.Page(PAGES_DIR / "top_pages.py", title="Pages", icon="📄"),
        st.Page(PAGES_DIR / "sources.py", title="Sources", icon="🔗"),
        st.Page(PAGES_DIR / "geography.py", title="Geography", icon="🌍"),
        st.Page(PAGES_DIR / "devices.py", title="Devices", icon="💻"),
        st.Page(PAGES_DIR / "goals.py", title="Goals & funnels", icon="🎯"),
        st.Page(PAGES_DIR / "realtime.py", title="Real time", icon="⚡"),
        st.Page(PAGES_DIR / "explorer.py", title="Explorer", icon="🔎"),
    ]
    if operator:
        offered.append(st.Page(PAGES_DIR / "health.py", title="Pipeline health", icon="🩺"))
    return offered
