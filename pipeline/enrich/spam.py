"""Referrer spam: hits "referred" by domains on Matomo's community-maintained blocklist.

Referrer spammers send fake hits so that their domain shows up in a site's sources. The list
of known spammer domains is Matomo's `referrer-spam-list` (public domain, updated by pull
requests; the same list Matomo and many analytics tools use). It is published on GitHub,
not on PyPI or npm, so it is fetched at run time, never vendored: `python -m pipeline.spam
update` stores it in the site registry's table, the scheduled compactor Lambda refreshes it
once a day, and the consumer reads it (cached `CACHE_SECONDS`). A hit whose external
referrer's host, or any parent domain of it, is on the list is dropped as `referrer_spam`.

    python -m pipeline.spam update [--source URL-or-file]
    python -m pipeline.spam show
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import aws
from pipeline.config import Settings
from pipeline.enrich.sites import RESERVED_KEY_PREFIX, normalize_domain
from pipeline.errors import InvalidSite, PipelineError
from pipeline.stack import settings_from_env

# Not a domain, so it can never collide with a registered site in the same table.
LIST_KEY = f"{RESERVED_KEY_PREFIX}referrer-spam"
CACHE_SECONDS = 300.0
REFRESH_AFTER_SECONDS = 24 * 3600
FETCH_TIMEOUT_SECONDS = 20
MAX_LIST_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Blocklist:
    domains: frozenset[str]
    source: str = ""
    updated_at_ms: int = 0


EMPTY = Blocklist(frozenset())


def parse_list(text: str) -> frozenset[str]:
    """One domain per line; blank lines, `#` comments and anything not a domain are skipped."""
    domains = set()
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            domains.add(normalize_domain(entry))
        except InvalidSite:
            continue
    return frozenset(domains)


def is_spam(host: str, domains: frozenset[str]) -> bool:
    """Whether `host` or a parent domain of it is listed (`x.spam.example` by `spam.example`)."""
    labels = host.lower().split(".")
    return any(".".join(labels[i:]) in domains for i in range(len(labels)))


def blocklist_item(blocklist: Blocklist) -> dict[str, Any]:
    packed = zlib.compress("\n".join(sorted(blocklist.domains)).encode(), 9)
    return {
        "site": {"S": LIST_KEY},
        "domains": {"B": packed},
        "count": {"N": str(len(blocklist.domains))},
        "source": {"S": blocklist.source},
        "updated_at": {"N": str(blocklist.updated_at_ms)},
    }


def blocklist_from_item(item: dict[str, Any]) -> Blocklist:
    text = zlib.decompress(item["domains"]["B"]).decode()
    return Blocklist(
        domains=frozenset(text.split("\n")) - {""},
        source=item["source"]["S"],
        updated_at_ms=int(item["updated_at"]["N"]),
    )


def read_blocklist(dynamodb: Any, table: str) -> Blocklist:
    item = dynamodb.get_item(TableName=table, Key={"site": {"S": LIST_KEY}}).get("Item")
    return blocklist_from_item(item) if item else EMPTY


class BlocklistCache:
    """The consumer's copy of the stored list, re-read every `cache_seconds`."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dynamodb, self._table = dynamodb, table
        self._cache_seconds, self._clock = cache_seconds, clock
        self._read_at: float | None = None
        self._domains: frozenset[str] = frozenset()

    def domains(self) -> frozenset[str]:
        """The listed domains. Raises on a read error (the caller redelivers its batch)."""
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._cache_seconds:
            self._domains = read_blocklist(self._dynamodb, self._table).domains
            self._read_at = now
        return self._domains


def _read(source: str) -> bytes:
    if not source.startswith(("https://", "http://")):
        return Path(source).read_bytes()
    # S310: only http(s) reaches urllib (checked above), never file: or a custom scheme.
    request = urllib.request.Request(source, headers={"User-Agent": "analytics-spam-list/1"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310
        return response.read(MAX_LIST_BYTES + 1)


def fetch_list(source: str) -> str:
    """The list's text from an http(s) URL or a local file."""
    try:
        data = _read(source)
    except OSError as exc:
        raise PipelineError(f"could not fetch the referrer-spam list from {source}: {exc}") from exc
    if len(data) > MAX_LIST_BYTES:
        # A cut-off last line could be a shorter, innocent domain: refuse rather than truncate.
        raise PipelineError(f"{source} is over {MAX_LIST_BYTES:,} bytes: not a referrer-spam list")
    return data.decode("utf-8", "replace")


def update_blocklist(settings: Settings, source: str, now: datetime | None = None) -> Blocklist:
    """Fetch the list from `source` and store it; refuses an empty list (a broken download)."""
    domains = parse_list(fetch_list(source))
    if not domains:
        raise PipelineError(f"{source} holds no domains: the stored list is left as it was")
    now = now or datetime.now(UTC)
    blocklist = Blocklist(domains, source, int(now.timestamp() * 1000))
    with aws.explained(settings, f"Table {settings.sites_table!r}"):
        aws.client("dynamodb", settings).put_item(
            TableName=settings.sites_table, Item=blocklist_item(blocklist)
        )
    return blocklist


def refresh_if_stale(settings: Settings, now: datetime | None = None) -> Blocklist | None:
    """Update the stored list from `settings.spam_list_url` when it is older than a day;
    None when it was fresh or no source is set."""
    source, now = settings.spam_list_url, now or datetime.now(UTC)
    if not source:
        return None
    with aws.explained(settings, f"Table {settings.sites_table!r}"):
        stored = read_blocklist(aws.client("dynamodb", settings), settings.sites_table)
    age_s = now.timestamp() - stored.updated_at_ms / 1000
    return update_blocklist(settings, source, now) if age_s >= REFRESH_AFTER_SECONDS else None


def describe(blocklist: Blocklist) -> str:
    if not blocklist.domains:
        return "No referrer-spam list stored: run `python -m pipeline.spam update`."
    updated = datetime.fromtimestamp(blocklist.updated_at_ms / 1000, UTC)
    return (
        f"{len(blocklist.domains):,} domains from {blocklist.source}, "
        f"updated {updated:%Y-%m-%d %H:%M} UTC"
    )


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.spam", description="The referrer-spam blocklist."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    update = commands.add_parser("update", help="fetch the list and store it")
    update.add_argument(
        "--source", help="a URL or a file (default: PIPELINE_SPAM_LIST_URL, else Matomo's list)"
    )
    commands.add_parser("show", help="how many domains are stored, from where, since when")
    return parser.parse_args(None if argv is None else list(argv))


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from_env()
    try:
        if args.command == "update":
            source = args.source or settings.spam_list_url
            print(describe(update_blocklist(settings, source)))
        else:
            with aws.explained(settings, f"Table {settings.sites_table!r}"):
                stored = read_blocklist(aws.client("dynamodb", settings), settings.sites_table)
            print(describe(stored))
    except (PipelineError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
