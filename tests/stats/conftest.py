"""Builders for hand-made event frames in the shape `pipeline.store.query.load_events` returns.

`ev(...)` is one stored event (Plausible's `build(:pageview, user_id: .., timestamp: ..)`);
`frame([...])` turns a list of them into the events frame, new columns included
(prev_visitor, engagement_ms, scroll_depth) whether or not `events_frame` knows them yet.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from pipeline.store.query import events_frame

# Plausible's factory stamps events "now" unless told; a fixed moment keeps the tests still.
DEFAULT_TS = "2021-01-01 12:00:00"
_anonymous = itertools.count(1)
_EXTRA = {"prev_visitor": "", "engagement_ms": math.nan, "scroll_depth": math.nan}


def at(text: str) -> int:
    """A naive ISO time (UTC) as epoch milliseconds, as stored."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def ev(
    ts: str | None = None,
    user: str | int | None = None,
    name: str = "pageview",
    path: str = "/",
    *,
    host: str = "example.com",
    prev: str = "",
    engagement_ms: float | None = None,
    scroll: float | None = None,
    props: dict[str, str] | None = None,
    **columns: Any,
) -> dict[str, Any]:
    """One event. No `user` means a visitor of its own (Plausible's random user_id)."""
    visitor = f"anon-{next(_anonymous)}" if user is None else str(user)
    record = {
        "ts": at(ts or DEFAULT_TS),
        "site": "example.com",
        "name": name,
        "hostname": host,
        "path": path,
        "url": f"https://{host}{path}",
        "referrer_source": "Direct / None",
        "visitor": visitor,
        "props": dict(props or {}),
        "prev_visitor": prev,
        "engagement_ms": math.nan if engagement_ms is None else float(engagement_ms),
        "scroll_depth": math.nan if scroll is None else float(scroll),
    }
    record.update(columns)
    return record


def engagement(ts: str, user: str | int, path: str, *, ms: float = 0, scroll: float = 0):
    """Plausible's `build(:engagement, ...)`: engaged time and scroll depth of a page left."""
    return ev(ts, user, "engagement", path, engagement_ms=ms, scroll=scroll)


def frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The events frame of `records` (sorted by time, stable, like `events_frame`)."""
    ordered = sorted(records, key=lambda r: r["ts"])
    events = events_frame(ordered)
    for column, default in _EXTRA.items():
        if column not in events.columns:
            events[column] = [r.get(column, default) for r in ordered]
    return events


def row(table: pd.DataFrame, value: str) -> dict[str, Any]:
    """The breakdown row whose `value` is `value` (fails loudly when absent)."""
    found = table[table["value"].astype(str) == value]
    assert len(found) == 1, f"{value!r} not once in {list(table['value'])}"
    return found.iloc[0].to_dict()


def percent(rate: float) -> int:
    """A 0..1 rate as Plausible shows bounce rate: a rounded whole percent."""
    return round(rate * 100)
