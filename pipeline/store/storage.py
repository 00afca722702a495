"""DynamoDB storage of events: keys, item encoding, batched writes that lose nothing, reads
that page to the end.

Keys: `pk = "{site}#{YYYY-MM-DD}"` (one partition per site and UTC day) and
`sk = "{epoch_ms:013d}#{request_id}"` (time order; the request id makes a redelivered or
re-sent message overwrite itself). Drops are kept as tiny items under
`pk = "drop#{site}#{day}"` so they can be counted exactly, with the same idempotency.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


def event_pk(site: str, day: date, shard: int = 0) -> str:
    """Shard 0 is the plain site-and-day partition; busy sites spread over more."""
    base = f"{site}#{day.isoformat()}"
    return base if shard == 0 else f"{base}#{shard}"


def shard_of(request_id: str, shards: int) -> int:
    # From the request id, so a redelivered message lands in the same shard and overwrites.
    if shards <= 1:
        return 0
    return (
        int.from_bytes(hashlib.blake2b(request_id.encode(), digest_size=4).digest(), "big") % shards
    )


DIRTY_PK = "dirty"
ROLLUP_PREFIX = "rollup#"


# ---- site-local days (a site's rollups cover its own days, in its registered time zone) ----


# How long before a local day's start an event can still share a visit with that day, as its
# join reads it (`rollups.read_before`, which reads on when a visit is longer).
JOIN_LOOKBACK = timedelta(hours=2)


def local_day(epoch_ms: int, tz: str) -> date:
    """The day, in time zone `tz`, of an instant."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=ZoneInfo(tz)).date()


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC of local day `day` in `tz` (23 or 25 hours on a DST change)."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, datetime.min.time(), zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def days_to_mark(epoch_ms: int, tz: str) -> set[date]:
    """The local days whose rollup an event at `epoch_ms` changes.

    Its own day, and the next one when the event lies in the part of its UTC day that the
    next local day shares (visitor hashes rotate at UTC midnight, so visits and visitors that
    cross local midnight are joined in the next day's record, `rollups.compute`), or within
    JOIN_LOOKBACK of the next day's start (a visit going on across it, the salt change too).
    A zone this runtime cannot load (no tz database) marks every day the event's UTC day can
    touch, which only costs a recomputation.
    """
    try:
        day = local_day(epoch_ms, tz)
        next_start = day_bounds(day + timedelta(days=1), tz)[0]
    except (ZoneInfoNotFoundError, ValueError):
        utc_day = day_of(epoch_ms)
        return {utc_day - timedelta(days=1), utc_day, utc_day + timedelta(days=1)}
    shares = next_start.date() == day_of(epoch_ms)  # (never for UTC: that day starts later)
    # Close to the next day's start, a visit may go on past it (across the salt change too).
    near = epoch_ms >= (next_start - JOIN_LOOKBACK).timestamp() * 1000
    return {day, day + timedelta(days=1)} if shares or near else {day}


def marker_item(site: str, day: date, marked_at_ms: int, pk: str = DIRTY_PK) -> dict[str, Any]:
    """A marker in partition `pk` that (site, day) needs work: by default, that the local day
    got events since its rollup was computed (the archive's pending markers use their own)."""
    return {
        "pk": {"S": pk},
        "sk": {"S": f"{site}#{day.isoformat()}"},
        "marked_at": {"N": str(marked_at_ms)},
    }


def dirty_item(site: str, day: date, marked_at_ms: int) -> dict[str, Any]:
    """A marker that (site, local day) got events since its rollup was computed."""
    return marker_item(site, day, marked_at_ms)


def rollup_items(
    site: str, day: date, parts: list[bytes], computed_at_ms: int
) -> list[dict[str, Any]]:
    return [
        {
            "pk": {"S": f"{ROLLUP_PREFIX}{site}"},
            "sk": {"S": f"{day.isoformat()}#{index:03d}"},
            "parts": {"N": str(len(parts))},
            "computed_at": {"N": str(computed_at_ms)},
            "b": {"B": part},
        }
        for index, part in enumerate(parts)
    ]


def drop_pk(site: str, day: date) -> str:
    return f"drop#{site or '-'}#{day.isoformat()}"


def sort_key(epoch_ms: int, request_id: str) -> str:
    return f"{epoch_ms:013d}#{request_id}"


def event_item(event: Mapping[str, Any], retention_days: int, shards: int = 1) -> dict[str, Any]:
    """The DynamoDB item of an enriched event.

    The fields travel as one compact JSON attribute: attribute names are billed in every
    item's size (so in every read and write unit), and no query filters on them server-side.
    """
    ts = event["ts"]
    return {
        "pk": {"S": event_pk(event["site"], day_of(ts), shard_of(event["request_id"], shards))},
        "sk": {"S": sort_key(ts, event["request_id"])},
        "expires_at": {"N": str(ts // 1000 + retention_days * 86400)},
        "e": {"S": _EVENT_JSON.encode(event)},
    }


# What json.dumps(event, ensure_ascii=False, separators=(",", ":")) builds on every call: the
# same text, without a new encoder per item.
_EVENT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def event_from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(item["e"]["S"])


def drop_item(site: str, epoch_ms: int, request_id: str, reason: str) -> dict[str, Any]:
    return {
        "pk": {"S": drop_pk(site, day_of(epoch_ms))},
        "sk": {"S": sort_key(epoch_ms, request_id)},
        "reason": {"S": reason},
        "expires_at": {"N": str(epoch_ms // 1000 + DROP_RETENTION_DAYS * 86400)},
    }


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


def markers(
    dynamodb: Any, table: str, pk: str, site: str | None = None
) -> list[tuple[str, date, str]]:
    """(site, day, marked_at) of every marker in partition `pk`, or of one site's."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk" + (" AND begins_with(sk, :site)" if site else ""),
        "ExpressionAttributeValues": {
            ":pk": {"S": pk},
            **({":site": {"S": f"{site}#"}} if site else {}),
        },
    }
    found = []
    while True:
        page = dynamodb.query(**kwargs)
        for item in page.get("Items", []):
            marked_site, marked_day = item["sk"]["S"].rsplit("#", 1)
            found.append((marked_site, date.fromisoformat(marked_day), item["marked_at"]["N"]))
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def dirty_days(dynamodb: Any, table: str, site: str | None = None) -> list[tuple[str, date, str]]:
    """(site, day, marked_at) of every rollup marker, or of one site's."""
    return markers(dynamodb, table, DIRTY_PK, site)


def clear_mark(dynamodb: Any, table: str, pk: str, site: str, day: date, marked_at: str) -> None:
    """Remove a marker unless it was marked again meanwhile (a late event while the work was
    done: then the next run does it again)."""
    try:
        dynamodb.delete_item(
            TableName=table,
            Key={"pk": {"S": pk}, "sk": {"S": f"{site}#{day.isoformat()}"}},
            ConditionExpression="marked_at = :m",
            ExpressionAttributeValues={":m": {"N": marked_at}},
        )
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise


def mark_rolled_up_days(dynamodb: Any, table: str, site: str, marked_at_ms: int) -> int:
    """Mark every day that has a rollup, and its neighbours, for recomputation (after the
    site's time zone changed, its local days moved); how many markers were written."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"{ROLLUP_PREFIX}{site}"}},
        "ProjectionExpression": "sk",
    }
    days: set[date] = set()
    while True:
        page = dynamodb.query(**kwargs)
        for item in page.get("Items", []):
            day = date.fromisoformat(item["sk"]["S"].split("#")[0])
            days |= {day - timedelta(days=1), day, day + timedelta(days=1)}
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    markers = [dirty_item(site, day, marked_at_ms) for day in sorted(days)]
    if BatchWriter(dynamodb, table).write(markers):
        raise RuntimeError(f"the rollups of {site} could not all be marked for recomputation")
    return len(markers)
