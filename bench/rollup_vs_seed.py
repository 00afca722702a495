"""Dashboard read cost: daily rollups vs a faithful re-creation of the seed article's model.

The seed stores every hit in one partition per site (`pk = sha256(referer)`, the raw IP and
User-Agent included) and reads every event for every dashboard view. Ours reads one rollup
record per closed UTC day. Both tables live on the same emulator; items and read units are
counted from the Query responses (a botocore hook), not from the clock. Read units follow
DynamoDB's rule: per Query page, item bytes rounded up to 4 KB, half a unit each when
eventually consistent. Run: `python -m bench.rollup_vs_seed 10000 100000 1000000`.

At 1,000,000 events the run does not finish in hours on moto: its Query sorts every item of the
table for each page it returns (`Table.all_items`), and the seed's view alone is ~400 pages of
one 1,000,000-item partition. bench/RESULTS.md records 10,000 and 100,000, measured, and the
1,000,000 row projected from the measured item sizes.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline import aws
from pipeline.config import Settings
from pipeline.enrich.sites import new_site
from pipeline.enrich.steps import Context, Dropped, enrich, hit_from_message
from pipeline.ingest.contract import parse_message
from pipeline.local.demo import DEMO_SITE, generate_hits
from pipeline.local.emulator import EmbeddedAWS
from pipeline.resources import create_resources
from pipeline.stats import metrics
from pipeline.store import rollups
from pipeline.store.compactor import compact
from pipeline.store.query import events_frame, load_rollups
from pipeline.store.storage import BatchWriter, dirty_item, event_item

DAYS = 30
NOW = datetime(2026, 11, 1, 0, 30, tzinfo=UTC)  # 30 closed days before it
PAGE_BYTES = 1024 * 1024
PAGE_LATENCY_S = 0.015  # one Query round trip on DynamoDB, same region (typical, not a guarantee)
PARTITION_RCU_PER_S = 3000
SITES = {DEMO_SITE: new_site(DEMO_SITE)}
PRICE_PER_MILLION_RRU = 0.125


def item_bytes(item: dict[str, Any]) -> int:
    size = 0
    for name, value in item.items():
        ((kind, raw),) = value.items()
        size += len(name) + (len(raw) if kind == "B" else len(str(raw).encode()))
    return size


class ReadCounter:
    def __init__(self, client: Any) -> None:
        self.items = 0
        self.read_units = 0.0
        self.pages = 0
        client.meta.events.register("after-call.dynamodb.Query", self._count)

    def _count(self, parsed: dict[str, Any], **_: Any) -> None:
        items = parsed.get("Items", [])
        self.items += len(items)
        self.pages += 1
        self.read_units += math.ceil(sum(item_bytes(i) for i in items) / 4096) * 0.5


def enriched_events(n: int) -> list[dict[str, Any]]:
    """n believable events over 30 days (the demo generator, through the real enrichment)."""
    events: list[dict[str, Any]] = []
    seed = 0
    while len(events) < n:
        for hit in generate_hits(NOW - timedelta(minutes=31), days=DAYS, seed=seed):
            parsed = hit_from_message(parse_message(hit.message_body()))
            ctx = Context(salts={parsed.day: parsed.day.isoformat().encode() * 2}, sites=SITES)
            result = enrich(parsed, ctx)
            if not isinstance(result, Dropped):
                result["request_id"] = f"{result['request_id']}-{seed}"
                events.append(result)
        seed += 1
    return events[:n]


def seed_item(event: dict[str, Any]) -> dict[str, Any]:
    """The seed's item: one partition per referer hash, the raw request kept (its bug 4)."""
    return {
        "pk": {"S": hashlib.sha256(f"https://{DEMO_SITE}/".encode()).hexdigest()},
        "sk": {"S": f"{event['ts']:013d}#{event['request_id']}"},
        "ip": {"S": "203.0.113.77"},
        "ts": {"N": str(event["ts"])},
        "ua": {
            "S": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
        },
        "referer": {"S": f"https://{event['hostname']}{event['path']}"},
        "query": {"S": json.dumps({"u": event["url"], "r": event["referrer"]})},
        "country": {"S": event["country"]},
        "region": {"S": event["region"]},
        "city": {"S": event["city"]},
        "timezone": {"S": "Europe/Berlin"},
    }


def project(items: int, read_units: float, item_size: float) -> tuple[float, float]:
    """Seconds and dollars per view on real DynamoDB: sequential 1 MB pages of one partition."""
    pages = max(1, math.ceil(items * item_size / PAGE_BYTES))
    seconds = max(pages * PAGE_LATENCY_S, read_units / PARTITION_RCU_PER_S)
    return seconds, read_units * PRICE_PER_MILLION_RRU / 1e6


def run_one(n: int) -> dict[str, Any]:
    with EmbeddedAWS() as emulator:
        settings = Settings.for_prefix(f"b{n}", endpoint_url=emulator.endpoint_url)
        create_resources(settings)
        dynamodb = aws.client("dynamodb", settings)
        dynamodb.create_table(TableName=f"seed{n}", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}], AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")  # fmt: skip
        events = enriched_events(n)
        ours, seed = BatchWriter(dynamodb, settings.events_table), BatchWriter(dynamodb, f"seed{n}")
        marked = int(NOW.timestamp() * 1000)
        days = {datetime.fromtimestamp(e["ts"] / 1000, UTC).date() for e in events}
        assert not ours.write(
            [
                *(event_item(e, 400) for e in events),
                *(dirty_item(DEMO_SITE, d, marked) for d in days),
            ]
        )
        assert not seed.write(seed_item(e) for e in events)

        began = time.perf_counter()
        report = compact(settings, now=NOW, dynamodb=dynamodb)
        compaction_s = time.perf_counter() - began

        counter = ReadCounter(dynamodb)
        first, last = (NOW - timedelta(days=DAYS)).date(), (NOW - timedelta(days=1)).date()
        began = time.perf_counter()
        view = load_rollups(DEMO_SITE, first, last, settings=settings, now=NOW, dynamodb=dynamodb)
        ours_summary = rollups.summary(view)
        ours_s = time.perf_counter() - began
        ours_items, ours_units = counter.items, counter.read_units

        counter.items, counter.read_units, counter.pages = 0, 0.0, 0
        began = time.perf_counter()
        kwargs: dict[str, Any] = {
            "TableName": f"seed{n}",
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": seed_item(events[0])["pk"]["S"]}},
        }
        rows = []
        while True:
            page = dynamodb.query(**kwargs)
            rows += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        frame = events_frame(
            [
                {
                    "ts": int(r["ts"]["N"]),
                    "visitor": r["ip"]["S"] + r["ua"]["S"],
                    "name": "pageview",
                    "path": r["referer"]["S"],
                }
                for r in rows
            ]
        )
        metrics.summary(frame)
        seed_s = time.perf_counter() - began
        seed_items, seed_units = counter.items, counter.read_units
        assert ours_summary.pageviews + sum(1 for e in events if e["name"] != "pageview") >= 0
    seed_size = seed_units * 8192 / max(seed_items, 1)
    ours_size = ours_units * 8192 / max(ours_items, 1)
    return {
        "events": n,
        "ours_items": ours_items,
        "ours_read_units": ours_units,
        "ours_view_s": ours_s,
        "seed_items": seed_items,
        "seed_read_units": seed_units,
        "seed_view_s": seed_s,
        "read_unit_ratio": seed_units / ours_units,
        "compaction_days": len(report.days),
        "compaction_items_read_per_day": report.events_read / max(len(report.days), 1),
        "compaction_items_written_per_day": report.items_written / max(len(report.days), 1),
        "compaction_s_per_day": compaction_s / max(len(report.days), 1),
        "ours_item_bytes": ours_size,
        "seed_item_bytes": seed_size,
    }


def projection_table(ours_item_bytes: float, seed_item_bytes: float) -> list[str]:
    rows = [
        "| events/month | seed: s per view | seed: $ per view | ours: s per view | ours: $ per view |",
        "|---|---|---|---|---|",
    ]
    for n in (10_000, 100_000, 1_000_000, 10_000_000, 100_000_000):
        seed_units = math.ceil(n * seed_item_bytes / 4096) * 0.5
        ours_units = math.ceil(DAYS * ours_item_bytes / 4096) * 0.5
        seed_s, seed_usd = project(n, seed_units, seed_item_bytes)
        ours_s, ours_usd = project(DAYS, ours_units, ours_item_bytes)
        rows.append(f"| {n:,} | {seed_s:,.2f} | {seed_usd:.6f} | {ours_s:.3f} | {ours_usd:.8f} |")
    return rows


if __name__ == "__main__":
    results = []
    for arg in sys.argv[1:] or ["10000", "100000"]:
        results.append(run_one(int(arg)))
        print(
            {k: round(v, 4) if isinstance(v, float) else v for k, v in results[-1].items()},
            flush=True,
        )
    print(
        "\n".join(projection_table(results[-1]["ours_item_bytes"], results[-1]["seed_item_bytes"]))
    )
