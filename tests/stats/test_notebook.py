"""The example notebook runs top to bottom against the emulator and prints pipeline.stats.metrics."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pipeline import load_events
from pipeline.local.demo import DEMO_SITE, load_demo
from pipeline.stats import metrics
from tests.stats.test_sql import archive_from_table, files_frame

pytestmark = pytest.mark.integration
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "analytics.ipynb"


def test_notebook_computes_the_same_metrics(server_settings, monkeypatch):
    load_demo(server_settings, days=3, progress=False)
    today = datetime.now(UTC).date()
    closed = [today - timedelta(days=n) for n in (3, 2, 1)]  # the DuckDB cell's days
    archive_from_table(server_settings, DEMO_SITE, closed)
    for name, value in {
        "AWS_ENDPOINT_URL": server_settings.endpoint_url,
        "PIPELINE_EVENTS_TABLE": server_settings.events_table,
        "PIPELINE_SITES_TABLE": server_settings.sites_table,  # load_events reads site zones
        "PIPELINE_ARCHIVE_BUCKET": server_settings.archive_bucket,
        "PIPELINE_SITE": DEMO_SITE,
        "NOTEBOOK_DAYS": "3",
    }.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent.parent)}},
    ).execute()
    printed = next(
        o["text"]
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("name") == "stdout"
    )
    shown = ast.literal_eval(printed.strip())
    end = datetime.now(UTC)
    events = load_events(
        DEMO_SITE, end - timedelta(days=3, minutes=5), end, settings=server_settings
    )
    expected = metrics.summary(events).as_dict()
    # The notebook ran a moment earlier over the same stored events.
    assert shown["pageviews"] == expected["pageviews"] and shown["visitors"] == expected["visitors"]
    # The DuckDB cell: SQL over the archived days gives metrics' numbers on the same files.
    duckdb_printed = next(
        o["text"]
        for c in notebook.cells
        if c.cell_type == "code" and "query_sql" in c.source
        for o in c.get("outputs", [])
        if o.get("name") == "stdout"
    )
    found = ast.literal_eval(duckdb_printed.strip())
    archived = metrics.summary(files_frame(server_settings, DEMO_SITE, closed)).as_dict()
    assert archived["pageviews"] > 0
    assert found["duckdb"] == pytest.approx(archived)
    assert found["missing_days"] == [str(closed[0])]  # the demo's 3 days begin after it
    assert any(
        "application/vnd.plotly.v1+json" in o.get("data", {})
        for c in notebook.cells
        for o in c.get("outputs", [])
    )
