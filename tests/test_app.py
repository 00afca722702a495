"""The dashboard's first page on the embedded default: real emulator, real demo data."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pipeline import load_events, metrics
from pipeline.demo import DEMO_SITE

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


@pytest.fixture(scope="module")
def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=180).run()


def test_embedded_default_shows_demo_data_with_a_label(app):
    assert not app.exception
    assert any("Demo data" in info.value for info in app.info)


def test_numbers_equal_pipeline_metrics_for_the_same_range(app):
    from dashboard.data import backend

    today = datetime.now(UTC).date()
    start = datetime.combine(today - timedelta(days=27), time.min, UTC)
    events = load_events(DEMO_SITE, start, start + timedelta(days=28), settings=backend().settings)
    shown = {metric.label: metric.value for metric in app.metric}
    assert shown == {
        "Unique visitors": f"{metrics.unique_visitors(events):,}",
        "Pageviews": f"{metrics.pageviews(events):,}",
    }
    assert metrics.pageviews(events) > 1000


def test_changing_the_range_changes_the_numbers(app):
    before = {metric.label: metric.value for metric in app.metric}
    today = datetime.now(UTC).date()
    app.sidebar.date_input(key="dates").set_value((today - timedelta(days=2), today)).run()
    after = {metric.label: metric.value for metric in app.metric}
    assert not app.exception
    assert after != before


def test_an_unknown_site_shows_an_empty_state_not_an_error(app):
    app.sidebar.text_input(key="site").set_value("nobody.example").run()
    assert not app.exception and not app.error
    assert any("No events" in info.value for info in app.info)
