"""A published Stats API client, run unmodified against the local server: its answers are
`pipeline.stats.metrics` on the same events.

The client is `plausible-mcp` (PyPI, pinned in requirements-dev.txt): an MCP server that
agents use to read Plausible's Stats API (v1: aggregate, breakdown, timeseries, realtime
visitors), configured only through its environment (`PLAUSIBLE_BASE_URL`, `PLAUSIBLE_API_KEY`;
`DO_NOT_TRACK=1` turns its usage telemetry off). It runs here as its users run it: its own
process, spoken to over MCP's stdio transport by the `mcp` library's client, so nothing of it
is imported, patched or wrapped. Its base URL is the local collector serving the Stats API
(`api=`), the key one `pipeline.api.keys.create_key` made, and the events went through the real
contract and consumer into DynamoDB on moto's server.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import pandas as pd
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from pipeline import load_events
from pipeline.api.app import handle
from pipeline.api.keys import create_key
from pipeline.config import Settings
from pipeline.consume.consumer import Consumer
from pipeline.enrich.referrers import DIRECT
from pipeline.ingest.collector import start_collector
from pipeline.ingest.contract import build_message, encode_message
from pipeline.stats import metrics
from tests.conftest import CHROME_UA, IPHONE_UA, create_test_resources

pytestmark = pytest.mark.integration
SITE = "site.test"
OTHER_SITE = "example.com"
FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SUMMARY_METRICS = (
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
)
CLIENT = Path(sys.executable).with_name("plausible-mcp")  # installed by requirements-dev.txt
CALL_TIMEOUT_S = 60  # one tool call: the client's own HTTP timeout is 10 s

# (minutes before now, address, user agent, pixel parameters): five visitors, two of them in the
# last five minutes (real time), one bounce, a two-page visit with a custom event, three sources.
HITS = [
    (40, "203.0.113.10", CHROME_UA, {"u": "/", "r": "https://www.google.com/"}),
    (38, "203.0.113.10", CHROME_UA, {"u": "/pricing", "r": "https://www.google.com/"}),
    (37, "203.0.113.10", CHROME_UA, {"u": "/pricing", "n": "Signup", "p": '{"plan":"pro"}'}),
    (30, "203.0.113.11", IPHONE_UA, {"u": "/pricing"}),
    (25, "203.0.113.12", FIREFOX_UA, {"u": "/", "r": "https://news.ycombinator.com/item"}),
    (24, "203.0.113.12", FIREFOX_UA, {"u": "/docs"}),
    (2, "203.0.113.13", CHROME_UA, {"u": "/"}),
    (1, "203.0.113.14", IPHONE_UA, {"u": "/docs", "r": "https://www.google.com/search"}),
]


def hit_message(
    minutes_ago: int, ip: str, agent: str, params: dict[str, str], now: datetime
) -> str:
    """The queue message the collector makes of this pixel hit."""
    query = urlencode({"d": SITE, **params, "u": f"https://{SITE}{params['u']}"})
    received = int((now - timedelta(minutes=minutes_ago)).timestamp() * 1000)
    return encode_message(
        build_message(query, {"User-Agent": agent}, ip, received, str(uuid.uuid4()))
    )


class Served:
    """The Stats API on the local collector, over events of `SITE` stored through the consumer."""

    def __init__(self, settings: Settings, url: str, key: str, other_key: str) -> None:
        self.settings = settings
        self.url = url
        self.key = key
        self.other_key = other_key
        today = datetime.now(UTC).date()
        # Yesterday and today: the hits of the last 40 minutes may straddle UTC midnight.
        self.first, self.last = today - timedelta(days=1), today
        self.start = datetime.combine(self.first, datetime.min.time(), UTC)
        self.end = datetime.combine(self.last + timedelta(days=1), datetime.min.time(), UTC)

    @property
    def date_range(self) -> str:
        return f"{self.first.isoformat()},{self.last.isoformat()}"

    def events(self) -> pd.DataFrame:
        return load_events(SITE, self.start, self.end, settings=self.settings)


@pytest.fixture(scope="module")
def served(moto_server: str) -> Iterator[Served]:
    settings = Settings.for_prefix(f"pc{uuid.uuid4().hex[:8]}", endpoint_url=moto_server)
    create_test_resources(settings)
    now = datetime.now(UTC)
    records = [
        {"messageId": str(n), "body": hit_message(*hit, now=now)} for n, hit in enumerate(HITS)
    ]
    assert Consumer(settings).process(records).stored == len(HITS)
    key, other_key = create_key(settings, SITE, "mcp"), create_key(settings, OTHER_SITE)
    collector = start_collector(settings, api=lambda request: handle(request, settings))
    try:
        yield Served(settings, collector.url, key, other_key)
    finally:
        collector.shutdown()


def ask(
    served: Served, calls: list[tuple[str, dict[str, Any]]], errlog: Path, key: str | None = None
) -> list[str]:
    """Start plausible-mcp as its own process (as an MCP host does), make each tool call over
    stdio, and return the text each answered."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(errlog.parent),  # whatever it keeps in a home folder stays in the test's
        "PLAUSIBLE_BASE_URL": served.url,
        "PLAUSIBLE_API_KEY": key or served.key,
        "DO_NOT_TRACK": "1",
    }
    # Its console script, as an MCP host's config starts it (`"command": "plausible-mcp"`).
    server = StdioServerParameters(command=str(CLIENT), args=[], env=environment)

    async def session() -> list[str]:
        answers = []
        with errlog.open("a") as log:
            async with (
                stdio_client(server, errlog=log) as (read, write),
                ClientSession(read, write) as client,
            ):
                await client.initialize()
                for name, arguments in calls:
                    result = await client.call_tool(
                        name, arguments, read_timeout_seconds=CALL_TIMEOUT_S
                    )
                    answers.append("".join(part.text for part in result.content))
        return answers

    return anyio.run(session)


def parsed(answer: str) -> dict[str, Any]:
    """The tool's JSON answer; its error sentences ("[INPUT_FIXABLE] ...") fail the test."""
    assert answer.startswith("{"), answer
    return json.loads(answer)


def test_aggregate_breakdowns_timeseries_and_realtime_equal_the_metrics(served, tmp_path):
    every = {"site_id": SITE, "date_range": served.date_range}
    calls = [
        ("get_aggregate_stats", every | {"metrics": list(SUMMARY_METRICS)}),
        ("get_breakdown", every | {"property_name": "page"}),
        ("get_breakdown", every | {"property_name": "source"}),
        ("get_breakdown", every | {"property_name": "browser"}),
        ("get_timeseries", every),
        ("get_realtime_visitors", {"site_id": SITE}),
    ]
    started = time.time()
    aggregate, pages, sources, browsers, series, realtime = ask(served, calls, tmp_path / "mcp.log")
    events = served.events()
    assert len(events) == len(HITS)  # every hit stored: the numbers below are of all of them
    expected = metrics.summary(events)

    totals = parsed(aggregate)["totals"]
    assert (totals["visitors"], totals["visits"], totals["pageviews"]) == (
        expected.visitors,
        expected.visits,
        expected.pageviews,
    )
    # Plausible's API gives a rate in percent and a duration in seconds, rounded as it rounds.
    assert totals["bounce_rate"] == pytest.approx(expected.bounce_rate * 100, abs=0.5)
    assert totals["visit_duration"] == pytest.approx(expected.visit_duration, abs=0.5)
    assert totals["views_per_visit"] == pytest.approx(expected.views_per_visit, abs=0.005)

    def by(answer: str, key: str) -> dict[str, int]:
        return {row[key]: row["visitors"] for row in parsed(answer)["results"]}

    def table(dimension: str) -> dict[str, int]:
        rows = metrics.breakdown(events, dimension)
        return {
            value or DIRECT: int(n)
            for value, n in zip(rows["value"], rows["visitors"], strict=True)
        }

    assert by(pages, "page") == table("path")
    assert by(sources, "source") == table("referrer_source")
    assert by(browsers, "browser") == table("browser")
    # Rows come most visitors first, as Plausible orders them.
    ordered = [row["visitors"] for row in parsed(pages)["results"]]
    assert ordered == sorted(ordered, reverse=True)

    daily = metrics.timeseries(
        events, "day", "UTC", pd.Timestamp(served.start), pd.Timestamp(served.end)
    )
    assert {row["date"]: row["visitors"] for row in parsed(series)["timeseries"]} == {
        f"{bucket:%Y-%m-%d}": int(n)
        for bucket, n in zip(daily["bucket"], daily["visitors"], strict=True)
    }
    current = metrics.current_visitors(events, pd.Timestamp(started, unit="s", tz="UTC"))
    assert parsed(realtime)["realtime_visitors"] == current


def test_the_client_reports_a_key_of_another_site_and_a_wrong_key_as_refused(served, tmp_path):
    calls = [("get_aggregate_stats", {"site_id": SITE, "date_range": served.date_range})]
    (other,) = ask(served, calls, tmp_path / "mcp.log", key=served.other_key)
    (wrong,) = ask(served, calls, tmp_path / "mcp.log", key="not-a-key-" + "x" * 54)
    # The client recognises Plausible's 401 and tells its user to fix the key.
    for answer in (other, wrong):
        assert answer.startswith("[ENVIRONMENT_FIXABLE"), answer
        assert "HTTP 401" in answer
    assert served.key not in other + wrong
