"""The queue, DLQ, tables and archive bucket, with the settings the cloud stack uses too.

`create_resources` makes them on any endpoint (the emulator, or an account for a quick
test); `infra/` declares the same values in CloudFormation from the constants below.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from pipeline import aws
from pipeline.config import Settings

MAX_RECEIVE_COUNT = 3
# Raw IPs wait in the queue until processed: keep retention short (one day), and shorter
# than the salt window so every queued hit can still be hashed.
QUEUE_RETENTION_SECONDS = 24 * 3600
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
LAMBDA_TIMEOUT_SECONDS = 30
VISIBILITY_TIMEOUT_SECONDS = 6 * LAMBDA_TIMEOUT_SECONDS
TTL_ATTRIBUTE = "expires_at"

EVENTS_KEY_SCHEMA = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]
SALTS_KEY_SCHEMA = [{"AttributeName": "day", "KeyType": "HASH"}]
SITES_KEY_SCHEMA = [{"AttributeName": "site", "KeyType": "HASH"}]


def _attribute_definitions(schema: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"AttributeName": key["AttributeName"], "AttributeType": "S"} for key in schema]


def _create_table(dynamodb: Any, name: str, schema: list[dict[str, str]]) -> None:
    try:
        dynamodb.create_table(
            TableName=name,
            KeySchema=schema,
            AttributeDefinitions=_attribute_definitions(schema),
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if aws.error_code(exc) != "ResourceInUseException":
            raise
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )


def create_bucket(s3: Any, settings: Settings) -> None:
    """Create (or find) the archive bucket; the stack adds encryption, the public-access
    block and lifecycle rules (infra/), which the emulator does not need."""
    kwargs: dict[str, Any] = {"Bucket": settings.archive_bucket}
    if settings.region != "us-east-1":  # us-east-1 refuses a location constraint of its own
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if aws.error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise


def create_queues(sqs: Any, settings: Settings, visibility_timeout: int) -> tuple[str, str]:
    """Create (or find) the DLQ and the inbound queue that redrives to it; their URLs."""
    dlq_url = sqs.create_queue(
        QueueName=settings.dlq_name,
        Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=settings.queue_name,
        Attributes={
            "MessageRetentionPeriod": str(QUEUE_RETENTION_SECONDS),
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
            ),
        },
    )["QueueUrl"]
    return queue_url, dlq_url


def create_resources(
    settings: Settings, visibility_timeout: int = VISIBILITY_TIMEOUT_SECONDS
) -> dict[str, str]:
    """Create every resource the pipeline needs; safe to call again."""
    with aws.explained(settings, "the AWS endpoint"):
        dynamodb = aws.client("dynamodb", settings)
        _create_table(dynamodb, settings.events_table, EVENTS_KEY_SCHEMA)
        _create_table(dynamodb, settings.salts_table, SALTS_KEY_SCHEMA)
        _create_table(dynamodb, settings.sites_table, SITES_KEY_SCHEMA)
        create_bucket(aws.client("s3", settings), settings)
        queue_url, dlq_url = create_queues(
            aws.client("sqs", settings), settings, visibility_timeout
        )
    return {"queue_url": queue_url, "dlq_url": dlq_url}


def queue_url(sqs: Any, settings: Settings, name: str | None = None) -> str:
    with aws.explained(settings, f"Queue {name or settings.queue_name!r}"):
        return sqs.get_queue_url(QueueName=name or settings.queue_name)["QueueUrl"]
