"""The dashboard's frame: page setup, backend banner and navigation."""

import streamlit as st

from dashboard.data import backend
from pipeline import PipelineError

st.set_page_config(page_title="Analytics", page_icon="📈", layout="wide")

try:
    current = backend()
except PipelineError as exc:
    st.error(f"**The analytics backend is not reachable.** {exc}")
    st.stop()
if current.is_demo:
    st.info(
        "**Demo data.** No AWS is configured, so this runs on an embedded local emulator with "
        "generated traffic. Set `AWS_ENDPOINT_URL` (local) or deploy the stack to see real data.",
        icon="🧪",
    )

navigation = st.navigation(
    [st.Page("pages/overview.py", title="Overview", icon="📊", default=True)]
)
navigation.run()
