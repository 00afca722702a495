"""Enrichment: a validated pixel message becomes a stored event, or a drop with a reason.

The work is an ordered list of small pure steps (Plausible's ingestion pipeline). Each step
takes the hit and the event built so far (to read, never to change) and returns the fields it
adds, or a `Dropped` with a reason from the closed set `DropReason`; `enrich` merges the
fields into one dict (a copy of the whole event per step cost more than some steps). The
raw IP and User-Agent live only in the `Hit` and never reach the event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from pipeline.enrich import geo, referrers
from pipeline.enrich.datacentres import EMPTY as NO_RANGES
from pipeline.enrich.datacentres import Ranges, in_datacentre
from pipeline.enrich.salts import CARRY_OVER, visitor_hash
from pipeline.enrich.sites import Site, host_allowed
from pipeline.enrich.spam import is_spam
from pipeline.enrich.text import clean, without_lone_surrogates
from pipeline.enrich.urls import UTM_FIELDS, bare_host, strip_link_props, strip_url
from pipeline.enrich.useragents import is_bot, parse_client
from pipeline.ingest.contract import PixelMessage, event_queries

MAX_SITE = 253
MAX_NAME = 120
MAX_PROPS = 30
# An object of props holding values nested a few levels: more is no analytics property.
MAX_PROPS_DEPTH = 16
MAX_PROP_KEY = 300
MAX_PROP_VALUE = 2000
MAX_SCREEN_WIDTH = 20000
PAGEVIEW = "pageview"
# Plausible's tracker sends this event when a page is hidden or left: engaged time and the
# deepest scroll. It carries `engagement_ms` and `scroll_depth`; no other event does.
ENGAGEMENT = "engagement"
# A page "engaged" longer than a day is a tab left open with a clock gone wrong: cut, not lost.
MAX_ENGAGEMENT_MS = 24 * 60 * 60 * 1000
# Engaged time and depth are short integers; a longer text is not a number we'd trust anyway.
MAX_NUMBER_TEXT = 20


class DropReason(StrEnum):
    BOT = "bot"
    NO_SITE = "no_site"
    NO_PAGE = "no_page"
    DO_NOT_TRACK = "do_not_track"
    STALE = "stale"  # older than the salt window: its visitor can no longer be hashed
    UNKNOWN_SITE = "unknown_site"  # not in the site registry
    FOREIGN_HOST = "foreign_host"  # the page's host is not one of the site's hostnames
    REFERRER_SPAM = "referrer_spam"  # the referrer is on the referrer-spam blocklist
    DATACENTRE = "datacentre"  # sent from a cloud provider's published address ranges
    BAD_ENGAGEMENT = "bad_engagement"  # an engagement event without a usable engaged time
    BAD_BODY = "bad_body"  # an event-API body that is not a usable event (e.g. cut at the cap)


# What each drop means, in words a site owner can act on (the dashboard's health page shows them).
DROP_EXPLANATIONS = {
    DropReason.BOT: "a crawler, monitor or headless browser (by its User-Agent)",
    DropReason.NO_SITE: "the hit named no site (no `d` parameter)",
    DropReason.UNKNOWN_SITE: "the site is not registered: python -m pipeline.sites add <domain>",
    DropReason.NO_PAGE: "the hit had no page URL with a host",
    DropReason.FOREIGN_HOST: "the page's host is not one of the site's hostnames",
    DropReason.REFERRER_SPAM: "referred by a domain on the referrer-spam list",
    DropReason.DATACENTRE: (
        "sent from a cloud provider's published address ranges (AWS, Google Cloud, Oracle, "
        "DigitalOcean): scripts and headless browsers, or a pixel proxied through a server"
    ),
    DropReason.DO_NOT_TRACK: "the visitor asked not to be tracked (DNT / GPC, when respected)",
    DropReason.STALE: "older than the two-day salt window when it was processed",
    DropReason.BAD_ENGAGEMENT: (
        "an engagement event whose engaged time was missing, negative or not a number "
        "(a broken or modified tracking script)"
    ),
    DropReason.BAD_BODY: (
        "a POST /api/event body that was not a usable event (not JSON, or no event name or "
        "URL): on AWS, a body over the 16,384-character cap that API Gateway let through"
    ),
}


@dataclass(frozen=True)
class Hit:
    """A pixel message parsed once, at the edge: the only place the raw IP and UA exist."""

    request_id: str
    received_at_ms: int
    day: date
    site: str
    page_url: str
    referrer_url: str
    name: str
    props_json: str
    screen_width: str
    engaged_ms: str
    scroll_depth: str
    user_agent: str
    ip: str
    headers: Mapping[str, str]
    bad_body: bool = False  # an event-API body that maps to no event: dropped first


@dataclass(frozen=True)
class Dropped:
    reason: DropReason


Event = dict[str, Any]
Fields = Mapping[str, Any]
Step = Callable[[Hit, Event, "Context"], "Fields | Dropped"]
# What a step that only checks returns when the hit passes: no field to add.
NO_FIELDS: Fields = MappingProxyType({})


@dataclass(frozen=True)
class Context:
    salts: Mapping[date, bytes]
    sites: Mapping[str, Site | None]
    spam_domains: frozenset[str] = frozenset()
    datacentre_ranges: Ranges = NO_RANGES
    respect_dnt: bool = False


@lru_cache(maxsize=1024)  # a consumer sees a handful of sites, named the same way each time
def site_of(raw: str) -> str:
    """The site a hit names, as the registry keys it (`normalize_domain`): lower-case and
    without the trailing dot of a fully qualified name, which the script sends on a page
    served as `example.com.`. Not validated: an unregistrable name is simply an unknown site."""
    return clean(clean(raw, MAX_SITE).lower().rstrip("."), MAX_SITE)


def hit_from_message(message: PixelMessage) -> Hit:
    """The hit of a validated message. Lone surrogates (half an emoji, or a JSON `\\ud83d`
    escape in the body) leave every string here, before any parser sees one: ua-parser and
    other encoders to UTF-8 raise on them."""
    query = _without_lone_surrogates(message.query)
    headers = _without_lone_surrogates(message.headers)
    received = datetime.fromtimestamp(message.received_at_ms / 1000, tz=UTC)
    return Hit(
        request_id=message.request_id,
        received_at_ms=message.received_at_ms,
        day=received.date(),
        site=site_of(query["d"]),
        # A plain <img> pixel has no `u`: the page that embeds it is the Referer.
        page_url=query["u"] or headers["referer"],
        referrer_url=query["r"],
        name=query["n"],
        props_json=query["p"],
        screen_width=query["w"],
        # Version-1 messages have no `e`/`sd`: "" (parse_message fills every key).
        engaged_ms=query.get("e", ""),
        scroll_depth=query.get("sd", ""),
        user_agent=headers["user-agent"],
        ip=geo.client_ip(headers, without_lone_surrogates(message.source_ip)),
        headers=headers,
    )


def _without_lone_surrogates(values: Mapping[str, str]) -> dict[str, str]:
    """A copy of `values` (all strings) with every value `without_lone_surrogates`."""
    # Nearly always all ASCII, which one test over the joined values shows (a surrogate is
    # not ASCII): a plain copy then, not a call per value.
    if "".join(values.values()).isascii():
        return dict(values)
    return {key: without_lone_surrogates(value) for key, value in values.items()}


def hits_from_message(message: PixelMessage) -> list[Hit]:
    """The hits of a validated message: a pixel's one; an event body's one per domain it names
    (Plausible sends the event to each), the first under the message's request id and the
    others under a derived one, so a redelivery stores each once. A body that maps to no
    event is one hit dropped as `bad_body`, counted under no site."""
    if not message.body:
        return [hit_from_message(message)]
    queries = event_queries(message.body)
    if queries is None:
        empty = dict.fromkeys(message.query, "")
        return [replace(hit_from_message(replace(message, query=empty)), bad_body=True)]
    return [
        hit_from_message(replace(message, query=query, request_id=_nth_id(message.request_id, n)))
        for n, query in enumerate(queries)
    ]


def _nth_id(request_id: str, n: int) -> str:
    # Still 1-64 of [A-Za-z0-9-]: API Gateway's ids are 36 characters, ours too.
    return request_id if n == 0 else f"{request_id[:60]}-d{n}"


def drop_bad_body(hit: Hit, event: Event, ctx: Context) -> Fields | Dropped:
    return Dropped(DropReason.BAD_BODY) if hit.bad_body else NO_FIELDS


def drop_do_not_track(hit: Hit, event: Event, ctx: Context) -> Fields | Dropped:
    opted_out = hit.headers.get("dnt") == "1" or hit.headers.get("sec-gpc") == "1"
    return Dropped(DropReason.DO_NOT_TRACK) if ctx.respect_dnt and opted_out else NO_FIELDS


def drop_bots(hit: Hit, event: Event, ctx: Context) -> Fields | Dropped:
    return Dropped(DropReason.BOT) if is_bot(hit.user_agent) else NO_FIELDS


def drop_datacentres(hit: Hit, event: Event, ctx: Context) -> Fields | Dropped:
    # The client address is used here and stored nowhere: only the reason is.
    in_range = in_datacentre(hit.ip, ctx.datacentre_ranges)
    return Dropped(DropReason.DATACENTRE) if in_range else NO_FIELDS


def add_site(hit: Hit, event: Event, ctx: Context) -> Fields | Dropped:
    if not hit.site:
        return Dropped(DropReason.NO_SITE)
    if ctx.sites.get(hit.site) is None:
        return Dropped(DropReason.UNKNOWN_SITE)
    return {"site": hit.site, "ts": hit.received_at_ms, "request_id": hit.request_id}


def add_page(hit: Hit, event: Event, ctx: Context) -> Fields | Dropped:
    site = ctx.sites.get(hit.site)
    page = strip_url(hit.page_url, keep_query=site.query_params if site else ())
    if page is None:
        return Dropped(DropReason.NO_PAGE)
    if site is None or not host_allowed(page.host, site.hostnames):
        return Dropped(DropReason.FOREIGN_HOST)
    utm = {name: page.utm.get(name, "") for name in UTM_FIELDS}
    return {"hostname": page.host, "path": page.path, "url": page.url, **utm}


def add_referrer(hit: Hit, event: Event, ctx: Context) -> Fields | Dropped:
    ref = strip_url(hit.referrer_url, keep_route_fragment=False) if hit.referrer_url else None
    external = ref is not None and bare_host(ref.host) != bare_host(event["hostname"])
    if external and is_spam(ref.host, ctx.spam_domains):
        return Dropped(DropReason.REFERRER_SPAM)
    if external:
        referrer, source = f"{ref.host}{ref.path}", referrers.source_for_host(bare_host(ref.host))
    elif event["utm_source"]:
        referrer, source = "", referrers.source_for_utm(event["utm_source"])
    else:
        referrer, source = "", referrers.DIRECT
    return {"referrer": referrer, "referrer_source": source}


def add_name_and_props(hit: Hit, event: Event, ctx: Context) -> Fields | Dropped:
    name = clean(hit.name, MAX_NAME) or PAGEVIEW
    return {"name": name, "props": strip_link_props(parse_props(hit.props_json))}


def add_client(hit: Hit, event: Event, ctx: Context) -> Fields | Dropped:
    client = parse_client(hit.user_agent)
    return {
        "browser": client.browser,
        "browser_version": client.browser_version,
        "os": client.os,
        "os_version": client.os_version,
        "device": client.device,
    }


def add_screen(hit: Hit, event: Event, ctx: Context) -> Fields | Dropped:
    width = parse_screen_width(hit.screen_width)
    return {"screen_width": width, "screen": screen_class(width)}


def add_geo(hit: Hit, event: Event, ctx: Context) -> Fields | Dropped:
    loc = geo.location_from_headers(hit.headers)
    return {
        "country": loc.country,
        "region": loc.region,
        "city": loc.city,
        "lat": loc.lat,
        "lon": loc.lon,
    }


def add_engagement(hit: Hit, event: Event, ctx: Context) -> Fields | Dropped:
    """Engaged time and scroll depth, on engagement events only (others ignore `e`/`sd`)."""
    if event.get("name") != ENGAGEMENT:
        return NO_FIELDS
    engaged = parse_engaged_ms(hit.engaged_ms)
    if engaged is None:
        return Dropped(DropReason.BAD_ENGAGEMENT)
    depth = parse_scroll_depth(hit.scroll_depth)
    return {"engagement_ms": engaged} | ({} if depth is None else {"scroll_depth": depth})


def in_carry_over(received_at_ms: int, day: date) -> bool:
    """Whether a hit arrived within `CARRY_OVER` after the UTC midnight that began `day`: a
    visit of the day before may still be going on, so the hit is hashed under both salts."""
    # In whole milliseconds since the epoch (what datetimes of these would compare, ~4x faster).
    midnight_ms = (day.toordinal() - _EPOCH_ORDINAL) * _DAY_MS
    return received_at_ms - midnight_ms < _CARRY_OVER_MS


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_MS = 86_400_000
_CARRY_OVER_MS = CARRY_OVER // timedelta(milliseconds=1)


def add_visitor(hit: Hit, event: Event, ctx: Context) -> Fields | Dropped:
    salt = ctx.salts.get(hit.day)
    if salt is None:
        return Dropped(DropReason.STALE)
    fields = {"visitor": visitor_hash(salt, hit.site, hit.ip, hit.user_agent)}
    # Only hits just after midnight pay the second hash, and only while yesterday's salt is
    # still held (it is deleted on schedule all the same); "" is never stored, to keep items small.
    previous = ctx.salts.get(hit.day - timedelta(days=1))
    if previous is not None and in_carry_over(hit.received_at_ms, hit.day):
        fields["prev_visitor"] = visitor_hash(previous, hit.site, hit.ip, hit.user_agent)
    return fields


STEPS: tuple[Step, ...] = (
    drop_bad_body,
    drop_do_not_track,
    drop_bots,
    drop_datacentres,
    add_site,
    add_page,
    add_referrer,
    add_name_and_props,
    add_engagement,
    add_client,
    add_screen,
    add_geo,
    add_visitor,
)


def enrich(hit: Hit, ctx: Context, steps: tuple[Step, ...] = STEPS) -> Event | Dropped:
    """Run every step in order, each one's fields merged into the event; the first drop ends
    the run."""
    event: Event = {}
    for step in steps:
        result = step(hit, event, ctx)
        if isinstance(result, Dropped):
            return result
        if result is not NO_FIELDS:  # a check that passed adds nothing
            event.update(result)
    return event


def _prop_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# A JSON string (escapes included): brackets inside one are text, not structure. Possessive
# and with an optional closing quote, it always matches from a quote without backtracking (so
# the scan is linear), and an unterminated string runs to the end, as the parser reads it.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*+"?', re.DOTALL)
_BRACKETS_NOT_STRUCTURE = re.compile(r"[^\[\]{}]+")


def nests_deeper_than(raw: str, limit: int) -> bool:
    """Whether `raw`, read as JSON, may nest arrays and objects more than `limit` deep.

    Strings are removed first (a bracket inside one is text), then the remaining brackets are
    counted. Where `raw` is valid JSON up to a point, strings are found there as the parser
    finds them, so the count bounds whatever depth the parser reaches before it fails.
    """
    structure = _BRACKETS_NOT_STRUCTURE.sub("", _JSON_STRING.sub("", raw))
    if len(structure) <= limit:  # the common case: a flat object, a couple of brackets
        return False
    depth = 0
    for char in structure:
        depth += 1 if char in "[{" else -1
        if depth > limit:
            return True
    return False


def parse_props(raw: str) -> dict[str, str]:
    """Custom properties: a JSON object of at most 30 entries, every value kept as a string.

    Anything else (not JSON, not an object, nested deeper than `MAX_PROPS_DEPTH`) gives no
    props rather than losing the event.
    """
    if not raw:
        return {}
    # json.loads recurses once per level and raises RecursionError near Python's limit (1,000
    # frames, fewer left when called deep in a stack): "[" * 2048 fits under the contract's
    # cap. A cap on the raw size would have to stay under ~900 characters, too short for real
    # props; a linear scan of the brackets outside strings refuses only the deep ones (tens
    # of microseconds for 2,048 units), before the parser, or json.dumps of a nested value
    # below, can recurse at all.
    if nests_deeper_than(raw, MAX_PROPS_DEPTH):
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    props: dict[str, str] = {}
    for key, value in data.items():
        if len(props) >= MAX_PROPS:
            break
        key = clean(str(key), MAX_PROP_KEY)
        if key and value is not None:
            props[key] = clean(_prop_value(value), MAX_PROP_VALUE)
    return props


def parse_screen_width(raw: str) -> int | None:
    try:
        width = int(raw.strip())
    except ValueError:
        return None
    return width if 0 < width <= MAX_SCREEN_WIDTH else None


# Plain decimal text only: float() would also take "1_000", "1e3", "nan" and non-ASCII digits.
_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]*)?")


def _number(raw: str) -> float | None:
    """A decimal number from text, or None when it is not one (or absurdly long)."""
    text = raw.strip()
    if len(text) > MAX_NUMBER_TEXT or not _NUMBER.fullmatch(text):
        return None
    return float(text)


def parse_engaged_ms(raw: str) -> int | None:
    """Engaged milliseconds, whole (a fraction is cut): None when missing, not a number or
    negative (the event is dropped); more than `MAX_ENGAGEMENT_MS` is cut to it."""
    engaged = _number(raw)
    if engaged is None or engaged < 0:
        return None
    return int(min(engaged, MAX_ENGAGEMENT_MS))


def parse_scroll_depth(raw: str) -> int | None:
    """Scroll depth in whole percent, clamped into 0..100; None (left out) when not a number."""
    depth = _number(raw)
    return None if depth is None else int(max(0.0, min(depth, 100.0)))


def screen_class(width: int | None) -> str:
    """Plausible's screen-size buckets."""
    if width is None:
        return ""
    if width < 576:
        return "Mobile"
    if width < 992:
        return "Tablet"
    if width < 1440:
        return "Laptop"
    return "Desktop"
