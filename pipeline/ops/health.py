"""Pipeline health: queue depth, messages in flight, DLQ depth, oldest message age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline import aws
from pipeline.config import Settings
from pipeline.resources import queue_url


def _attributes(sqs: Any, url: str) -> dict[str, str]:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def _oldest_age(settings: Settings, queue_name: str) -> int | None:
    """Seconds, from CloudWatch on AWS; None where there is no CloudWatch (the emulator).

    SQS itself does not tell the age without receiving a message, which would count as a
    delivery attempt and push the message towards the DLQ.
    """
    if settings.endpoint_url:
        return None
    now = datetime.now(UTC)
    points = aws.client("cloudwatch", settings).get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": queue_name}],
        StartTime=now - timedelta(minutes=15),
        EndTime=now,
        Period=300,
        Statistics=["Maximum"],
    )["Datapoints"]
    return int(max(p["Maximum"] for p in points)) if points else 0


def queue_health(settings: Settings) -> dict[str, int | None]:
    sqs = aws.client("sqs", settings)
    with aws.explained(settings, f"Queue {settings.queue_name!r}"):
        inbound = _attributes(sqs, queue_url(sqs, settings))
        dlq = _attributes(sqs, queue_url(sqs, settings, settings.dlq_name))
    return {
        "queued": int(inbound["ApproximateNumberOfMessages"]),
        "in_flight": int(inbound["ApproximateNumberOfMessagesNotVisible"]),
        "dlq": int(dlq["ApproximateNumberOfMessages"]),
        "oldest_age_s": _oldest_age(settings, settings.queue_name),
    }
