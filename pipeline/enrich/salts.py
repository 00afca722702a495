"""Daily rotating salts for the cookieless visitor hash (Plausible's scheme).

`visitor = keyed_hash(salt_of_the_event's_UTC_day, site, ip, user_agent)`, truncated to
64 bits. A salt is random, created on the first event of its day, kept in one DynamoDB
table so every consumer instance uses the same one, usable for its day and the next (late
events), and deleted after that: two days on, a hash can no longer be recomputed or
linked to any other day.

Visits across midnight: for a hit received within `CARRY_OVER` after a UTC midnight, the
consumer also hashes it under the previous day's salt (`prev_visitor`), which is still inside
the window then, so the metrics can continue a visit that began before midnight. That salt is
deleted on the same schedule; the second hash exists only for hits of those first minutes.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws import error_code

SALT_BYTES = 32
SALT_LIFETIME_DAYS = 2  # the salt of day D exists on D and D+1, and is gone from D+2 on
# Plausible continues a visit while the gap to its previous event is at most 30 minutes (its
# session cache's lifetime; `pipeline.stats.metrics`). A hit later than this after midnight
# can't continue a visit of the day before (every event of that day is at least 31 minutes
# older), so only the hits of these first minutes (30 and a margin) need the previous day's
# hash.
CARRY_OVER = timedelta(minutes=31)


def visitor_hash(salt: bytes, site: str, ip: str, user_agent: str) -> str:
    """A 16-hex-digit visitor id that can't be reversed or linked across days."""
    message = "\x00".join((site, ip, user_agent)).encode("utf-8", "replace")
    return hashlib.blake2b(message, key=salt, digest_size=8).hexdigest()


def salt_window(now: datetime) -> tuple[date, date]:
    """The first and last UTC day whose salt may be used (created) at `now`."""
    today = now.astimezone(UTC).date()
    return today - timedelta(days=SALT_LIFETIME_DAYS - 1), today


def salt_expiry(day: date) -> int:
    """Epoch seconds at which the salt of `day` must be gone (also its DynamoDB TTL)."""
    end = datetime.combine(day + timedelta(days=SALT_LIFETIME_DAYS), time.min, tzinfo=UTC)
    return int(end.timestamp())


class SaltStore:
    """Get-or-create of the daily salts, race-safe across concurrent consumers."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._random_bytes = random_bytes
        self._cache: dict[date, bytes] = {}
        self._purged_through: date | None = None

    def salt_for(self, day: date, now: datetime) -> bytes | None:
        """The salt of `day`, or None when `day` is outside the salt window at `now`."""
        first, _ = salt_window(now)
        if day < first:
            return None
        self._forget_before(first)
        if day not in self._cache:
            self._cache[day] = self._read(day) or self._create(day)
            self.purge_expired(now)
        return self._cache[day]

    def purge_expired(self, now: datetime) -> int:
        """Delete every stored salt older than the window (TTL deletion lags up to days)."""
        first, _ = salt_window(now)
        if self._purged_through == first:
            return 0
        deleted = 0
        for day in self._stored_days():
            if day < first:
                self._dynamodb.delete_item(
                    TableName=self._table, Key={"day": {"S": day.isoformat()}}
                )
                deleted += 1
        self._purged_through = first
        return deleted

    def _forget_before(self, first: date) -> None:
        for day in [d for d in self._cache if d < first]:
            del self._cache[day]

    def _stored_days(self) -> list[date]:
        days, kwargs = [], {}
        while True:
            page = self._dynamodb.scan(
                TableName=self._table,
                ProjectionExpression="#d",
                ExpressionAttributeNames={"#d": "day"},
                **kwargs,
            )
            days += [date.fromisoformat(item["day"]["S"]) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return days
            kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    def _read(self, day: date) -> bytes | None:
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"day": {"S": day.isoformat()}}, ConsistentRead=True
        ).get("Item")
        return item["salt"]["B"] if item else None

    def _create(self, day: date) -> bytes:
        salt = self._random_bytes(SALT_BYTES)
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={
                    "day": {"S": day.isoformat()},
                    "salt": {"B": salt},
                    "expires_at": {"N": str(salt_expiry(day))},
                },
                ConditionExpression="attribute_not_exists(#d)",
                ExpressionAttributeNames={"#d": "day"},
            )
            return salt
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
        # Another consumer created it first: everyone must use that one.
        existing = self._read(day)
        if existing is None:
            raise RuntimeError(f"salt for {day} vanished during creation")
        return existing
