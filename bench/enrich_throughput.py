"""Consumer CPU per event, DynamoDB stubbed out: parse → enrich → item → batch, on one core.

Messages are the demo generator's (real User-Agents, geo headers, referrers), encoded by
the pixel contract; the stub answers DynamoDB calls instantly and counts them, so the
figure is our code alone. Run: `python -m bench.enrich_throughput [events]`.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Any

from pipeline.config import Settings
from pipeline.consume.consumer import Consumer
from pipeline.enrich.sites import new_site, site_item
from pipeline.local.demo import DEMO_SITE, generate_hits

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


def run(events: int = 50_000) -> dict[str, float]:
    now = datetime.now(UTC)
    hits = []
    while len(hits) < events:
        hits += list(generate_hits(now, days=28, seed=len(hits)))
    hits = hits[:events]
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
    }


if __name__ == "__main__":
    result = run(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
    for key, value in result.items():
        print(f"{key:>20}: {value:,.4g}" if isinstance(value, float) else f"{key:>20}: {value:,}")
