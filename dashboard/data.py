"""Cached access to the backend for every page: the embedded demo or a configured AWS."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import streamlit as st

import pipeline
from pipeline.config import ENV_ENDPOINT_URL, ENV_EVENTS_TABLE, Settings, settings_from_env
from pipeline.demo import DEMO_SITE, load_demo
from pipeline.emulator import EmbeddedAWS
from pipeline.resources import create_resources


@dataclass(frozen=True)
class Backend:
    settings: Settings
    is_demo: bool
    default_site: str


def aws_configured() -> bool:
    return bool(os.environ.get(ENV_ENDPOINT_URL) or os.environ.get(ENV_EVENTS_TABLE))


@st.cache_resource(show_spinner="Starting the local AWS emulator and loading demo traffic…")
def backend() -> Backend:
    """The configured AWS backend, or (when none is configured) the embedded demo."""
    if aws_configured():
        return Backend(
            settings_from_env(), is_demo=False, default_site=os.environ.get("PIPELINE_SITE", "")
        )
    emulator = EmbeddedAWS().start()
    settings = settings_from_env(endpoint_url=emulator.endpoint_url)
    create_resources(settings)
    load_demo(settings, progress=False)
    return Backend(settings, is_demo=True, default_site=DEMO_SITE)


@st.cache_data(ttl=300, show_spinner="Loading events…")
def events(site: str, start: datetime, end: datetime) -> pd.DataFrame:
    return pipeline.load_events(site, start, end, settings=backend().settings)
