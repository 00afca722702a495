"""Cached access to the backend for every page: the embedded demo or a configured AWS."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

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
from pipeline.local.live import LiveDemo, start_live_demo
from pipeline.ops import health
from pipeline.resources import create_resources
from pipeline.stack import settings_from_env
from pipeline.stats.metrics import Filter
from pipeline.store import rollups
from pipeline.store.compactor import SCHEDULE_MINUTES, compact
from pipeline.store.query import load_rollups
from pipeline.store.storage import day_bounds


@dataclass(frozen=True)
class Backend:
    settings: Settings
    is_demo: bool
    default_site: str
    live: LiveDemo | None = None  # the living demo's sender, collector and worker (demo only)


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


LIVE_DEMO_DELAY_S = 10.0
# "off": a still demo, for tests that compare the page with numbers read a moment later.
ENV_DEMO_LIVE = "PIPELINE_DEMO_LIVE"


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
    # Its closed days rolled up as it loads: the first page reads one record a day, not every
    # raw event back through the emulator.
    load_demo(settings, progress=False, roll_up=True)
    # Visits keep arriving through the real pixel path (collector → SQS → worker), once the
    # first page has had the CPU to itself.
    live = (
        None
        if os.environ.get(ENV_DEMO_LIVE) == "off"
        else start_live_demo(settings, delay_s=LIVE_DEMO_DELAY_S)
    )
    return Backend(settings, is_demo=True, default_site=DEMO_SITE, live=live)


def events(
    site: str, start: datetime, end: datetime, filters: Iterable[Filter] = ()
) -> pd.DataFrame:
    """The events of [start, end); with `filters`, only those of the people who could pass
    them (what `metrics.select` needs to apply them: a filtered view of a busy site reads a
    few people's events, not every row)."""
    return _events(backend().settings, site, start, end, tuple(filters))


# The settings are part of the key: data cached for one backend is never served for another.
@st.cache_data(ttl=300, show_spinner="Loading events…")
def _events(
    settings: Settings, site: str, start: datetime, end: datetime, filters: tuple[Filter, ...]
) -> pd.DataFrame:
    return pipeline.load_events(
        site, start, end, settings=settings, people_matching=filters or None
    )


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
    settings: Settings, site: str, first: date, last: date, today: date, tz: str = "UTC"
) -> list[dict]:
    """The stored rollups of the closed local days (zone `tz`) from `first` up to `last` or
    the day before `today`, whichever is earlier. Raises `RollupsIncomplete` (and so caches
    nothing) while one of them has no up-to-date rollup of this zone yet."""
    last = min(last, today - timedelta(days=1))
    if last < first:
        return []
    # "Now" at the start of `today`: every day asked for is closed, none is read raw here.
    now = day_bounds(today, tz)[0]
    return load_rollups(site, first, last, tz=tz, settings=settings, now=now, compute_missing=False)


def event_count(site: str, first: date, today: date) -> int:
    """Events stored from day `first` through today (the site's local days): summed from the
    daily rollups (one record a day), or counted from raw events while a closed day has no
    rollup yet."""
    tz = site_timezone(site)
    local_today = max(today, datetime.now(ZoneInfo(tz)).date())
    try:
        return sum(day["events"] for day in rollup_days(site, first, local_today, tz, local_today))
    except RollupsIncomplete:
        return len(live_events(site, datetime.combine(first, time.min, UTC), datetime.now(UTC)))


# The demo's closed days are rolled up as it loads (`load_demo(roll_up=True)`); the compactor
# then has only the days that close while the demo runs (at midnight), on the AWS schedule.
DEMO_COMPACTION_DELAY_S = 30
DEMO_COMPACTION_EVERY_S = SCHEDULE_MINUTES * 60


@st.cache_resource(show_spinner=False)
def compact_demo_in_background(settings: Settings) -> threading.Thread:
    """Compact the demo half a minute after start and then every `SCHEDULE_MINUTES`, as the
    scheduled compactor does on AWS: a day that closes while the demo runs gets its rollup
    (until then the overview reads it raw, with the same numbers)."""
    thread = threading.Thread(
        target=compact_every,
        args=(settings, DEMO_COMPACTION_DELAY_S, DEMO_COMPACTION_EVERY_S, threading.Event()),
        name="demo-compactor",
        daemon=True,
    )
    thread.start()
    return thread


def compact_every(
    settings: Settings, delay_s: float, every_s: float, stop: threading.Event
) -> None:
    """`compact` after `delay_s`, then every `every_s` until `stop` is set; a failed round is
    logged (its type only) and the next one retries."""
    if stop.wait(delay_s):
        return
    while True:
        try:
            compact(settings)
        except (PipelineError, ClientError, BotoCoreError) as exc:
            logging.getLogger(__name__).warning("demo compaction failed: %s", type(exc).__name__)
        if stop.wait(every_s):
            return


# ---- a site's zone and its days from rollups (issue 13) ----


def site_timezone(site: str) -> str:
    """The site's registered time zone (cached with the registry); "UTC" when unknown."""
    try:
        sites = _sites(backend().settings)
    except (PipelineError, ClientError, BotoCoreError):
        return "UTC"
    return next((entry.timezone for entry in sites if entry.domain == site), "UTC")


def _open_day(site: str, day: date, tz: str, with_join: bool) -> dict:
    """Today's record, computed from its raw events with the rollups' own code. The reads go
    through the raw-event cache, so `↻ Refresh data` renews it as it renews everything."""
    start, end = day_bounds(day, tz)
    today = events(site, start, end)
    if not with_join:  # the range starts today: no day before it to join
        return rollups.compute(today, site, day, tz)
    before = rollups.read_before(lambda lo, hi: events(site, lo, hi), today, day, tz)
    return rollups.compute(today, site, day, tz, before)


def rollup_days(site: str, first: date, last: date, tz: str, today: date) -> list[dict]:
    """One record per local day (zone `tz`) from `first` to `last`, up to `today`: closed days
    from their stored rollups, today computed from its raw events with the same code. Raises
    `RollupsIncomplete` while a closed day has no up-to-date rollup yet."""
    settings = backend().settings
    records = list(cached_rollups(settings, site, first, last, today, tz))
    if first <= today <= last:
        records.append(_open_day(site, today, tz, today > first))
    return records
