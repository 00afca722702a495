"""Who may open the dashboard: private by default on real AWS, open for the demo and locally."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

GATED = """
from dashboard.access import require_access
import streamlit as st
require_access(is_demo={demo})
st.markdown("THE DATA")
"""


@pytest.fixture(autouse=True)
def no_endpoint(monkeypatch) -> Iterator[None]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    yield


def page(demo: bool = False, **secrets) -> AppTest:
    app = AppTest.from_string(GATED.format(demo=demo), default_timeout=30)
    for section, values in secrets.items():
        app.secrets[section] = values
    return app.run()


def shows_data(app: AppTest) -> bool:
    return any(m.value == "THE DATA" for m in app.markdown)


def test_a_real_aws_dashboard_without_access_settings_is_private():
    app = page(aws={"stack": "analytics", "region": "eu-central-1"})
    assert not shows_data(app)
    assert "This dashboard is private" in app.error[0].value


def test_a_password_opens_it_and_a_wrong_one_does_not():
    app = page(dashboard={"password": "correct horse"})
    assert not shows_data(app)
    app.text_input(key="password").set_value("wrong").run()
    assert not shows_data(app) and app.error[0].value == "Wrong password."
    app.text_input(key="password").set_value("correct horse").run()
    assert shows_data(app)


def test_an_identity_provider_asks_to_log_in():
    app = page(
        auth={
            "redirect_uri": "http://localhost:8501/oauth2callback",
            "cookie_secret": "x" * 32,
            "client_id": "id",
            "client_secret": "s",
            "server_metadata_url": "https://accounts.example/.well-known/openid-configuration",
        }
    )
    assert not shows_data(app)
    assert app.button(key="login").label == "Log in"


@pytest.mark.parametrize(
    ("demo", "secrets", "endpoint"),
    [
        pytest.param(True, {}, None, id="embedded-demo"),
        pytest.param(False, {}, "http://127.0.0.1:4566", id="local-emulator"),
        pytest.param(False, {"dashboard": {"public": True}}, None, id="public-on-purpose"),
    ],
)
def test_open_cases(demo, secrets, endpoint, monkeypatch):
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    assert shows_data(page(demo, **secrets))
