"""Who may open the dashboard.

The embedded demo and a local emulator are open. A dashboard that reads real AWS is private
by default: it needs an identity provider (`[auth]` in secrets.toml, then `st.login`), or a
password (`[dashboard] password = "…"`), or an explicit `[dashboard] public = true`.
"""

from __future__ import annotations

import hmac
import os

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from pipeline.aws import is_loopback_url
from pipeline.config import ENV_ENDPOINT_URL


def _secret(section: str) -> dict:
    try:
        return dict(st.secrets.get(section, {}))
    except (FileNotFoundError, StreamlitSecretNotFoundError):
        return {}


def is_local(endpoint_url: str | None) -> bool:
    """An emulator on this machine: decided from the endpoint's parsed host, never by
    substring (`https://dynamodb.…amazonaws.com/?localhost` is real AWS)."""
    return is_loopback_url(endpoint_url)


def require_access(is_demo: bool) -> None:
    """Stop the page unless this visitor may see the data."""
    endpoint = os.environ.get(ENV_ENDPOINT_URL) or _secret("aws").get("endpoint_url")
    settings = _secret("dashboard")
    if is_demo or is_local(endpoint) or settings.get("public") is True:
        return
    if _secret("auth"):
        if not st.user.get("is_logged_in", False):
            st.title("Analytics")
            st.button("Log in", on_click=st.login, key="login")
            st.stop()
        return
    password = settings.get("password")
    if password:
        if st.session_state.get("authenticated"):
            return
        given = st.text_input("Password", type="password", key="password")
        if given and hmac.compare_digest(given.encode(), str(password).encode()):
            st.session_state["authenticated"] = True
            st.rerun()
        if given:
            st.error("Wrong password.")
        st.stop()
    st.error(
        "**This dashboard is private.** Add an identity provider (`[auth]` in secrets.toml), a "
        'password (`[dashboard] password = "…"`), or, to share it on purpose, '
        "`[dashboard] public = true`."
    )
    st.stop()
