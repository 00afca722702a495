"""Data-centre traffic: hits from the address ranges that cloud providers publish.

A visitor's browser runs on a phone or a desktop behind a home or office connection; a hit
from a cloud provider's addresses is a script, a headless browser or a crawler that did not
say so in its User-Agent. The providers publish their ranges, machine-readable and kept
current by themselves, so the lists are fetched at run time, never vendored:
`python -m pipeline.datacentres update` stores them (merged into sorted integer ranges,
compressed) in the site registry's table under a reserved key, the scheduled compactor
Lambda refreshes them once a day, and the consumer reads them (cached `CACHE_SECONDS`).

Default sources (each parsed by its own published format, detected from the content):

- AWS `ip-ranges.json`, without the CloudFront ranges: a viewer never has a CloudFront
  address, but a site that proxies the pixel through its own CloudFront (`data-api`) does.
- Google Cloud `cloud.json` (customer-usable ranges only; `goog.json` would add Google's
  user-facing services).
- Oracle Cloud `public_ip_ranges.json`.
- DigitalOcean's geofeed CSV (RFC 8805: `prefix,country,region,city,postcode`); any geofeed
  or plain list of one CIDR a line reads the same way (e.g. Linode's).

Azure is left out: its Service Tags file has a new URL every week behind a download page,
with no stable address to fetch. Cloudflare's ranges are left out: WARP and iCloud Private
Relay-style egress carry real people.

    python -m pipeline.datacentres update [--source URL-or-file ...]
    python -m pipeline.datacentres show
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import json
import socket
import sys
import time
import urllib.request
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import aws
from pipeline.config import DATACENTRE_SOURCES, Settings
from pipeline.enrich.sites import RESERVED_KEY_PREFIX
from pipeline.errors import PipelineError
from pipeline.stack import settings_from_env

# Not a domain, so it can never collide with a registered site in the same table.
LIST_KEY = f"{RESERVED_KEY_PREFIX}datacentre-ranges"
CACHE_SECONDS = 300.0
REFRESH_AFTER_SECONDS = 24 * 3600
FETCH_TIMEOUT_SECONDS = 30
# AWS's file is ~2 MB today; a response ten times that is not a list of ranges.
MAX_SOURCE_BYTES = 24 * 1024 * 1024
# DynamoDB's item limit is 400 KB: leave room for the other attributes.
MAX_PACKED_BYTES = 380 * 1024
DEFAULT_SOURCES = DATACENTRE_SOURCES
# AWS services whose addresses stand for someone else's viewers (see the module docstring).
AWS_PROXY_SERVICES = frozenset({"CLOUDFRONT", "CLOUDFRONT_ORIGIN_FACING"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Spans = tuple[tuple[int, ...], tuple[int, ...]]  # (sorted starts, matching ends), inclusive


@dataclass(frozen=True)
class Ranges:
    """Merged, sorted, non-overlapping address ranges per IP version, as integers."""

    v4: Spans = ((), ())
    v6: Spans = ((), ())
    source: str = ""
    updated_at_ms: int = 0

    @property
    def count(self) -> int:
        return len(self.v4[0]) + len(self.v6[0])


EMPTY = Ranges()


def _network(text: str) -> Network | None:
    try:
        return ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        return None


def _aws(data: dict[str, Any]) -> list[str]:
    proxies = {
        p.get("ip_prefix") or p.get("ipv6_prefix")
        for p in [*data.get("prefixes", []), *data.get("ipv6_prefixes", [])]
        if p.get("service") in AWS_PROXY_SERVICES
    }
    prefixes = [p.get("ip_prefix", "") for p in data.get("prefixes", [])]
    prefixes += [p.get("ipv6_prefix", "") for p in data.get("ipv6_prefixes", [])]
    return [p for p in prefixes if p not in proxies]


def _google(data: dict[str, Any]) -> list[str]:
    return [p.get("ipv4Prefix") or p.get("ipv6Prefix") or "" for p in data["prefixes"]]


def _oracle(data: dict[str, Any]) -> list[str]:
    return [c.get("cidr", "") for region in data["regions"] for c in region.get("cidrs", [])]


def _json_prefixes(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return []
    first = (data.get("prefixes") or [{}])[0]
    if "ipv6_prefixes" in data or "ip_prefix" in first:
        return _aws(data)
    if "ipv4Prefix" in first or "ipv6Prefix" in first:
        return _google(data)
    if "regions" in data:
        return _oracle(data)
    return []


def _csv_prefixes(text: str) -> list[str]:
    # Geofeeds (RFC 8805) and plain lists: the first field of each line; `#` starts a comment.
    lines = (line.split("#", 1)[0] for line in text.splitlines())
    return [row[0] for row in csv.reader(line for line in lines if line.strip()) if row]


def parse_ranges(text: str) -> list[Network]:
    """Every network in one provider's published file (AWS, Google Cloud or Oracle JSON, a
    geofeed CSV or a plain list); entries that are not networks are skipped."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            prefixes = _json_prefixes(json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError):
            prefixes = []
    else:
        prefixes = _csv_prefixes(text)
    return [net for net in map(_network, prefixes) if net is not None]


def _merge(networks: Iterable[Network]) -> Spans:
    spans = sorted((int(n.network_address), int(n.broadcast_address)) for n in networks)
    starts: list[int] = []
    ends: list[int] = []
    for start, end in spans:
        if ends and start <= ends[-1] + 1:  # overlapping or adjacent: one range
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return tuple(starts), tuple(ends)


def build_ranges(networks: Iterable[Network], source: str = "", updated_at_ms: int = 0) -> Ranges:
    networks = list(networks)
    return Ranges(
        v4=_merge(n for n in networks if n.version == 4),
        v6=_merge(n for n in networks if n.version == 6),
        source=source,
        updated_at_ms=updated_at_ms,
    )


_V4_MAPPED = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96, IPv4 hosts written as IPv6


def in_datacentre(ip: str, ranges: Ranges) -> bool:
    """Whether `ip` (IPv4 or IPv6) lies in one of the ranges; False for anything not an IP.

    inet_pton reads an address about twenty times faster than `ipaddress` and refuses the same
    malformed ones; this runs for every hit."""
    try:
        if ":" in ip:
            packed = socket.inet_pton(socket.AF_INET6, ip)
            if packed.startswith(_V4_MAPPED):  # ::ffff:192.0.2.1 is the IPv4 host it names
                packed = packed[12:]
        else:
            packed = socket.inet_pton(socket.AF_INET, ip)
    except (OSError, ValueError, TypeError):
        return False
    starts, ends = ranges.v4 if len(packed) == 4 else ranges.v6
    value = int.from_bytes(packed, "big")
    i = bisect_right(starts, value) - 1
    return i >= 0 and value <= ends[i]


def _pack(spans: Spans, width: int) -> bytes:
    return b"".join(
        s.to_bytes(width, "big") + e.to_bytes(width, "big") for s, e in zip(*spans, strict=True)
    )


def _unpack(data: bytes, width: int) -> Spans:
    values = [int.from_bytes(data[i : i + width], "big") for i in range(0, len(data), width)]
    return tuple(values[0::2]), tuple(values[1::2])


def ranges_item(ranges: Ranges) -> dict[str, Any]:
    v4, v6 = zlib.compress(_pack(ranges.v4, 4), 9), zlib.compress(_pack(ranges.v6, 16), 9)
    if len(v4) + len(v6) > MAX_PACKED_BYTES:
        raise PipelineError(
            f"{ranges.count:,} ranges pack to {len(v4) + len(v6):,} bytes, over DynamoDB's "
            "item size: the stored ranges are left as they were"
        )
    return {
        "site": {"S": LIST_KEY},
        "v4": {"B": v4},
        "v6": {"B": v6},
        "count": {"N": str(ranges.count)},
        "source": {"S": ranges.source},
        "updated_at": {"N": str(ranges.updated_at_ms)},
    }


def ranges_from_item(item: dict[str, Any]) -> Ranges:
    return Ranges(
        v4=_unpack(zlib.decompress(item["v4"]["B"]), 4),
        v6=_unpack(zlib.decompress(item["v6"]["B"]), 16),
        source=item["source"]["S"],
        updated_at_ms=int(item["updated_at"]["N"]),
    )


def read_ranges(dynamodb: Any, table: str) -> Ranges:
    item = dynamodb.get_item(TableName=table, Key={"site": {"S": LIST_KEY}}).get("Item")
    return ranges_from_item(item) if item else EMPTY


class RangesCache:
    """The consumer's copy of the stored ranges, re-read every `cache_seconds`."""

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
        self._ranges = EMPTY

    def ranges(self) -> Ranges:
        """The stored ranges. Raises on a read error (the caller redelivers its batch)."""
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._cache_seconds:
            self._ranges = read_ranges(self._dynamodb, self._table)
            self._read_at = now
        return self._ranges


def _read(source: str) -> bytes:
    if not source.startswith(("https://", "http://")):
        with Path(source).open("rb") as file:
            return file.read(MAX_SOURCE_BYTES + 1)
    # S310: only http(s) reaches urllib (checked above), never file: or a custom scheme.
    request = urllib.request.Request(source, headers={"User-Agent": "analytics-datacentres/1"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310
        return response.read(MAX_SOURCE_BYTES + 1)


def fetch_source(source: str) -> list[Network]:
    """The networks one source publishes, from an http(s) URL or a local file."""
    try:
        data = _read(source)
    except OSError as exc:
        raise PipelineError(f"could not fetch data-centre ranges from {source}: {exc}") from exc
    if len(data) > MAX_SOURCE_BYTES:
        # A cut-off file could miss ranges or end inside one: refuse rather than truncate.
        raise PipelineError(f"{source} is over {MAX_SOURCE_BYTES:,} bytes: not a list of ranges")
    networks = parse_ranges(data.decode("utf-8", "replace"))
    if not networks:
        raise PipelineError(f"{source} holds no address ranges")
    return networks


def update_ranges(
    settings: Settings, sources: Sequence[str] = DEFAULT_SOURCES, now: datetime | None = None
) -> Ranges:
    """Fetch every source and store their union. Any failed, empty or oversized source
    leaves the stored ranges as they were (a partial list would let data centres through)."""
    if not sources:
        raise PipelineError("no data-centre range source given")
    networks = [net for source in sources for net in fetch_source(source)]
    now = now or datetime.now(UTC)
    ranges = build_ranges(networks, " ".join(sources), int(now.timestamp() * 1000))
    item = ranges_item(ranges)
    with aws.explained(settings, f"Table {settings.sites_table!r}"):
        aws.client("dynamodb", settings).put_item(TableName=settings.sites_table, Item=item)
    return ranges


def sources_for(settings: Settings) -> tuple[str, ...]:
    """Where the ranges are fetched from: `settings.datacentre_sources` (an empty tuple never
    fetches), else the providers' published URLs."""
    return settings.datacentre_sources


def refresh_if_stale(
    settings: Settings, sources: Sequence[str] = DEFAULT_SOURCES, now: datetime | None = None
) -> Ranges | None:
    """Update the stored ranges when they are older than a day; None when they were fresh or
    no source is given."""
    now = now or datetime.now(UTC)
    if not sources:
        return None
    with aws.explained(settings, f"Table {settings.sites_table!r}"):
        stored = read_ranges(aws.client("dynamodb", settings), settings.sites_table)
    age_s = now.timestamp() - stored.updated_at_ms / 1000
    return update_ranges(settings, sources, now) if age_s >= REFRESH_AFTER_SECONDS else None


def describe(ranges: Ranges) -> str:
    if not ranges.count:
        return "No data-centre ranges stored: run `python -m pipeline.datacentres update`."
    updated = datetime.fromtimestamp(ranges.updated_at_ms / 1000, UTC)
    return (
        f"{len(ranges.v4[0]):,} IPv4 and {len(ranges.v6[0]):,} IPv6 ranges from "
        f"{ranges.source}, updated {updated:%Y-%m-%d %H:%M} UTC"
    )


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.datacentres",
        description="Cloud providers' published address ranges (hits from them are dropped).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    update = commands.add_parser("update", help="fetch the ranges and store them")
    update.add_argument(
        "--source",
        action="append",
        help="a URL or a file; repeat for several (default: AWS, Google Cloud, Oracle, "
        "DigitalOcean)",
    )
    commands.add_parser("show", help="how many ranges are stored, from where, since when")
    return parser.parse_args(None if argv is None else list(argv))


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from_env()
    try:
        if args.command == "update":
            print(describe(update_ranges(settings, args.source or DEFAULT_SOURCES)))
        else:
            with aws.explained(settings, f"Table {settings.sites_table!r}"):
                stored = read_ranges(aws.client("dynamodb", settings), settings.sites_table)
            print(describe(stored))
    except (PipelineError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
