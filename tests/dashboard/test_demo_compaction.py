"""The embedded demo's compactor keeps running: a day that closes while the demo runs gets
its rollup, and a failed round does not stop the next."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from dashboard import data
from pipeline import aws
from pipeline.consume.consumer import Consumer
from pipeline.enrich.sites import new_site, register_site
from pipeline.ingest.contract import build_message, encode_message
from pipeline.local.demo import DEMO_SITE
from pipeline.store.storage import DIRTY_PK
from tests.conftest import CHROME_UA


def _markers(settings) -> list[str]:
    return [
        item["sk"]["S"]
        for item in aws.client("dynamodb", settings).query(
            TableName=settings.events_table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": DIRTY_PK}},
        )["Items"]
    ]


def test_the_demo_compactor_rolls_up_a_closed_day_and_keeps_going(settings, monkeypatch):
    # Noon: an event within two hours of midnight marks the next day too (a visit may go on
    # across it, pipeline.store.storage.days_to_mark), which made this test fail after 22:00.
    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(hour=12, minute=0, second=0)
    body = encode_message(
        build_message(
            f"d={DEMO_SITE}&u=https%3A%2F%2F{DEMO_SITE}%2F",
            {"User-Agent": CHROME_UA},
            "203.0.113.9",
            int(yesterday.timestamp() * 1000),
            "closed-day-1",
        )
    )
    register_site(settings, new_site(DEMO_SITE))
    assert Consumer(settings).process([{"messageId": "m", "body": body}], now=yesterday).stored
    assert _markers(settings) == [f"{DEMO_SITE}#{yesterday.date().isoformat()}"]
    rounds: list[int] = []
    real = data.compact

    def flaky(current):  # the first round fails as an unreachable table would
        rounds.append(1)
        if len(rounds) == 1:
            raise data.PipelineError("table unreachable")
        return real(current)

    monkeypatch.setattr(data, "compact", flaky)
    stop = threading.Event()
    thread = threading.Thread(target=data.compact_every, args=(settings, 0, 0.05, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while _markers(settings) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _markers(settings) == [] and len(rounds) >= 2 and thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
