"""Consumer CPU per event, DynamoDB stubbed out: parse → enrich → item → batch, on one core.

Messages are the demo generator's (real User-Agents, geo headers, referrers), encoded by
the pixel contract; the stub answers DynamoDB calls instantly and counts them, so the
figure is our code alone. Run: `python -m bench.enrich_throughput [events] [--real-uas]`.

The demo has a dozen User-Agents, so its parses are all cache hits after the first batch.
`--real-uas` gives each hit a User-Agent from the corpora `bench.bots` fetches (npm and PyPI,
at run time): about 1,800 distinct real browsers and 2,100 real crawlers (for the demo's bot
hits), with the parse caches emptied first, as in a new Lambda instance.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.consume.consumer import Consumer
from pipeline.enrich import useragents
from pipeline.enrich.sites import new_site, site_item
from pipeline.local.demo import BOT_USER_AGENTS, DEMO_SITE, DemoHit, generate_hits

BATCH = 100


class CountingDynamoDB:
    """Answers instantly; counts requests and items written."""

    def __init__(self) -> None:
        self.requests = 0
        self.items_written = 0
        self._salts: dict[str, Any] = {}

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        self.requests += 1
        if "site" in kwargs["Key"]:
            return {}  # no referrer-spam list stored
        item = self._salts.get(kwargs["Key"]["day"]["S"])
        return {"Item": item} if item else {}

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        self.requests += 1
        self._salts[kwargs["Item"]["day"]["S"]] = kwargs["Item"]
        return {}

    def scan(self, **kwargs: Any) -> dict[str, Any]:
        self.requests += 1
        return {"Items": list(self._salts.values())}

    def delete_item(self, **kwargs: Any) -> dict[str, Any]:
        self.requests += 1
        self._salts.pop(kwargs["Key"]["day"]["S"], None)
        return {}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        self.requests += 1
        ((table, request),) = RequestItems.items()
        domains = [key["site"]["S"] for key in request["Keys"]]
        registered = [site_item(new_site(d)) for d in domains if d == DEMO_SITE]
        return {"Responses": {table: registered}, "UnprocessedKeys": {}}

    def batch_write_item(self, RequestItems: dict[str, list]) -> dict[str, Any]:  # noqa: N803
        self.requests += 1
        self.items_written += sum(len(v) for v in RequestItems.values())
        return {"UnprocessedItems": {}}


def real_user_agents(cache: Path) -> tuple[list[str], list[str]]:
    """Distinct real browser and crawler User-Agents from the maintained public corpora."""
    from bench.bots import fetch_corpora  # fetches with npm and pip: only when asked

    corpora = {corpus.name: corpus for corpus in fetch_corpora(cache)}
    browsers = corpora["Intoli real traffic"].uas + corpora["fake-useragent browsers"].uas
    return sorted(set(browsers)), sorted(set(corpora["crawler-user-agents instances"].uas))


def with_user_agents(hits: list[DemoHit], browsers: list[str], crawlers: list[str]) -> list:
    """Each hit with a real UA of its kind (a demo bot hit gets a crawler's)."""
    rng = random.Random(11)
    return [
        replace(
            hit,
            headers={
                **hit.headers,
                "User-Agent": rng.choice(
                    crawlers if hit.headers.get("User-Agent") in BOT_USER_AGENTS else browsers
                ),
            },
        )
        for hit in hits
    ]


def run(events: int = 50_000, user_agents: tuple[list[str], list[str]] | None = None) -> dict:
    now = datetime.now(UTC)
    hits = []
    while len(hits) < events:
        hits += list(generate_hits(now, days=28, seed=len(hits)))
    hits = hits[:events]
    if user_agents:
        hits = with_user_agents(hits, *user_agents)
    hits.sort(key=lambda hit: hit.ts_ms)
    # Each batch is handled "as it arrives": the clock is its last hit's time, so every
    # event is inside the salt window and goes the whole way (none dropped as stale).
    batches = [
        (
            [{"messageId": h.request_id, "body": h.message_body()} for h in hits[i : i + BATCH]],
            datetime.fromtimestamp(hits[min(i + BATCH, len(hits)) - 1].ts_ms / 1000, UTC),
        )
        for i in range(0, len(hits), BATCH)
    ]
    dynamodb = CountingDynamoDB()
    consumer = Consumer(Settings(), dynamodb=dynamodb, clock=lambda: now.timestamp())
    consumer.process(*batches[0])  # warm the salt cache and imports, as a warm Lambda would be
    dynamodb.requests = dynamodb.items_written = 0
    if user_agents:  # a new instance: no User-Agent parsed yet
        useragents.bot_rule.cache_clear()
        useragents._parsed.cache_clear()
        useragents.parse_client.cache_clear()
    stored = 0
    started_cpu, started_wall = time.process_time(), time.perf_counter()
    dropped = 0
    for records, clock in batches:
        outcome = consumer.process(records, now=clock)
        stored += outcome.stored
        dropped += sum(outcome.dropped.values())
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started_wall
    return {
        "events": len(hits),
        "stored": stored,
        "dropped_bots": dropped,
        "cpu_s": cpu,
        "events_per_cpu_s": len(hits) / cpu,
        "us_per_event": cpu / len(hits) * 1e6,
        "wall_s": wall,
        "dynamodb_requests": dynamodb.requests,
        "requests_per_item": dynamodb.requests / dynamodb.items_written,
        "distinct_uas": len({h.headers.get("User-Agent") for h in hits}),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.enrich_throughput")
    parser.add_argument("events", type=int, nargs="?", default=50_000)
    parser.add_argument("--real-uas", action="store_true", help="real, distinct User-Agents")
    parser.add_argument("--cache", type=Path, help="keep the fetched corpora here")
    args = parser.parse_args()
    cache = args.cache or Path(tempfile.mkdtemp(prefix="bench-uas-"))
    result = run(args.events, real_user_agents(cache) if args.real_uas else None)
    for key, value in result.items():
        print(f"{key:>20}: {value:,.4g}" if isinstance(value, float) else f"{key:>20}: {value:,}")
