"""Pipeline health shows, per site with recipients, what was last sent and the last error."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

import dashboard.access  # noqa: F401 - imported first: AppTest's path also sees tests/dashboard
from pipeline import aws
from pipeline.config import resource_env
from pipeline.ops import recipients

APP = str(Path(__file__).resolve().parents[1] / "dashboard_entry.py")
HEALTH = str(Path(__file__).resolve().parents[2] / "pages" / "health.py")


def health_page(settings, monkeypatch) -> AppTest:
    for name, value in resource_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PIPELINE_SITE", "example.com")
    st.cache_data.clear()
    st.cache_resource.clear()  # another test's backend
    app = AppTest.from_file(APP, default_timeout=120)
    app.secrets["dashboard"] = {"public": True}
    app.query_params["site"] = "example.com"
    try:
        app.run()
        return app.switch_page(HEALTH).run()
    finally:
        st.cache_resource.clear()


def test_health_shows_the_last_error_escaped_and_a_missing_sender(settings, monkeypatch):
    recipients.add_recipient(settings, "example.com", "ann@example.org", {"weekly"})
    error = "weekly report for 2026-11-16: SES rejected the message *now*"
    aws.client("dynamodb", settings).update_item(
        TableName=settings.sites_table,
        Key=recipients.item_key("example.com"),
        UpdateExpression="SET last_error = :e, last_error_at = :at",
        ExpressionAttributeValues={":e": {"S": error}, ":at": {"S": "2026-11-23T00:15:00+00:00"}},
    )
    page = health_page(settings, monkeypatch)
    assert not page.exception, page.exception
    assert any("No sender configured" in w.value for w in page.warning)
    errors = [e.value for e in page.error]
    assert any("SES rejected the message \\*now\\*" in e for e in errors), errors
    table = page.dataframe[-1].value
    assert list(table["Recipients"]) == [1] and table["Last sent"].iloc[0] == "nothing yet"
    assert table["Last error"].iloc[0] == f"{error} (2026-11-23T00:15:00+00:00)"  # plain text
