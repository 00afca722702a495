"""`python -m pipeline.dlq`: count, inspect with reasons, redrive without losing a message."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import boto3

from pipeline import aws, load_events
from pipeline.consume.consumer import Consumer
from pipeline.enrich import steps as enrich_module
from pipeline.enrich.steps import STEPS
from pipeline.ingest.contract import build_message, encode_message
from pipeline.ops.dlq import count, inspect, main, redrive, why
from pipeline.resources import queue_url
from tests.conftest import CHROME_UA

VISITOR_IP, VISITOR_UA = "198.51.100.61", CHROME_UA + " DlqProbe/1.0"


class ProbeFailure(Exception):
    """What one enrichment step raises for the poisoned message."""


def poison_enrichment(monkeypatch, request_id: str) -> None:
    """`enrich`'s default steps, with add_visitor raising for one request id."""

    def raising(hit, event, ctx):
        if hit.request_id == request_id:
            raise ProbeFailure(hit.user_agent)
        return enrich_module.add_visitor(hit, event, ctx)

    steps = tuple(raising if s is enrich_module.add_visitor else s for s in STEPS)
    monkeypatch.setattr(enrich_module.enrich, "__defaults__", (steps,))


def visitor_body(request_id: str, user_agent: str = VISITOR_UA, **fields) -> str:
    message = build_message(
        "d=example.com&u=https%3A%2F%2Fexample.com%2Fdlq",
        {"User-Agent": user_agent},
        VISITOR_IP,
        int(time.time() * 1000),
        request_id,
    )
    return encode_message({**message, **fields})


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


def test_inspect_tells_a_message_enrichment_fails_on_from_a_valid_one(settings, monkeypatch):
    poison_enrichment(monkeypatch, "poisoned")
    half_emoji = visitor_body("half-emoji", VISITOR_UA + "\ud83d")  # what the old cap left
    bodies = {
        "good": visitor_body("good"),
        "poisoned": visitor_body("poisoned"),
        "beyond-time": visitor_body("beyond-time", received_at=2**62),
        "last-day": visitor_body("last-day", received_at=253_402_257_599_000),  # 9999-12-31
        "half-emoji": half_emoji,
    }
    _to_dlq(settings, list(bodies.values()))
    reasons = {letter.body: letter.reason for letter in inspect(settings)}
    assert reasons[bodies["good"]].startswith("valid")
    assert reasons[bodies["half-emoji"]].startswith("valid")  # stored now: worth a redrive
    assert reasons[bodies["poisoned"]] == "failed in enrichment: ProbeFailure"
    assert reasons[bodies["beyond-time"]] == "failed in enrichment: ValueError"
    assert reasons[bodies["last-day"]] == "failed in enrichment: OverflowError"  # its salt
    assert why("[" * 100_000) == "malformed: body is JSON nested too deeply"


def test_inspect_prints_no_visitor_data(settings, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_QUEUE_NAME", settings.queue_name)
    monkeypatch.setenv("PIPELINE_DLQ_NAME", settings.dlq_name)
    _to_dlq(settings, [visitor_body("shown"), f'{{"source_ip": "{VISITOR_IP}", "broken'])
    assert main(["inspect"]) == 0
    out = capsys.readouterr().out
    assert "request shown at " in out and "for site 'example.com'" in out
    assert "characters)" in out  # the malformed one, by size
    assert VISITOR_IP not in out and "DlqProbe" not in out


def test_a_redrive_cannot_fail_the_good_neighbours_of_a_poisoned_message(
    settings, sqs_record, monkeypatch
):
    poison_enrichment(monkeypatch, "poisoned")
    bodies = [visitor_body(f"good-{i}") for i in range(12)]
    bodies.insert(5, visitor_body("poisoned"))
    _to_dlq(settings, bodies)
    assert redrive(settings) == 13
    sqs = aws.client("sqs", settings)
    inbound, received = queue_url(sqs, settings), []
    while page := sqs.receive_message(QueueUrl=inbound, MaxNumberOfMessages=10).get("Messages"):
        received += page
    records = [
        sqs_record(m["Body"], message_id=json.loads(m["Body"])["request_id"]) for m in received
    ]
    outcome = Consumer(settings).process(records)  # all 13 in one batch
    assert outcome.failures == ["poisoned"]
    assert outcome.stored == 12
