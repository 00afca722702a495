"""Cached access to the backend for every page: the embedded demo or a configured AWS."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import pandas as pd
import streamlit as st
from botocore.exceptions import BotoCoreError, ClientError
from streamlit.errors import StreamlitSecretNotFoundError

import pipeline
from pipeline.config import (
    ENV_ENDPOINT_URL,
    ENV_EVENTS_TABLE,
    ENV_STACK,
    Settings,
)
from pipeline.enrich.sites import Site, list_sites
from pipeline.errors import PipelineError, RollupsIncomplete
from pipeline.local.demo import DEMO_SITE, load_demo
from pipeline.local.emulator import EmbeddedAWS
from pipeline.ops import health
from pipeline.resources import create_resources
from pipeline.stack import settings_from_env
from pipeline.store.compactor import compact
from pipeline.store.query import load_rollups


@dataclass(frozen=True)
class Backend:
    settings: Settings
    is_demo: bool
    default_site: str


# Streamlit Community Cloud has no environment to set: its secrets ([aws] in secrets.toml)
# become the same variables a terminal would set.
SECRET_VARIABLES = {
    "access_key_id": "AWS_ACCESS_KEY_ID",
    "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "region": "AWS_REGION",
    "stack": ENV_STACK,
    "endpoint_url": ENV_ENDPOINT_URL,
    "site": "PIPELINE_SITE",
}


def apply_secrets() -> None:
    """Copy `st.secrets["aws"]` into the environment; variables already set win."""
    try:
        section = st.secrets.get("aws", {})
    except (FileNotFoundError, StreamlitSecretNotFoundError):
        return
    for key, variable in SECRET_VARIABLES.items():
        if key in section:
            os.environ.setdefault(variable, str(section[key]))


def aws_configured() -> bool:
    return any(os.environ.get(name) for name in (ENV_ENDPOINT_URL, ENV_EVENTS_TABLE, ENV_STACK))


@st.cache_resource(show_spinner="Starting the local AWS emulator and loading demo traffic…")
def backend() -> Backend:
    """The configured AWS backend, or (when none is configured) the embedded demo.

    The frame has applied `st.secrets` to the environment before this runs."""
    if aws_configured():
        return Backend(
            settings_from_env(), is_demo=False, default_site=os.environ.get("PIPELINE_SITE", "")
        )
    emulator = EmbeddedAWS().start()
    settings = settings_from_env(endpoint_url=emulator.endpoint_url)
    create_resources(settings)
    load_demo(settings, progress=False)
    return Backend(settings, is_demo=True, default_site=DEMO_SITE)


def events(site: str, start: datetime, end: datetime) -> pd.DataFrame:
    return _events(backend().settings, site, start, end)


# The settings are part of the key: data cached for one backend is never served for another.
@st.cache_data(ttl=300, show_spinner="Loading events…")
def _events(settings: Settings, site: str, start: datetime, end: datetime) -> pd.DataFrame:
    return pipeline.load_events(site, start, end, settings=settings)


@st.cache_data(ttl=5, show_spinner=False)
def _live(settings: Settings, site: str, start: datetime, end: datetime) -> pd.DataFrame:
    return pipeline.load_events(site, start, end, settings=settings)


def live_events(site: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The last minutes, cached only seconds (the real-time page refreshes every 10 s)."""
    return _live(backend().settings, site, start, end)


@st.cache_data(ttl=60, show_spinner=False)
def _drops(settings: Settings, site: str, start: datetime, end: datetime) -> pd.Series:
    return pipeline.load_drops(site, start, end, settings=settings)


def drops(site: str, start: datetime, end: datetime) -> pd.Series:
    """Hits of `site` dropped in [start, end), by reason."""
    return _drops(backend().settings, site, start, end)


@st.cache_data(ttl=60, show_spinner=False)
def _sites(settings: Settings) -> list[Site]:
    return list_sites(settings)


def registered_sites() -> list[str]:
    """The registered domains; none when the registry can't be read (the picker then
    takes any domain)."""
    try:
        return [site.domain for site in _sites(backend().settings)]
    except (PipelineError, ClientError, BotoCoreError):
        return []


@st.cache_data(ttl=10, show_spinner=False)
def _queue_health(settings: Settings) -> dict[str, int | None]:
    return health.queue_health(settings)


def queue_health() -> dict[str, int | None]:
    return _queue_health(backend().settings)


def refresh() -> None:
    """Forget cached query results (not the backend), so the next run reads fresh data."""
    _events.clear()
    _live.clear()
    _queue_health.clear()
    _sites.clear()
    _drops.clear()
    cached_rollups.clear()


@st.cache_data(ttl=300, show_spinner="Loading daily rollups…")
def cached_rollups(
    settings: Settings, site: str, first: date, last: date, today: date
) -> list[dict]:
    # Raises (and so caches nothing) while a closed day has no rollup yet.
    return load_rollups(site, first, last, settings=settings, compute_missing=False)


def event_count(site: str, first: date, today: date) -> int:
    """Events stored from UTC day `first` through `today`: summed from the daily rollups (one
    record a day), or counted from raw events while a closed day has no rollup yet."""
    settings = backend().settings
    try:
        return sum(day["events"] for day in cached_rollups(settings, site, first, today, today))
    except RollupsIncomplete:
        return len(live_events(site, datetime.combine(first, time.min, UTC), datetime.now(UTC)))


# Compaction is CPU work in this process: started at once, it would slow the first page down.
DEMO_COMPACTION_DELAY_S = 30


@st.cache_resource(show_spinner=False)
def compact_demo_in_background(settings: Settings) -> threading.Timer:
    """Roll up the demo's closed days once, half a minute after start, as the scheduled
    compactor does on AWS; until then the overview reads raw events (the same numbers)."""
    timer = threading.Timer(DEMO_COMPACTION_DELAY_S, compact, args=(settings,))
    timer.daemon = True
    timer.start()
    return timer
