"""Privacy-first web analytics: pixel contract, collector, enrichment, consumer, storage.

Notebooks start here::

    import pipeline
    events = pipeline.load_events("example.com", "2026-11-01", "2026-11-08")
"""

from pipeline.config import Settings, settings_from_env
from pipeline.errors import BackendUnavailable, MalformedMessage, MissingResource, PipelineError
from pipeline.query import COLUMNS, load_drops, load_events

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
