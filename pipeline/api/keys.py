"""Stats API keys per site, and the per-key rate limit, both kept in the site registry table.

A key is 64 URL-safe characters from `secrets` (Plausible's length and alphabet), shown once
when it is made. The registry keeps only its SHA-256, in an item of its own beside the sites:

    {"site": "#key#<sha256 hex>", "key_site": "example.com", "prefix": "AbC12x",
     "name": "CI", "created_at": "2026-11-27T15:00:00Z"}

The `#` start keeps it apart from domains (`pipeline.enrich.sites.RESERVED_KEY_PREFIX`: no
domain starts with it, and listing sites skips such items). A plain hash is enough: a key is
384 random bits, so there is nothing to guess from the hash (passwords need slow salted hashes
because people choose them; these nobody chooses). The visible six-character prefix names a key
in `list` and `revoke`, as Plausible shows it.

The rate limit is Plausible's: 600 requests per key per hour (`PIPELINE_API_RATE_LIMIT` changes
it). It is a fixed one-hour window counted in DynamoDB with an atomic `UpdateItem ADD`, so every
process and Lambda container shares one count; each window's item expires through the table's
TTL an hour after the window closes.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline import aws
from pipeline.config import Settings
from pipeline.errors import InvalidSite
from pipeline.resources import TTL_ATTRIBUTE

# Items of the registry that are not sites start with "#" (pipeline.enrich.sites, which imports
# this module for its `key` command: it cannot be imported back).
KEY_ITEM_PREFIX = "#key#"
RATE_ITEM_PREFIX = "#rate#"
KEY_CHARS = 64
PREFIX_CHARS = 6
MAX_NAME_CHARS = 100
# A revoked key (or a new one) is seen within this time, like a newly registered site.
CACHE_SECONDS = 60.0
MAX_CACHED = 10_000  # unknown keys are cached too: the cache must not grow without end
RATE_WINDOW_SECONDS = 3600
DEFAULT_HOURLY_LIMIT = 600  # Plausible's default for a key (Auth.ApiKey.hourly_request_limit)
ENV_RATE_LIMIT = "PIPELINE_API_RATE_LIMIT"


@dataclass(frozen=True)
class ApiKey:
    """A key as `list` shows it: never the key itself, which is not stored."""

    site: str
    prefix: str
    name: str
    created_at: str


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """64 URL-safe characters: 48 random bytes in base64."""
    return secrets.token_urlsafe(KEY_CHARS * 3 // 4)


def key_item(site: str, key: str, name: str, created_at: str) -> dict[str, Any]:
    return {
        "site": {"S": KEY_ITEM_PREFIX + key_hash(key)},
        "key_site": {"S": site},
        "prefix": {"S": key[:PREFIX_CHARS]},
        "name": {"S": name},
        "created_at": {"S": created_at},
    }


def key_from_item(item: dict[str, Any]) -> ApiKey:
    return ApiKey(
        site=item["key_site"]["S"],
        prefix=item["prefix"]["S"],
        name=item.get("name", {}).get("S", ""),
        created_at=item.get("created_at", {}).get("S", ""),
    )


def _check_name(name: str) -> str:
    name = name.strip()
    if len(name) > MAX_NAME_CHARS or any(ord(c) < 32 for c in name):
        raise InvalidSite(f"a key's name is at most {MAX_NAME_CHARS} printable characters")
    return name


def create_key(settings: Settings, site: str, name: str = "") -> str:
    """A new key for `site` (a registered domain, already normalised); the plaintext, returned
    this once only."""
    key = new_key()
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with aws.explained(settings, f"Table {settings.sites_table!r}"):
        aws.client("dynamodb", settings).put_item(
            TableName=settings.sites_table,
            Item=key_item(site, key, _check_name(name), created),
            # 384 random bits never collide; the condition only guards against a broken RNG.
            ConditionExpression="attribute_not_exists(site)",
        )
    return key


def _key_items(settings: Settings, site: str) -> list[dict[str, Any]]:
    """Every key item of `site` (a scan: the registry holds a few hundred items at most)."""
    items: list[dict[str, Any]] = []
    with aws.explained(settings, f"Table {settings.sites_table!r}"):
        dynamodb, kwargs = aws.client("dynamodb", settings), {}
        while True:
            page = dynamodb.scan(
                TableName=settings.sites_table,
                FilterExpression="begins_with(site, :p) AND key_site = :s",
                ExpressionAttributeValues={":p": {"S": KEY_ITEM_PREFIX}, ":s": {"S": site}},
                **kwargs,
            )
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def list_keys(settings: Settings, site: str) -> list[ApiKey]:
    """`site`'s keys, oldest first."""
    return sorted(
        (key_from_item(i) for i in _key_items(settings, site)),
        key=lambda k: (k.created_at, k.prefix),
    )


def revoke_key(settings: Settings, site: str, prefix: str) -> int:
    """Delete `site`'s keys whose visible prefix is `prefix`; how many there were. Running
    processes stop accepting them within `CACHE_SECONDS`."""
    if len(prefix) != PREFIX_CHARS:
        raise InvalidSite(f"give the key's {PREFIX_CHARS}-character prefix, as `list` shows it")
    doomed = [i for i in _key_items(settings, site) if i["prefix"]["S"] == prefix]
    with aws.explained(settings, f"Table {settings.sites_table!r}"):
        dynamodb = aws.client("dynamodb", settings)
        for item in doomed:
            dynamodb.delete_item(TableName=settings.sites_table, Key={"site": item["site"]})
    return len(doomed)


class KeyRegistry:
    """Cached look-ups of the site a key belongs to (unknown keys are cached too)."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}  # by hash: no plaintext kept

    def site_of(self, key: str) -> str | None:
        """The site `key` reads, or None for a key that is not (or no longer) valid."""
        if not key or len(key) > 4 * KEY_CHARS:
            return None
        digest, now = key_hash(key), self._clock()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"site": {"S": KEY_ITEM_PREFIX + digest}}
        ).get("Item")
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        site = item["key_site"]["S"] if item else None
        self._cache[digest] = (now, site)
        return site


def site_of_key(settings: Settings, key: str) -> str | None:
    """The site `key` reads, or None (uncached: one read; the app keeps a `KeyRegistry`)."""
    with aws.explained(settings, f"Table {settings.sites_table!r}"):
        return KeyRegistry(aws.client("dynamodb", settings), settings.sites_table).site_of(key)


def window_start(now_s: float, window_s: int = RATE_WINDOW_SECONDS) -> int:
    return int(now_s // window_s * window_s)


def count_request(
    dynamodb: Any, table: str, key: str, now_s: float, window_s: int = RATE_WINDOW_SECONDS
) -> int:
    """Count one request of `key` in the current window; the window's count with it."""
    start = window_start(now_s, window_s)
    response = dynamodb.update_item(
        TableName=table,
        Key={"site": {"S": f"{RATE_ITEM_PREFIX}{key_hash(key)}#{start}"}},
        UpdateExpression="ADD #n :one SET #ttl = if_not_exists(#ttl, :expires)",
        ExpressionAttributeNames={"#n": "requests", "#ttl": TTL_ATTRIBUTE},
        ExpressionAttributeValues={
            ":one": {"N": "1"},
            ":expires": {"N": str(start + 2 * window_s)},
        },
        ReturnValues="UPDATED_NEW",
    )
    return int(response["Attributes"]["requests"]["N"])


def hourly_limit(env: Mapping[str, str]) -> int:
    """The per-key hourly limit from `PIPELINE_API_RATE_LIMIT` (default Plausible's 600)."""
    raw = (env.get(ENV_RATE_LIMIT) or "").strip()
    if not raw:
        return DEFAULT_HOURLY_LIMIT
    value = int(raw)
    if value < 1:
        raise ValueError(f"{ENV_RATE_LIMIT} must be a positive number of requests per hour")
    return value
