"""The overview's numbers on 1,000,000 synthetic events, and the frame's memory (issue 5).

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
            "name": pick(["pageview"] * 1 + ["Signup", "Download", "Outbound Link: Click"]),
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
        }
    )
    for column in COLUMNS:
        if column not in frame:
            frame[column] = (
                pd.Categorical([""] * n)
                if column in CATEGORICAL
                else pd.Series([None] * n, dtype="object")
            )
    return frame[list(COLUMNS)]


def run(n: int = 1_000_000) -> dict[str, float]:
    frame = synthetic(n)
    memory_mb = frame.memory_usage(deep=True).sum() / 1e6
    timings = {}
    began = time.perf_counter()
    table = {}
    steps = {
        # The overview page computes the visits once and hands them to every metric.
        "visits (30-minute rule)": lambda: table.setdefault("t", metrics.visits(frame)),
        "summary (6 numbers)": lambda: metrics.summary(frame, table["t"]),
        "time series by day": lambda: table.setdefault(
            "s", metrics.timeseries(frame, "day", "UTC", table=table["t"])
        ),
        "top sources": lambda: metrics.breakdown(frame, "referrer_source", 10, table["t"]),
        "top pages": lambda: metrics.breakdown(frame, "path", 10, table["t"]),
        "top countries": lambda: metrics.breakdown(frame, "country", 10, table["t"]),
        "devices": lambda: metrics.breakdown(frame, "device", table=table["t"]),
        "anomaly flags": lambda: anomalies.flag(table["s"].set_index("bucket")["visitors"], 7),
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
