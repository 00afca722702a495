"""`python -m pipeline.dlq`: count, inspect with reasons, redrive without losing a message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3

from pipeline import aws, load_events
from pipeline.consumer import Consumer
from pipeline.dlq import count, inspect, redrive
from pipeline.resources import queue_url


def _to_dlq(settings, bodies: list[str]) -> None:
    sqs = aws.client("sqs", settings)
    url = queue_url(sqs, settings, settings.dlq_name)
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)


def test_count_inspect_and_reasons(settings, message_factory):
    good = message_factory()
    _to_dlq(settings, [good, '{"v": 1, "broken', json.dumps({"v": 9})])
    assert count(settings) == 3
    letters = {letter.body: letter.reason for letter in inspect(settings)}
    assert letters[good].startswith("valid")
    assert letters['{"v": 1, "broken'].startswith("malformed: body is not JSON")
    assert letters[json.dumps({"v": 9})] == "malformed: unsupported contract version 9"
    assert count(settings) == 3  # inspecting consumed nothing


def test_redrive_moves_messages_back_and_the_consumer_stores_them(
    settings, message_factory, sqs_record
):
    bodies = [message_factory() for _ in range(12)]
    _to_dlq(settings, bodies)
    assert redrive(settings) == 12
    assert count(settings) == 0
    sqs = boto3.client("sqs", region_name=settings.region)
    received = []
    while page := sqs.receive_message(
        QueueUrl=queue_url(sqs, settings), MaxNumberOfMessages=10
    ).get("Messages", []):
        received += page
        for message in page:
            sqs.delete_message(
                QueueUrl=queue_url(sqs, settings), ReceiptHandle=message["ReceiptHandle"]
            )
    assert sorted(m["Body"] for m in received) == sorted(bodies)
    Consumer(settings).process([sqs_record(m["Body"]) for m in received])
    now = datetime.now(UTC)
    assert (
        len(
            load_events(
                "example.com", now - timedelta(hours=1), now + timedelta(hours=1), settings=settings
            )
        )
        == 12
    )
