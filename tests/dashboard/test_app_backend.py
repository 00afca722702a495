"""Where the dashboard reads from: environment or st.secrets, and errors in words."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.data import SECRET_VARIABLES
from tests.support import as_read

APP = str(Path(__file__).resolve().parents[1] / "dashboard_entry.py")


@pytest.fixture
def fresh_backend(monkeypatch) -> Iterator[None]:
    saved = dict(os.environ)
    for variable in SECRET_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()
    # apply_secrets writes os.environ directly; put it back as it was.
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.integration
def test_secrets_name_a_stack_that_does_not_exist_and_the_page_says_so(fresh_backend, moto_server):
    app = AppTest.from_file(APP, default_timeout=60)
    app.secrets["aws"] = {
        "stack": "no-such-stack",
        "endpoint_url": moto_server,
        "region": "us-east-1",
    }
    app.run()
    assert not app.exception
    (error,) = app.error
    shown = as_read(error.value)
    assert "Stack 'no-such-stack' does not exist" in shown and "python -m infra deploy" in shown
    assert not any("Demo data" in info.value for info in app.info)


def test_an_unreachable_endpoint_is_explained_on_the_page(fresh_backend, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PIPELINE_SITE", "example.com")
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert any("Cannot reach http://127.0.0.1:9" in as_read(error.value) for error in app.error)
