"""The site registry: which sites are counted, and from which page hostnames.

Only a registered site's hits are counted, and only when the page's host is one of the site's
allowed hostnames, so nobody can pollute a site's numbers by sending its domain from another
page (drop reasons `unknown_site` and `foreign_host`). A site is one item in its own table:

    {"site": "example.com", "hostnames": ["example.com", "*.example.com"]}

`*.example.com` allows every subdomain (not the apex itself). A site may also keep some query
parameters in its page URLs (`"query_params": ["page", "q"]`; every other parameter but
`utm_*` is stripped, as always). Each site has a time zone (`"timezone": "Europe/Berlin"`, an
IANA name; an item without one is UTC): its daily rollups cover its own local days, and its
dashboard opens in that zone (Plausible's model). The consumer reads the registry
with BatchGetItem and keeps answers, known and unknown, for `CACHE_SECONDS`: a newly
registered site is counted within that time.

    python -m pipeline.sites add example.com [--hostname shop.example.net ...]
                                             [--keep-query page ...]
                                             [--timezone Europe/Berlin]
    python -m pipeline.sites list
    python -m pipeline.sites remove example.com
    python -m pipeline.sites key create|list|revoke example.com [--name CI] [PREFIX]
    python -m pipeline.sites report add|list|remove example.com [EMAIL] [--weekly] ...
    python -m pipeline.sites share create|list|revoke example.com ...
    python -m pipeline.sites access add|list|remove example.com [EMAIL]

`key` manages the site's Stats API keys (`pipeline.api.keys`: stored only as hashes, in this
table, beside the sites).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline import aws
from pipeline.config import Settings
from pipeline.errors import InvalidSite, PipelineError, StorageError
from pipeline.stack import settings_from_env
from pipeline.store.storage import mark_rolled_up_days

CACHE_SECONDS = 60.0
# Keys starting with this are not domains: they hold registry-wide items (the referrer-spam list).
RESERVED_KEY_PREFIX = "#"
# Hits may name any site: the cache of answers (unknown sites included) must not grow without end.
MAX_CACHED = 10_000
BATCH_GET_LIMIT = 100
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_QUERY_PARAM = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,100}$")


@dataclass(frozen=True)
class Extension:
    """Commands another module adds to `python -m pipeline.sites` (report, share, access).
    Those modules use this one, so `pipeline/sites.py`, the command's entry, wires them in."""

    names: tuple[str, ...]
    add_parsers: Callable[[Any], None]  # given the subparsers of `python -m pipeline.sites`
    run: Callable[[Settings, argparse.Namespace], int]  # the exit status


@dataclass(frozen=True)
class Site:
    domain: str
    hostnames: tuple[str, ...]
    query_params: tuple[str, ...] = ()
    timezone: str = "UTC"


def normalize_domain(text: str) -> str:
    """`" Example.COM. "` → `"example.com"`; anything that is not a hostname is refused."""
    domain = text.strip().lower().rstrip(".")
    if len(domain) > 253 or not _HOSTNAME.match(domain):
        raise InvalidSite(f"{text!r} is not a domain name like example.com")
    return domain


def normalize_hostname_pattern(text: str) -> str:
    """A hostname, or `*.` + a hostname for all of its subdomains."""
    pattern = text.strip().lower().rstrip(".")
    base = pattern[2:] if pattern.startswith("*.") else pattern
    try:
        normalize_domain(base)
    except InvalidSite:
        raise InvalidSite(
            f"{text!r} is not a hostname (shop.example.com) or a wildcard (*.example.com)"
        ) from None
    return pattern


def default_hostnames(domain: str) -> tuple[str, ...]:
    return (domain, f"*.{domain}")


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """Whether a page host (lower-case, no port) matches one of a site's hostname patterns."""
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def check_query_param(name: str) -> str:
    if not _QUERY_PARAM.match(name) or name.startswith("utm_"):
        raise InvalidSite(
            f"{name!r} is not a query parameter name to keep (letters, digits, _ . - [ ]; "
            "utm_* are always kept)"
        )
    return name


def check_timezone(name: str) -> str:
    """An IANA time zone name (Europe/Berlin, UTC); anything else is refused in one sentence."""
    text = name.strip()
    try:
        # A path-like name could name a file outside the tz database: only plain names pass.
        if not text or text.startswith(("/", ".")) or ".." in text or len(text) > 64:
            raise ValueError
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        shown = text if len(text) <= 64 else text[:61] + "..."
        raise InvalidSite(
            f"{shown!r} is not an IANA time zone name like Europe/Berlin or UTC"
        ) from None
    return text


def new_site(
    domain: str,
    hostnames: Sequence[str] = (),
    query_params: Sequence[str] = (),
    timezone: str = "UTC",
) -> Site:
    """A validated site; with no hostnames, the domain and its subdomains."""
    domain = normalize_domain(domain)
    patterns = tuple(dict.fromkeys(normalize_hostname_pattern(h) for h in hostnames))
    kept = tuple(dict.fromkeys(check_query_param(name) for name in query_params))
    return Site(domain, patterns or default_hostnames(domain), kept, check_timezone(timezone))


def site_item(site: Site) -> dict[str, Any]:
    return {
        "site": {"S": site.domain},
        "hostnames": {"L": [{"S": h} for h in site.hostnames]},
        "query_params": {"L": [{"S": q} for q in site.query_params]},
        "timezone": {"S": site.timezone},
    }


def site_from_item(item: Mapping[str, Any]) -> Site:
    return Site(
        domain=item["site"]["S"],
        hostnames=tuple(h["S"] for h in item["hostnames"]["L"]),
        query_params=tuple(q["S"] for q in item.get("query_params", {}).get("L", [])),
        timezone=item.get("timezone", {}).get("S") or "UTC",  # items from before zones: UTC
    )


class SiteRegistry:
    """Cached look-ups of registered sites for the consumer (unknown sites are cached too)."""

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
        self._cache: dict[str, tuple[float, Site | None]] = {}

    def lookup(self, domains: Iterable[str]) -> dict[str, Site | None]:
        """Each domain's site, None when it is not registered. Raises on a read error."""
        now = self._clock()
        wanted = set(domains)
        if len(self._cache) > MAX_CACHED:
            self._cache = {d: v for d, v in self._cache.items() if not self._expired(d, now)}
            if len(self._cache) > MAX_CACHED:
                self._cache.clear()
        stale = sorted(d for d in wanted if d and self._expired(d, now))
        for start in range(0, len(stale), BATCH_GET_LIMIT):
            chunk = stale[start : start + BATCH_GET_LIMIT]
            found = self._read(chunk)
            for domain in chunk:
                self._cache[domain] = (now, found.get(domain))
        return {d: self._cache[d][1] if d in self._cache else None for d in wanted}

    def _expired(self, domain: str, now: float) -> bool:
        cached = self._cache.get(domain)
        return cached is None or now - cached[0] >= self._cache_seconds

    def _read(self, domains: list[str]) -> dict[str, Site]:
        request = {self._table: {"Keys": [{"site": {"S": d}} for d in domains]}}
        found: dict[str, Site] = {}
        for attempt in range(8):
            response = self._dynamodb.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self._table, []):
                site = site_from_item(item)
                found[site.domain] = site
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            time.sleep(min(0.05 * 2**attempt, 1.0))
        raise StorageError(f"the site registry kept {len(request)} key(s) unprocessed")


def register_site(settings: Settings, site: Site) -> None:
    """Add a site, or replace its settings. A new time zone moves the site's local days, so
    every rolled-up day is marked for the compactor to recompute in it (until then the
    dashboard reads those days raw: a rollup of another zone counts as missing)."""
    with aws.explained(settings, f"Table {settings.sites_table!r}"):
        dynamodb = aws.client("dynamodb", settings)
        old = dynamodb.put_item(
            TableName=settings.sites_table, Item=site_item(site), ReturnValues="ALL_OLD"
        ).get("Attributes")
    if old and site_from_item(old).timezone != site.timezone:
        with aws.explained(settings, f"Table {settings.events_table!r}"):
            mark_rolled_up_days(
                dynamodb, settings.events_table, site.domain, int(time.time() * 1000)
            )


def remove_site(settings: Settings, domain: str) -> bool:
    """Stop counting a site (its stored events stay). False when it was not registered."""
    with aws.explained(settings, f"Table {settings.sites_table!r}"):
        old = aws.client("dynamodb", settings).delete_item(
            TableName=settings.sites_table,
            Key={"site": {"S": normalize_domain(domain)}},
            ReturnValues="ALL_OLD",
        )
    return "Attributes" in old


def list_sites(settings: Settings) -> list[Site]:
    """Every registered site, by domain."""
    with aws.explained(settings, f"Table {settings.sites_table!r}"):
        items = aws.scanned(aws.client("dynamodb", settings), TableName=settings.sites_table)
        sites = [
            site_from_item(i) for i in items if not i["site"]["S"].startswith(RESERVED_KEY_PREFIX)
        ]
    return sorted(sites, key=lambda s: s.domain)


def _kept(site: Site) -> str:
    return f"; keeps ?{', ?'.join(site.query_params)}" if site.query_params else ""


def parse_args(
    argv: list[str] | None = None, extensions: Sequence[Extension] = ()
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.sites", description="Register the sites whose hits are counted."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="register a site (or update it)")
    add.add_argument("domain", help="the site's domain, as the script's data-domain sends it")
    add.add_argument(
        "--hostname",
        action="append",
        default=[],
        help="a page hostname counted for the site; repeat it; *.example.com for subdomains "
        "(default: the domain and its subdomains)",
    )
    add.add_argument(
        "--keep-query",
        action="append",
        default=[],
        metavar="NAME",
        help="a query parameter kept in the site's page URLs (e.g. page); repeat it "
        "(default: none but utm_*)",
    )
    add.add_argument(
        "--timezone",
        default="UTC",
        metavar="ZONE",
        help="the site's time zone, an IANA name such as Europe/Berlin: its days and daily "
        "rollups are local days there (default: UTC)",
    )
    commands.add_parser("list", help="list the registered sites")
    remove = commands.add_parser("remove", help="stop counting a site (its data stays)")
    remove.add_argument("domain")
    key = commands.add_parser("key", help="the site's Stats API keys")
    key_commands = key.add_subparsers(dest="key_command", required=True)
    create = key_commands.add_parser("create", help="make a key (shown once, stored as a hash)")
    create.add_argument("domain")
    create.add_argument("--name", default="", help="a note to tell keys apart, e.g. CI")
    key_list = key_commands.add_parser("list", help="the site's keys, by visible prefix")
    key_list.add_argument("domain")
    revoke = key_commands.add_parser("revoke", help="delete a key (refused within a minute)")
    revoke.add_argument("domain")
    revoke.add_argument("prefix", help="the key's first characters, as `key list` shows them")
    for extension in extensions:
        extension.add_parsers(commands)
    return parser.parse_args(argv)


def is_registered(dynamodb: Any, table: str, site: str) -> bool:
    """Whether `site` (normalised) has an item in the registry table."""
    found = dynamodb.get_item(
        TableName=table, Key={"site": {"S": site}}, ProjectionExpression="site"
    )
    return "Item" in found


def registered(settings: Settings, domain: str) -> str:
    """`domain` normalised, if it is a registered site; an InvalidSite otherwise."""
    site = normalize_domain(domain)
    with aws.explained(settings, f"Table {settings.sites_table!r}"):
        known = is_registered(aws.client("dynamodb", settings), settings.sites_table, site)
    if not known:
        raise InvalidSite(f"{site} is not registered: python -m pipeline.sites add {site}")
    return site


def key_command(settings: Settings, args: argparse.Namespace) -> int:
    """`key create|list|revoke`: what to print, and the exit status."""
    # Imported here: the consumer's package, which imports this module, ships without the API.
    from pipeline.api import keys

    if args.key_command == "create":
        site = registered(settings, args.domain)
        key = keys.create_key(settings, site, args.name)
        print(f"API key for {site} (shown once, keep it secret):\n{key}")
    elif args.key_command == "list":
        for found in keys.list_keys(settings, normalize_domain(args.domain)):
            print(f"{found.prefix}\t{found.created_at}\t{found.name}")
    elif not keys.revoke_key(settings, normalize_domain(args.domain), args.prefix):
        print(f"{args.domain} has no key starting {args.prefix}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None, extensions: Sequence[Extension] = ()) -> int:
    """The command; `extensions` add the commands of modules that import this one."""
    args = parse_args(argv, extensions)
    settings = settings_from_env()
    try:
        if args.command == "key":
            return key_command(settings, args)
        for extension in extensions:
            if args.command in extension.names:
                return extension.run(settings, args)
        if args.command == "add":
            site = new_site(args.domain, args.hostname, args.keep_query, args.timezone)
            register_site(settings, site)
            print(
                f"{site.domain}: counted from {', '.join(site.hostnames)}{_kept(site)}; "
                f"days in {site.timezone}"
            )
        elif args.command == "list":
            for site in list_sites(settings):
                print(
                    f"{site.domain}\t{', '.join(site.hostnames)}\t"
                    f"{', '.join(site.query_params)}\t{site.timezone}"
                )
        elif not remove_site(settings, args.domain):
            print(f"{args.domain} was not registered", file=sys.stderr)
            return 1
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
