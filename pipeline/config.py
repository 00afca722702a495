"""Connection settings: every environment variable the pipeline reads is named here.

An explicit argument beats the environment, which beats the default. The standard AWS
variables (`AWS_ENDPOINT_URL`, `AWS_REGION` / `AWS_DEFAULT_REGION`, credentials) work as
boto3 documents them; our own names all start with `PIPELINE_`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

ENV_ENDPOINT_URL = "AWS_ENDPOINT_URL"
ENV_REGIONS = ("AWS_REGION", "AWS_DEFAULT_REGION")
ENV_EVENTS_TABLE = "PIPELINE_EVENTS_TABLE"
ENV_SALTS_TABLE = "PIPELINE_SALTS_TABLE"
ENV_SITES_TABLE = "PIPELINE_SITES_TABLE"
ENV_QUEUE_NAME = "PIPELINE_QUEUE_NAME"
ENV_DLQ_NAME = "PIPELINE_DLQ_NAME"
ENV_RETENTION_DAYS = "PIPELINE_RETENTION_DAYS"
ENV_RESPECT_DNT = "PIPELINE_RESPECT_DNT"
ENV_STACK = "PIPELINE_STACK"
ENV_SHARDS = "PIPELINE_SHARDS"
ENV_SPAM_LIST_URL = "PIPELINE_SPAM_LIST_URL"
ENV_DATACENTRE_SOURCES = "PIPELINE_DATACENTRE_SOURCES"
ENV_ARCHIVE_BUCKET = "PIPELINE_ARCHIVE_BUCKET"
ENV_HOT_DAYS = "PIPELINE_HOT_DAYS"
ENV_REPORT_SENDER = "PIPELINE_REPORT_SENDER"
ENV_DASHBOARD_URL = "PIPELINE_DASHBOARD_URL"

DEFAULT_REGION = "us-east-1"
DEFAULT_PREFIX = "analytics"
# Matomo's community-maintained referrer-spam list (pipeline/enrich/spam.py).
MATOMO_SPAM_LIST_URL = (
    "https://raw.githubusercontent.com/matomo-org/referrer-spam-list/master/spammers.txt"
)
# Cloud providers' published address ranges (pipeline/enrich/datacentres.py says why these four).
DATACENTRE_SOURCES = (
    "https://ip-ranges.amazonaws.com/ip-ranges.json",
    "https://www.gstatic.com/ipranges/cloud.json",
    "https://docs.oracle.com/en-us/iaas/tools/public_ip_ranges.json",
    "https://digitalocean.com/geo/google.csv",
)


@dataclass(frozen=True)
class Settings:
    """Where the pipeline's AWS resources are and how it treats data."""

    endpoint_url: str | None = None
    region: str = DEFAULT_REGION
    events_table: str = f"{DEFAULT_PREFIX}-events"
    salts_table: str = f"{DEFAULT_PREFIX}-salts"
    sites_table: str = f"{DEFAULT_PREFIX}-sites"
    queue_name: str = f"{DEFAULT_PREFIX}-inbound"
    dlq_name: str = f"{DEFAULT_PREFIX}-dlq"
    # Raw events expire after this many days (DynamoDB TTL). Thirteen months keeps
    # year-over-year comparisons possible.
    retention_days: int = 400
    # Off by default: no personal data is stored, so DNT changes nothing about privacy
    # (Plausible's reasoning). Site owners who promise more can switch it on.
    respect_dnt: bool = False
    # Write partitions per day for busy sites, as ((site, n), ...): one partition takes about
    # 1,000 writes a second. Only ever raise n for a site (readers read shards 0..n-1).
    shards: tuple[tuple[str, int], ...] = ()
    # Where the referrer-spam list is fetched from (a URL or a file); "" never fetches.
    spam_list_url: str = MATOMO_SPAM_LIST_URL
    # Where the data-centre address ranges are fetched from (URLs or files); () never fetches,
    # which switches the `datacentre` drop off (e.g. for a pixel proxied through a cloud server).
    datacentre_sources: tuple[str, ...] = DATACENTRE_SOURCES
    # The S3 bucket of the columnar history: one Parquet file per site and closed UTC day
    # (pipeline/store/archive.py), kept `retention_days`.
    archive_bucket: str = f"{DEFAULT_PREFIX}-archive"
    # Raw DynamoDB items live this many days (the hot window); closed days are read from the
    # archive, so a longer window only costs storage (docs/storage.md, "Archive").
    hot_days: int = 7
    # The SES-verified address reports and traffic notifications are sent from; "" sends none
    # (pipeline/ops/reports.py).
    report_sender: str = ""
    # Where the dashboard is served (https://analytics.example.com/): the base of the links in
    # reports, share links and unsubscribe links; "" leaves links out.
    dashboard_url: str = ""

    def shards_for(self, site: str) -> int:
        return max(1, dict(self.shards).get(site, 1))

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with every non-None override applied."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def for_prefix(cls, prefix: str, **overrides: Any) -> Settings:
        """Settings whose resource names all start with `prefix` (one stack, one prefix)."""
        base = cls(
            events_table=f"{prefix}-events",
            salts_table=f"{prefix}-salts",
            sites_table=f"{prefix}-sites",
            queue_name=f"{prefix}-inbound",
            dlq_name=f"{prefix}-dlq",
            archive_bucket=bucket_name(f"{prefix}-archive"),
        )
        return base.with_overrides(**overrides)


def bucket_name(text: str) -> str:
    """`text` as a valid S3 bucket name: lower case, only letters, digits, `-` and `.`,
    3 to 63 characters, starting and ending with a letter or digit."""
    name = re.sub(r"[^a-z0-9.-]+", "-", text.lower()).strip("-.")[:63].strip("-.")
    return name if len(name) >= 3 else f"{name}-archive".strip("-")[:63]


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def parse_shards(text: str) -> tuple[tuple[str, int], ...]:
    """`"big.example=8,other.example=2"` → (("big.example", 8), ("other.example", 2))."""
    pairs = (item.split("=", 1) for item in text.split(",") if "=" in item)
    return tuple((site.strip().lower(), int(n)) for site, n in pairs)


def parse_sources(raw: str) -> tuple[str, ...]:
    """Comma-separated URLs or files; an empty value is no source at all."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def env_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from the environment alone, with explicit keyword arguments winning; no I/O.

    `pipeline.stack.settings_from_env` adds what a named stack (`PIPELINE_STACK`) says.
    """
    env = os.environ if env is None else env
    found: dict[str, Any] = {
        "endpoint_url": env.get(ENV_ENDPOINT_URL) or None,
        "region": next((env[name] for name in ENV_REGIONS if env.get(name)), None),
        "events_table": env.get(ENV_EVENTS_TABLE) or None,
        "salts_table": env.get(ENV_SALTS_TABLE) or None,
        "sites_table": env.get(ENV_SITES_TABLE) or None,
        "queue_name": env.get(ENV_QUEUE_NAME) or None,
        "dlq_name": env.get(ENV_DLQ_NAME) or None,
        "retention_days": int(env[ENV_RETENTION_DAYS]) if env.get(ENV_RETENTION_DAYS) else None,
        "respect_dnt": _truthy(env[ENV_RESPECT_DNT]) if env.get(ENV_RESPECT_DNT) else None,
        "shards": parse_shards(env[ENV_SHARDS]) if env.get(ENV_SHARDS) else None,
        "spam_list_url": env.get(ENV_SPAM_LIST_URL),
        "archive_bucket": env.get(ENV_ARCHIVE_BUCKET) or None,
        "hot_days": int(env[ENV_HOT_DAYS]) if env.get(ENV_HOT_DAYS) else None,
        "report_sender": env.get(ENV_REPORT_SENDER) or None,
        "dashboard_url": env.get(ENV_DASHBOARD_URL) or None,
        "datacentre_sources": parse_sources(env[ENV_DATACENTRE_SOURCES])
        if ENV_DATACENTRE_SOURCES in env
        else None,
    }
    unknown = set(overrides) - {f.name for f in fields(Settings)}
    if unknown:
        raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return Settings().with_overrides(**found).with_overrides(**overrides)


def resource_env(settings: Settings) -> dict[str, str]:
    """The environment that makes another process's `env_settings()` find `settings`'
    endpoint and resources (for the servers and workers a test or the local mode starts)."""
    names = {
        ENV_ENDPOINT_URL: settings.endpoint_url or "",
        ENV_EVENTS_TABLE: settings.events_table,
        ENV_SALTS_TABLE: settings.salts_table,
        ENV_SITES_TABLE: settings.sites_table,
        ENV_QUEUE_NAME: settings.queue_name,
        ENV_DLQ_NAME: settings.dlq_name,
        ENV_ARCHIVE_BUCKET: settings.archive_bucket,
        ENV_HOT_DAYS: str(settings.hot_days),
        ENV_REPORT_SENDER: settings.report_sender,
        ENV_DASHBOARD_URL: settings.dashboard_url,
    }
    return {name: value for name, value in names.items() if value}


def stack_to_resolve(env: Mapping[str, str] | None = None, **overrides: Any) -> str | None:
    """The stack whose resource names are still to be read: `PIPELINE_STACK`, unless a table
    name is given outright."""
    env = os.environ if env is None else env
    named = env.get(ENV_EVENTS_TABLE) or overrides.get("events_table")
    return None if named else env.get(ENV_STACK) or None
