"""DynamoDB storage of events: keys, item encoding, batched writes that lose nothing, reads
that page to the end.

Keys: `pk = "{site}#{YYYY-MM-DD}"` (one partition per site and UTC day) and
`sk = "{epoch_ms:013d}#{request_id}"` (time order; the request id makes a redelivered or
re-sent message overwrite itself). Drops are kept as tiny items under
`pk = "drop#{site}#{day}"` so they can be counted exactly, with the same idempotency.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws import error_code

BATCH_LIMIT = 25
DROP_RETENTION_DAYS = 30
_RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}


def day_of(epoch_ms: int) -> date:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).date()


def event_pk(site: str, day: date) -> str:
    return f"{site}#{day.isoformat()}"


def drop_pk(site: str, day: date) -> str:
    return f"drop#{site or '-'}#{day.isoformat()}"


def sort_key(epoch_ms: int, request_id: str) -> str:
    return f"{epoch_ms:013d}#{request_id}"


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": str(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): _attribute(v) for k, v in value.items()}}
    raise TypeError(f"cannot store {type(value).__name__}")


def to_item(record: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values for a flat record; None values are left out."""
    return {key: _attribute(value) for key, value in record.items() if value is not None}


def _plain(attribute: Mapping[str, Any]) -> Any:
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return int(value) if value.lstrip("-").isdigit() else float(value)
    if kind == "M":
        return {k: _plain(v) for k, v in value.items()}
    if kind == "BOOL":
        return value
    if kind == "B":
        return value
    raise TypeError(f"unexpected attribute type {kind}")


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in item.items()}


def event_item(event: Mapping[str, Any], retention_days: int) -> dict[str, Any]:
    ts = event["ts"]
    record = {
        "pk": event_pk(event["site"], day_of(ts)),
        "sk": sort_key(ts, event["request_id"]),
        "expires_at": ts // 1000 + retention_days * 86400,
        **event,
    }
    return to_item(record)


def drop_item(site: str, epoch_ms: int, request_id: str, reason: str) -> dict[str, Any]:
    return to_item(
        {
            "pk": drop_pk(site, day_of(epoch_ms)),
            "sk": sort_key(epoch_ms, request_id),
            "reason": reason,
            "expires_at": epoch_ms // 1000 + DROP_RETENTION_DAYS * 86400,
        }
    )


def _key(item: Mapping[str, Any]) -> tuple[str, str]:
    return item["pk"]["S"], item["sk"]["S"]


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class BatchWriter:
    """`BatchWriteItem` in chunks of 25 that retries throttling and `UnprocessedItems`.

    `write` returns the items it could not store after its attempts, so the caller can
    report their messages as batch-item failures and SQS redelivers them.
    """

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        max_attempts: int = 8,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self.requests = 0

    def write(self, items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        # One request may not name a key twice; the last write of a key is the one that counts.
        unique = list({_key(item): item for item in items}.values())
        failed: list[dict[str, Any]] = []
        for chunk in _chunks(unique, BATCH_LIMIT):
            failed += self._write_chunk(chunk)
        return failed

    def _backoff(self, attempt: int) -> None:
        # Full jitter: concurrent writers that were throttled together don't retry together.
        self._sleep(random.uniform(0, min(self._max_delay, self._base_delay * 2**attempt)))

    def _write_chunk(self, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pending = chunk
        for attempt in range(self._max_attempts):
            if attempt:
                self._backoff(attempt)
            try:
                self.requests += 1
                response = self._dynamodb.batch_write_item(
                    RequestItems={self._table: [{"PutRequest": {"Item": item}} for item in pending]}
                )
            except ClientError as exc:
                if error_code(exc) in _RETRYABLE:
                    continue
                if error_code(exc) == "ValidationException" and len(pending) > 1:
                    return self._write_one_by_one(pending)
                raise
            unprocessed = response.get("UnprocessedItems", {}).get(self._table, [])
            pending = [request["PutRequest"]["Item"] for request in unprocessed]
            if not pending:
                return []
        return pending

    def _write_one_by_one(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Isolate an item DynamoDB rejects so that it fails alone, not its neighbours."""
        failed = []
        for item in items:
            try:
                self.requests += 1
                self._dynamodb.put_item(TableName=self._table, Item=item)
            except ClientError:
                failed.append(item)
        return failed
