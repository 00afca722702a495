"""Where the Stats API reads a site's numbers: raw events and daily rollups, behind one small
protocol so the query code (`v2`, `v1`) is pure and tests can hand it events of their own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import pandas as pd

from pipeline import aws
from pipeline.config import Settings
from pipeline.store import rollups
from pipeline.store.query import load_events, load_rollups
from pipeline.store.storage import day_bounds


class StatsSource(Protocol):
    """One site's data. `events` is `pipeline.load_events`'s frame for [start, end); `days`
    one rollup per local day first..last (inclusive, in `timezone`), the open day computed on
    the fly; `now` the clock the presets ("day", "7d", ...) count from."""

    site: str
    timezone: str

    def events(self, start: datetime, end: datetime) -> pd.DataFrame: ...

    def days(self, first: date, last: date) -> list[dict[str, Any]]: ...

    def now(self) -> datetime: ...


class StoreSource:
    """`StatsSource` over DynamoDB: one boto3 client, reused by every read of a request."""

    def __init__(
        self,
        settings: Settings,
        site: str,
        timezone: str = "UTC",
        now: Callable[[], datetime] | None = None,
        dynamodb: Any = None,
    ) -> None:
        self.settings = settings
        self.site = site
        self.timezone = timezone
        # How far back "all" reaches: nothing older is kept (DynamoDB TTL).
        self.retention_days = settings.retention_days
        self._now = now
        self._dynamodb = dynamodb or aws.client("dynamodb", settings)

    def now(self) -> datetime:
        return self._now() if self._now else datetime.now(UTC)

    def events(self, start: datetime, end: datetime) -> pd.DataFrame:
        return load_events(self.site, start, end, settings=self.settings, dynamodb=self._dynamodb)

    def days(self, first: date, last: date) -> list[dict[str, Any]]:
        return load_rollups(
            self.site,
            first,
            last,
            tz=self.timezone,
            settings=self.settings,
            now=self.now(),
            dynamodb=self._dynamodb,
            compute_missing=True,
        )


class FrameSource:
    """`StatsSource` over an events frame in memory (notebooks, tests): each local day's
    rollup computed from the frame's events the way the compactor computes it."""

    def __init__(
        self, events: pd.DataFrame, site: str, timezone: str = "UTC", now: datetime | None = None
    ) -> None:
        self.frame = events
        self.site = site
        self.timezone = timezone
        self.retention_days = 400
        self._now = now or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def events(self, start: datetime, end: datetime) -> pd.DataFrame:
        ts = self.frame["ts"]
        chosen = self.frame[(ts >= pd.Timestamp(start)) & (ts < pd.Timestamp(end))]
        return chosen.reset_index(drop=True)

    def days(self, first: date, last: date) -> list[dict[str, Any]]:
        found = []
        for n in range((last - first).days + 1):
            day = first + timedelta(days=n)
            start, end = day_bounds(day, self.timezone)
            events = self.events(start, end)
            # The previous day's events a join needs, read as the compactor reads them.
            before = rollups.read_before(self.events, events, day, self.timezone) if n else None
            found.append(rollups.compute(events, self.site, day, self.timezone, before))
        return found
