"""The overview's numbers on 1,000,000 synthetic events, and the frame's memory (issue 5),
unfiltered and under a page filter with Plausible's semantics (issue 14: the visits are
computed once per selection, the Pages report adds time on page and scroll depth).

Targets: every overview number in ≤ 2 s on this machine; the events frame ≤ 300 MB.
Run: `python -m bench.metrics_scale [events]`.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from pipeline.stats import anomalies, metrics
from pipeline.store.query import CATEGORICAL, COLUMNS


def synthetic(n: int, seed: int = 1) -> pd.DataFrame:
    """A frame shaped like `load_events`' (same columns and dtypes): 30 days, ~2.6 events per
    visitor-day, Zipf-like popularity of pages and sources."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-10-01", tz="UTC").value // 1000
    visitors = rng.integers(0, n // 3, n)
    ts = start + rng.integers(0, 30 * 86_400_000_000, n)
    ts = np.sort(ts)

    def pick(values: list[str]) -> pd.Categorical:
        weights = 1 / np.arange(1, len(values) + 1)
        return pd.Categorical(rng.choice(values, n, p=weights / weights.sum()), categories=values)

    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(ts, unit="us", utc=True),
            "site": pd.Categorical(["example.com"] * n),
            # A third are engagement events (one per page left, as the script sends them).
            "name": pd.Categorical(
                rng.choice(
                    ["pageview", "engagement", "Signup", "Download"], n, p=[0.6, 0.34, 0.04, 0.02]
                )
            ),
            "path": pick([f"/page/{i}" for i in range(200)]).astype(str),
            "referrer_source": pick(
                [
                    "Direct / None",
                    "Google",
                    "Hacker News",
                    "Twitter",
                    "Reddit",
                    "GitHub",
                    "Bing",
                    "DuckDuckGo",
                ]
                + [f"site{i}.example" for i in range(40)]
            ),
            "country": pick(
                ["US", "DE", "GB", "FR", "IN", "JP", "BR", "CA", "NL", "SE"]
                + [f"C{i}" for i in range(30)]
            ),
            "device": pick(["Desktop", "Mobile", "Tablet"]),
            "browser": pick(["Chrome", "Safari", "Firefox", "Edge", "Samsung Internet"]),
            "visitor": pd.Series(visitors).map(lambda v: f"{v:016x}").astype("string[pyarrow]"),
            "engagement_ms": rng.integers(0, 120_000, n).astype("float64"),
            "scroll_depth": rng.integers(0, 101, n).astype("float64"),
        }
    )
    not_engagement = (frame["name"] != "engagement").to_numpy()
    frame.loc[not_engagement, ["engagement_ms", "scroll_depth"]] = np.nan
    for column in COLUMNS:
        if column not in frame:
            frame[column] = (
                pd.Categorical([""] * n)
                if column in CATEGORICAL
                else pd.Series([""] * n, dtype="string[pyarrow]")
                if column == "prev_visitor"
                else pd.Series([None] * n, dtype="object")
            )
    return frame[list(COLUMNS)]


def run(n: int = 1_000_000) -> dict[str, float]:
    frame = synthetic(n)
    memory_mb = frame.memory_usage(deep=True).sum() / 1e6
    timings = {}
    began = time.perf_counter()
    found = {}
    page = metrics.filter_from("path", "contains", ["/page/1"])
    steps = {
        # The overview page selects once (the visits) and hands the selection to every metric.
        "select (30-minute rule)": lambda: found.setdefault("all", metrics.select(frame)),
        "summary (6 numbers)": lambda: metrics.summary(found["all"]),
        "time series by day": lambda: found.setdefault(
            "series", metrics.timeseries(found["all"], "day", "UTC")
        ),
        "top sources": lambda: metrics.breakdown(found["all"], "referrer_source", 10),
        "top pages (+ time, scroll)": lambda: metrics.breakdown(found["all"], "path", 10),
        "top countries": lambda: metrics.breakdown(found["all"], "country", 10),
        "devices": lambda: metrics.breakdown(found["all"], "device"),
        "exit pages (+ exit rate)": lambda: metrics.breakdown(found["all"], "exit_page", 10),
        "anomaly flags": lambda: anomalies.flag(found["series"].set_index("bucket")["visitors"], 7),
        "page filter: select": lambda: found.setdefault("page", metrics.select(frame, [page])),
        "page filter: summary": lambda: metrics.summary(found["page"]),
        "page filter: top pages": lambda: metrics.breakdown(found["page"], "path", 10),
    }
    for name, step in steps.items():
        started = time.perf_counter()
        step()
        timings[name] = time.perf_counter() - started
    return {
        "events": n,
        "frame_mb": memory_mb,
        "overview_total_s": time.perf_counter() - began,
        **timings,
    }


if __name__ == "__main__":
    for key, value in run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000).items():
        print(f"{key:>22}: {value:,.3f}" if isinstance(value, float) else f"{key:>22}: {value:,}")
