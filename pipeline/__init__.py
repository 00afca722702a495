"""Privacy-first web analytics, in the stages a hit goes through: `ingest` (contract,
collector, tracker) → `consume` (the queue's consumer) → `enrich` (the steps) → `store`
(DynamoDB, rollups) → `stats` (metrics, anomalies); `ops` watches it, `local` runs it all on one
machine. `config`, `errors`, `aws`, `stack` and `resources` are shared by every stage.

Notebooks start here::

    import pipeline
    events = pipeline.load_events("example.com", "2026-11-01", "2026-11-08")

The query API (and pandas with it) is imported on first use, so the Lambda consumer, which
imports `pipeline.consume.consumer`, ships and loads without pandas.
"""

from importlib import import_module
from typing import Any

from pipeline.config import Settings
from pipeline.errors import BackendUnavailable, MalformedMessage, MissingResource, PipelineError

# The names notebooks use, imported on first use. Modules too, so `from pipeline import
# metrics, rollups` keeps working wherever the code lives.
_LAZY = {
    "COLUMNS": ("pipeline.store.query", "COLUMNS"),
    "load_events": ("pipeline.store.query", "load_events"),
    "load_drops": ("pipeline.store.query", "load_drops"),
    "query_sql": ("pipeline.stats.sql", "query_sql"),
    "settings_from_env": ("pipeline.stack", "settings_from_env"),
    "metrics": ("pipeline.stats.metrics", None),
    "anomalies": ("pipeline.stats.anomalies", None),
    "rollups": ("pipeline.store.rollups", None),
}

__all__ = [
    "COLUMNS",
    "BackendUnavailable",
    "MalformedMessage",
    "MissingResource",
    "PipelineError",
    "Settings",
    "anomalies",
    "load_drops",
    "load_events",
    "metrics",
    "query_sql",
    "rollups",
    "settings_from_env",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        found = import_module(module)
        return getattr(found, attribute) if attribute else found
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
