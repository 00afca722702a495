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


LOOKALIKES = [
    "https://dynamodb.eu-central-1.amazonaws.com/?localhost",
    "http://127.0.0.1.nip.io:4566",
    "https://ops-localhost-gw.example.com",
    "https://user:localhost@dynamodb.eu-central-1.amazonaws.com",
    "https://dynamodb.eu-central-1.amazonaws.com/127.0.0.1#[::1]",
    "http://localhost.evil.test:4566",
    "http://[::2]:4566",
    "http://128.0.0.1:4566",
    "http://[::1",  # malformed: refused, not an error
    "localhost:4566",  # no scheme: no host to trust
    "",
    None,
]
LOOPBACKS = [
    "http://localhost:4566",
    "http://LOCALHOST:4566/",
    "http://127.0.0.1:4566",
    "http://127.8.9.10",
    "http://[::1]:4566",
    "http://[::ffff:127.0.0.1]:4566",
    "https://user:pw@localhost/path?x=1",
]


@pytest.mark.parametrize("url", LOOPBACKS)
def test_a_loopback_host_is_local(url):
    from pipeline.aws import is_loopback_url

    assert is_loopback_url(url)


@pytest.mark.parametrize("url", LOOKALIKES)
def test_a_host_that_only_mentions_loopback_is_not_local(url):
    from pipeline.aws import is_loopback_url

    assert not is_loopback_url(url)


@pytest.mark.parametrize("endpoint", LOOKALIKES[:3])
def test_a_dashboard_on_a_lookalike_endpoint_stays_private(endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    app = page(aws={"region": "eu-central-1"})
    assert not shows_data(app)
    assert "This dashboard is private" in app.error[0].value


def test_the_aws_client_uses_emulator_credentials_only_for_a_loopback_endpoint(monkeypatch):
    from pipeline.aws import client
    from pipeline.config import Settings

    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    # Nothing of this machine's: no credential files, no instance metadata.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    local = client("sqs", Settings.for_prefix("x", endpoint_url="http://127.0.0.1:4566"))
    assert local._request_signer._credentials.access_key == "testing"
    remote = client("sqs", Settings.for_prefix("x", endpoint_url=LOOKALIKES[0]))
    credentials = remote._request_signer._credentials
    assert credentials is None or credentials.access_key != "testing"


def test_make_run_binds_the_dashboard_to_loopback():
    from pathlib import Path

    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "--server.address 127.0.0.1" in run
