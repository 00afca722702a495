"""Helpers shared by the integration and browser tests."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pipeline import load_drops, load_events
from pipeline.consume.consumer import Consumer
from pipeline.consume.worker import Worker
from pipeline.ingest.collector import start_collector


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def today_range() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(hours=1)


class Pipeline:
    def __init__(self, settings, limiter=None) -> None:
        self.settings = settings
        self.collector = start_collector(settings, limiter=limiter)
        self.stop = threading.Event()
        worker = Worker(settings, Consumer(settings).handle, batch_window=0.2, wait_time=1)
        self.thread = threading.Thread(target=worker.run, args=(self.stop,), daemon=True)
        self.thread.start()

    @property
    def pixel(self) -> str:
        return f"{self.collector.url}/pixel"

    def events(self, site: str = "example.com"):
        return load_events(site, *today_range(), settings=self.settings)

    def drops(self, site: str = "example.com") -> dict[str, int]:
        return load_drops(site, *today_range(), settings=self.settings).to_dict()

    def close(self) -> None:
        self.stop.set()
        self.collector.shutdown()
        self.thread.join(timeout=10)


def as_read(markdown: str) -> str:
    """What a reader sees of escaped Markdown source (AppTest gives the source): backslash
    escapes resolved and md_escape's invisible word joiners removed."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def fresh_embedded_demo() -> None:
    """Forget the process's cached dashboard backend and query results. The embedded demo is a
    moto server inside this process, and moto's state is global: a test of another file that
    used `mock_aws` on this xdist worker has wiped its tables, so an AppTest module starts its
    own demo rather than inherit a cached, emptied one."""
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
