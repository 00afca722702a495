"""Faults: the worker killed mid-batch, DynamoDB throttling on a fraction of calls."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline import aws, load_events
from pipeline.config import resource_env
from pipeline.consume.consumer import Consumer
from pipeline.consume.worker import Worker
from pipeline.resources import queue_url
from pipeline.store.storage import BatchWriter
from tests.faults import DynamoFaults
from tests.servers import stop
from tests.support import wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def enqueue(settings, bodies: list[str]) -> None:
    sqs = aws.client("sqs", settings)
    url = queue_url(sqs, settings)
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])
            ],
        )


def stored(settings) -> list[str]:
    now = datetime.now(UTC)
    return load_events(
        "example.com", now - timedelta(hours=1), now + timedelta(hours=1), settings=settings
    )["path"].tolist()


def worker_process(settings) -> subprocess.Popen:
    env = os.environ | resource_env(settings)
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.worker", "--batch-size", "20"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_worker_killed_mid_batch_and_restarted_stores_every_event_once(
    server_settings, message_factory
):
    bodies = [
        message_factory(f"d=example.com&u=https%3A%2F%2Fexample.com%2Fk{n}", request_id=f"kill-{n}")
        for n in range(150)
    ]
    enqueue(server_settings, bodies)
    first = worker_process(server_settings)
    try:
        wait_for(lambda: len(stored(server_settings)) >= 20, timeout=60)
        first.send_signal(signal.SIGKILL)  # in the middle of its work: no cleanup, no deletes
        first.wait(timeout=10)
    finally:
        stop(first)  # a failed wait must not leave a worker polling after the test
    second = worker_process(server_settings)
    try:
        wait_for(lambda: len(stored(server_settings)) >= 150, timeout=90)
        time.sleep(2)  # let redeliveries of the killed batch arrive too
        paths = stored(server_settings)
    finally:
        stop(second)
    assert sorted(paths) == sorted(f"/k{n}" for n in range(150))


def test_throttling_on_a_fraction_of_calls_loses_nothing(server_settings, message_factory):
    dynamodb = aws.client("dynamodb", server_settings)
    faults = DynamoFaults(dynamodb, throttle_rate=0.3, partial_rate=0.3, hold_back=12, seed=3)
    consumer = Consumer(server_settings, dynamodb=dynamodb)
    consumer.writer = BatchWriter(dynamodb, server_settings.events_table, base_delay=0.01)
    bodies = [
        message_factory(f"d=example.com&u=https%3A%2F%2Fexample.com%2Ft{n}", request_id=f"thr-{n}")
        for n in range(200)
    ]
    enqueue(server_settings, bodies)
    stop = threading.Event()
    worker = threading.Thread(
        target=Worker(server_settings, consumer.handle, batch_window=0.2).run,
        args=(stop,),
        daemon=True,
    )
    worker.start()
    try:
        wait_for(lambda: len(stored(server_settings)) >= 200, timeout=120)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert faults.throttled > 0 and faults.held_back > 0
    assert sorted(stored(server_settings)) == sorted(f"/t{n}" for n in range(200))
