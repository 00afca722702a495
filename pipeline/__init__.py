"""Privacy-first web analytics: pixel contract, collector, enrichment, consumer, storage.

Notebooks start here::

    import pipeline
    events = pipeline.load_events("example.com", "2026-11-01", "2026-11-08")

The query API (and pandas with it) is imported on first use, so the Lambda consumer, which
imports `pipeline.consumer`, ships and loads without pandas.
"""

from importlib import import_module
from typing import Any

from pipeline.config import Settings, settings_from_env
from pipeline.errors import BackendUnavailable, MalformedMessage, MissingResource, PipelineError

_LAZY = {
    "COLUMNS": "pipeline.query",
    "load_events": "pipeline.query",
    "load_drops": "pipeline.query",
}

__all__ = [
    "COLUMNS",
    "BackendUnavailable",
    "MalformedMessage",
    "MissingResource",
    "PipelineError",
    "Settings",
    "load_drops",
    "load_events",
    "settings_from_env",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
