"""Believable demo traffic, pushed through the real pixel contract and consumer.

A few weeks of a small product site: daily and weekly rhythm, growth, one Hacker News
spike, visitors in many cities (with CloudFront-style geo headers), real browser
User-Agents, search/social/campaign referrers, multi-page visits, bounces, custom events
and some bots. Every pageview is followed, when its page is left, by the `engagement` event
Plausible's script sends (engaged time and deepest scroll, longer and deeper on the blog posts
than on the home page), and a few visits each night run across UTC midnight, so the consumer
gives their first minutes after it a `prev_visitor` that continues the visit. Every hit becomes a contract message (`build_message`) and is handled by
`Consumer`, the Lambda code. History goes to the consumer in Lambda-shaped batches with the
clock set to the hit's own day (so salts rotate as they would have); the last minutes go
through the real SQS queue and the worker. The history skips SQS because moto's queue
slows with depth (see bench/RESULTS.md) and a cold start must stay fast.

With `roll_up=True` (the dashboard's embedded demo) each closed day's rollup is stored as the
load ends, from the events the consumer wrote, so the first page reads rollups at once instead
of every raw event (reading them back through moto costs ~2 ms an item). The record is the
compactor's own (same `rollups.compute`, `rollup_items`, marker cleared the same conditional
way), and `compact()` afterwards would rewrite it identically (tests/local/test_demo.py).
Likewise every settled UTC day (`compactor.settles_at`) gets its Parquet file in the emulator's
S3 (`archive.write_day` over the recorded items, what `compactor.archive_day` reads from the
table), so `make run` reads closed days through the archive path, as a deployed stack does.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from tqdm import tqdm

from pipeline import aws
from pipeline.config import Settings
from pipeline.consume.consumer import Consumer
from pipeline.consume.worker import Worker
from pipeline.enrich.sites import new_site, register_site
from pipeline.ingest.contract import build_message, encode_message
from pipeline.resources import queue_url
from pipeline.store import archive, rollups
from pipeline.store.compactor import archive_record, clear_marker, settles_at, site_zones
from pipeline.store.query import days_between, events_frame
from pipeline.store.storage import (
    ROLLUP_PREFIX,
    BatchWriter,
    day_bounds,
    day_of,
    dirty_days,
    event_from_item,
    event_pk,
    rollup_items,
)

DEMO_SITE = "example.com"
LAMBDA_BATCH = 100

PAGES = {
    "/": 30, "/pricing": 10, "/blog": 8, "/blog/privacy-first-analytics": 7,
    "/blog/serverless-costs": 5, "/docs": 8, "/docs/install": 6, "/docs/api": 3,
    "/about": 3, "/signup": 5, "/contact": 2,
}  # fmt: skip
# (referrer URL, page query, entry page or None for any, weight)
SOURCES = (
    ("", "", None, 30),
    ("https://www.google.com/", "", None, 24),
    ("https://duckduckgo.com/", "", None, 5),
    ("https://www.bing.com/search", "", None, 3),
    ("https://news.ycombinator.com/item", "", "/blog/privacy-first-analytics", 3),
    ("https://www.reddit.com/r/privacy/comments", "", "/blog/privacy-first-analytics", 4),
    ("https://t.co/x1y2z3", "", "/", 3),
    ("https://github.com/example/analytics", "", "/docs/install", 4),
    ("https://www.linkedin.com/feed", "", "/", 2),
    ("https://indieweb.example.org/links", "", "/blog/serverless-costs", 2),
    ("", "utm_source=newsletter&utm_medium=email&utm_campaign=november", "/blog", 4),
    ("", "utm_source=twitter&utm_medium=social&utm_campaign=launch", "/pricing", 2),
)
# (country, region, city, lat, lon, UTC offset hours, weight)
CITIES = (
    ("US", "NY", "New York", 40.71, -74.01, -5, 9), ("US", "CA", "San Francisco", 37.77, -122.42, -8, 8),
    ("US", "TX", "Austin", 30.27, -97.74, -6, 4), ("US", "WA", "Seattle", 47.61, -122.33, -8, 4),
    ("US", "IL", "Chicago", 41.88, -87.63, -6, 3), ("CA", "ON", "Toronto", 43.65, -79.38, -5, 4),
    ("GB", "ENG", "London", 51.51, -0.13, 0, 8), ("DE", "BE", "Berlin", 52.52, 13.40, 1, 7),
    ("DE", "BY", "München", 48.14, 11.58, 1, 3), ("FR", "IDF", "Paris", 48.86, 2.35, 1, 5),
    ("NL", "NH", "Amsterdam", 52.37, 4.90, 1, 3), ("SE", "AB", "Stockholm", 59.33, 18.07, 1, 2),
    ("CH", "ZH", "Zürich", 47.38, 8.54, 1, 2), ("ES", "MD", "Madrid", 40.42, -3.70, 1, 2),
    ("PL", "14", "Warsaw", 52.23, 21.01, 1, 2), ("IN", "KA", "Bengaluru", 12.97, 77.59, 5, 5),
    ("IN", "MH", "Mumbai", 19.08, 72.88, 5, 3), ("JP", "13", "Tokyo", 35.68, 139.69, 9, 3),
    ("KR", "11", "Seoul", 37.57, 126.98, 9, 2), ("SG", "01", "Singapore", 1.35, 103.82, 8, 2),
    ("AU", "NSW", "Sydney", -33.87, 151.21, 10, 3), ("BR", "SP", "São Paulo", -23.55, -46.63, -3, 3),
    ("AR", "C", "Buenos Aires", -34.60, -58.38, -3, 1), ("MX", "CMX", "Mexico City", 19.43, -99.13, -6, 2),
    ("ZA", "WC", "Cape Town", -33.92, 18.42, 2, 1), ("NG", "LA", "Lagos", 6.52, 3.38, 1, 1),
)  # fmt: skip
# (User-Agent, screen widths, weight)
_DESKTOP = (1920, 1440, 1536, 2560, 1366, 1280)
_PHONE = (390, 393, 412, 375, 360, 430)
_TABLET = (820, 768, 1024, 800)
USER_AGENTS = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", _DESKTOP, 22),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", _DESKTOP, 12),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", _DESKTOP, 9),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", _DESKTOP, 6),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", _DESKTOP, 4),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", _DESKTOP, 3),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", _DESKTOP, 6),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", _PHONE, 16),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", _PHONE, 10),
    ("Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", _PHONE, 4),
    ("Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", _TABLET, 3),
    ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", _TABLET, 1),
)  # fmt: skip
BOT_USER_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "curl/8.5.0",
)
# Reading behaviour by page: (median engaged seconds, median scroll depth %). Long posts are
# read longer and further down; the home page and sign-up are glanced at. Others: DEFAULT_READ.
READING = {
    "/": (18, 45), "/pricing": (40, 70), "/blog": (25, 55),
    "/blog/privacy-first-analytics": (150, 80), "/blog/serverless-costs": (110, 70),
    "/docs": (30, 50), "/docs/install": (75, 85), "/docs/api": (95, 60),
    "/about": (30, 75), "/signup": (35, 95), "/contact": (20, 90),
}  # fmt: skip
DEFAULT_READ = (30, 60)
# How many visits a night run across UTC midnight (night owls), at least and at most.
MIDNIGHT_VISITS = (1, 3)
CUSTOM_EVENTS = {
    "/signup": ("Signup", 0.35, lambda rng: {"plan": rng.choice(["free", "free", "pro", "team"])}),
    "/docs/install": (
        "Download",
        0.25,
        lambda rng: {"file": rng.choice(["cli.tar.gz", "cli.zip"])},
    ),
    "/pricing": (
        "Outbound Link: Click",
        0.08,
        lambda rng: {"url": "https://github.com/example/analytics"},
    ),
}


@dataclass(frozen=True)
class DemoHit:
    ts_ms: int
    request_id: str
    raw_query: str
    headers: dict[str, str]
    source_ip: str

    def message_body(self) -> str:
        return encode_message(
            build_message(self.raw_query, self.headers, self.source_ip, self.ts_ms, self.request_id)
        )


def _pick(rng: random.Random, options: tuple | dict, weight_index: int = -1) -> Any:
    if isinstance(options, dict):
        return rng.choices(list(options), weights=list(options.values()))[0]
    return rng.choices(options, weights=[o[weight_index] for o in options])[0]


def _visitors_on(day_index: int, day: date, spike_day: int, rng: random.Random) -> int:
    weekend = 0.6 if day.weekday() >= 5 else 1.0
    growth = 1 + 0.015 * day_index
    spike = 4.0 if day_index == spike_day else 1.0
    return max(5, int(55 * weekend * growth * spike * rng.uniform(0.85, 1.15)))


def _local_hour(rng: random.Random) -> float:
    # Office-hours rhythm: most visits between 09:00 and 22:00 local time.
    weights = [0.3 + math.exp(-(((h - 14.5) / 4.5) ** 2)) for h in range(24)]
    return rng.choices(range(24), weights=weights)[0] + rng.random()


def _headers(ua: str, city: tuple) -> dict[str, str]:
    country, region, name, lat, lon, _, _ = city
    return {
        "User-Agent": ua,
        "CloudFront-Viewer-Country": country,
        "CloudFront-Viewer-Country-Region": region,
        "CloudFront-Viewer-City": name,
        "CloudFront-Viewer-Latitude": f"{lat + 0.05:.4f}",
        "CloudFront-Viewer-Longitude": f"{lon - 0.05:.4f}",
    }


def engagement_of(rng: random.Random, path: str, seconds_on_page: float | None) -> tuple[int, int]:
    """(engaged ms, scroll depth %) for one page view: lognormal around the page's medians,
    never more than the time the page was shown (`seconds_on_page`, None for a visit's last
    page, which stays open a while)."""
    median_s, median_depth = READING.get(path, DEFAULT_READ)
    seconds = median_s * rng.lognormvariate(0, 0.6)
    if seconds_on_page is not None:
        seconds = min(seconds, seconds_on_page * rng.uniform(0.6, 0.95))
    depth = median_depth * rng.lognormvariate(0, 0.3)
    return int(seconds * 1000), max(0, min(100, round(depth)))


def _visit(
    rng: random.Random, start: datetime, spike: bool, min_length: int = 1
) -> list[tuple[datetime, str, str, dict[str, str]]]:
    """(time, page URL, referrer, further query parameters) of each hit of one visit, in
    time order: pageviews (no further parameters), custom events and engagement events."""
    referrer, query, entry, _ = SOURCES[4] if spike and rng.random() < 0.8 else _pick(rng, SOURCES)
    path = entry or _pick(rng, PAGES)
    # Plausible-like sites see about half the visits bounce.
    length = 1 if rng.random() < 0.45 else 1 + min(int(rng.expovariate(0.6)) + 1, 8)
    length = max(length, min_length)
    hits, moment = [], start
    for step in range(length):
        url = f"https://{DEMO_SITE}{path}" + (f"?{query}" if query and step == 0 else "")
        shown_at = moment
        hits.append((moment, url, referrer if step == 0 else f"https://{DEMO_SITE}/", {}))
        if path in CUSTOM_EVENTS:
            name, chance, props = CUSTOM_EVENTS[path]
            if rng.random() < chance:
                moment += timedelta(seconds=rng.uniform(5, 60))
                hits.append((moment, url, "", {"n": name, "p": encode_message(props(rng))}))
        moment += timedelta(seconds=rng.expovariate(1 / 70))
        # Leaving the page (pagehide, or the next navigation): the script reports engagement,
        # just before the next pageview, or a while after the last page was read.
        last = step == length - 1
        on_page = None if last else (moment - shown_at).total_seconds()
        engaged_ms, depth = engagement_of(rng, path, on_page)
        left_at = shown_at + timedelta(milliseconds=engaged_ms + rng.uniform(500, 4000))
        if not last:  # sent as the page unloads, so before the next pageview
            left_at = max(shown_at, min(left_at, moment - timedelta(milliseconds=50)))
        engagement = {"n": "engagement", "e": str(engaged_ms), "sd": str(depth)}
        hits.append((left_at, url, "", engagement))
        path = _pick(rng, PAGES)
    return sorted(hits, key=lambda hit: hit[0])


def _visitor_hits(
    rng: random.Random,
    key: str,
    starts: list[datetime],
    spike: bool,
    now: datetime,
    across: datetime | None = None,
) -> list[DemoHit]:
    """Every hit of one visitor (one device, one place) over one or more visits. `across`:
    one visit of at least four pages, moved so it runs across that moment (a midnight)."""
    city = _pick(rng, CITIES)
    ua, screens, _ = _pick(rng, USER_AGENTS)
    ip = f"{rng.randint(11, 199)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if rng.random() < 0.04:
        ua = rng.choice(BOT_USER_AGENTS)
    width = rng.choice(screens)
    hits = []
    for visit_start in starts:
        visit = _visit(rng, visit_start, spike, min_length=4 if across else 1)
        if across:
            span = visit[-1][0] - visit[0][0]
            shift = across - visit_start + span * rng.uniform(0.3, 0.7)
            visit = [(moment - shift, *rest) for moment, *rest in visit]
        for n, (moment, url, referrer, extra) in enumerate(visit):
            if moment > now:
                break
            query = {"d": DEMO_SITE, "u": url, "r": referrer, "w": str(width), **extra}
            hits.append(
                DemoHit(
                    ts_ms=int(moment.timestamp() * 1000),
                    request_id=f"{key}-{int(visit_start.timestamp())}-{n}",
                    raw_query=urlencode(query),
                    headers=_headers(ua, city),
                    source_ip=ip,
                )
            )
    return hits


def generate_hits(now: datetime, days: int = 28, seed: int = 7) -> Iterator[DemoHit]:
    """Demo hits from `days` days before `now` up to `now`, oldest first, deterministic.

    A few visitors are always on the site in the last half hour, whatever the time of day,
    so the live path (SQS + worker) and real-time views always have something.
    """
    rng = random.Random(seed)
    first_day = now.astimezone(UTC).date() - timedelta(days=days - 1)
    spike_day = days - 9
    hits: list[DemoHit] = []
    for index in range(days):
        day = first_day + timedelta(days=index)
        for visitor in range(_visitors_on(index, day, spike_day, rng)):
            city_offset = _pick(rng, CITIES)[5]
            hour = (_local_hour(rng) - city_offset) % 24
            start = datetime.combine(day, time.min, tzinfo=UTC) + timedelta(hours=hour)
            returns = rng.random() < 0.1
            starts = [start] + ([start + timedelta(hours=rng.uniform(1, 5))] if returns else [])
            key = f"demo-{seed}-{index}-{visitor}"
            hits += _visitor_hits(rng, key, starts, index == spike_day, now)
        midnight = datetime.combine(day, time.min, tzinfo=UTC)
        for owl in range(rng.randint(*MIDNIGHT_VISITS) if index else 0):
            # Begun before this day's midnight, going on after it: one visit, two salts.
            key = f"demo-{seed}-{index}-midnight-{owl}"
            hits += _visitor_hits(rng, key, [midnight], False, now, across=midnight)
    for visitor in range(rng.randint(3, 6)):
        start = now - timedelta(minutes=rng.uniform(2, 25))
        hits += _visitor_hits(rng, f"demo-{seed}-live-{visitor}", [start], False, now)
    hits.sort(key=lambda hit: hit.ts_ms)
    return iter(hits)


@dataclass
class DemoSummary:
    hits: int = 0
    queued: int = 0  # of `hits`, how many went through SQS and the worker
    stored: int = 0
    dropped: int = 0
    failed: int = 0
    rolled_up: list[date] = field(default_factory=list)  # closed days whose rollup was stored
    archived: list[date] = field(default_factory=list)  # settled UTC days whose file was written


class RecordingWriter:
    """The consumer's `BatchWriter`, keeping every event item it stored (by key, the last
    write of a key winning as in the table), so the demo can roll up its days without reading
    them back through the emulator."""

    def __init__(self, writer: BatchWriter) -> None:
        self._writer = writer
        self.events: dict[tuple[str, str], dict[str, Any]] = {}

    def write(self, items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        items = list(items)
        failed = self._writer.write(items)
        unwritten = {(i["pk"]["S"], i["sk"]["S"]) for i in failed}
        for item in items:
            key = (item["pk"]["S"], item["sk"]["S"])
            if "e" in item and key not in unwritten:  # events only: drops and markers carry no "e"
                self.events[key] = dict(item)
        return failed

    def __getattr__(self, name: str) -> Any:  # `requests` and whatever else callers read
        return getattr(self._writer, name)


def day_frames(
    items: Mapping[tuple[str, str], Mapping[str, Any]],
    site: str,
    day: date,
    tz: str,
    shards: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What `query.raw_day(..., with_before=True)` reads from the table for `site`'s local
    `day`, taken from these stored items instead: the same reads (the day, then the previous
    day's events its join needs, `rollups.read_before`), each over the same partitions in the
    same order (UTC day by day, shard by shard, each by sort key) and through the same frame
    code."""
    by_partition: dict[str, list[str]] = {}
    for pk, sk in items:
        by_partition.setdefault(pk, []).append(sk)
    for keys in by_partition.values():
        keys.sort()

    def read(lo: datetime, hi: datetime) -> pd.DataFrame:
        lo_ms, hi_ms = int(lo.timestamp() * 1000), int(hi.timestamp() * 1000)
        records = []
        for utc_day in days_between(lo, hi):
            for shard in range(shards):
                pk = event_pk(site, utc_day, shard)
                for sk in by_partition.get(pk, []):
                    if lo_ms <= int(sk[:13]) < hi_ms:
                        records.append(event_from_item(items[(pk, sk)]))
        return events_frame(records)

    start, end = day_bounds(day, tz)
    events = read(start, end)
    return events, rollups.read_before(read, events, day, tz)


def store_rollup(
    settings: Settings,
    dynamodb: Any,
    site: str,
    day: date,
    frames: tuple[pd.DataFrame, pd.DataFrame],
    now: datetime,
    tz: str,
) -> int:
    """`compactor.compact_day` with the day's events (and its join's) already in hand; items
    written. The one place that turns a demo day into its stored rollup: if the compactor's
    record changes, this follows it (or calls it, given a way to pass the frames)."""
    events, before = frames
    parts = rollups.encode(rollups.compute(events, site, day, tz, before))
    items = rollup_items(site, day, parts, int(now.timestamp() * 1000))
    if BatchWriter(dynamodb, settings.events_table).write(items):
        raise RuntimeError(f"rollup of {site} {day} not written")
    return len(items)


def _has_history(dynamodb: Any, settings: Settings, site: str) -> bool:
    """Whether `site` had anything stored before this load: a rollup or a marked day. Then the
    demo's own events are not all of a day's, and the compactor must read the table."""
    rolled = dynamodb.query(
        TableName=settings.events_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"{ROLLUP_PREFIX}{site}"}},
        Limit=1,
    )
    return bool(rolled.get("Items")) or bool(dirty_days(dynamodb, settings.events_table, site))


def roll_up_closed_days(
    settings: Settings,
    dynamodb: Any,
    site: str,
    items: Mapping[tuple[str, str], Mapping[str, Any]],
    now: datetime,
) -> list[date]:
    """`compactor.compact` for `site` from `items`: store the rollup of every marked day
    closed (in the site's zone) by `now`, and clear its marker only if no event re-marked it."""
    tz = site_zones(dynamodb, settings, {site}).get(site, "UTC")
    done = []
    for marked_site, day, marked_at in dirty_days(dynamodb, settings.events_table, site):
        if marked_site != site or day_bounds(day, tz)[1] > now:
            continue  # still open: read raw until it closes, as the compactor leaves it
        frames = day_frames(items, site, day, tz, settings.shards_for(site))
        store_rollup(settings, dynamodb, site, day, frames, now, tz)
        clear_marker(dynamodb, settings.events_table, site, day, marked_at)
        done.append(day)
    return done


def archive_settled_days(
    settings: Settings,
    dynamodb: Any,
    site: str,
    items: Mapping[tuple[str, str], Mapping[str, Any]],
    now: datetime,
    s3: Any = None,
) -> list[date]:
    """`compactor.compact`'s archiving for `site` from `items`: the file of every UTC day with
    events that has settled by `now`, written from its items in key order (what
    `compactor.stored_records` reads from the table). A day not settled yet is left to the
    compactor, which archives it when the local day still marked for it closes."""
    tz = site_zones(dynamodb, settings, {site}).get(site, "UTC")
    by_day: dict[date, list[tuple[str, Mapping[str, Any]]]] = {}
    for (pk, sk), item in items.items():
        if pk.startswith(f"{site}#"):
            by_day.setdefault(day_of(int(sk[:13])), []).append((sk, item))
    s3 = s3 or aws.client("s3", settings)
    done = []
    for day in sorted(d for d in by_day if settles_at(d, tz) <= now):
        records = [archive_record(dict(item)) for _, item in sorted(by_day[day], key=_first)]
        archive.write_day(settings, site, day, records, s3=s3)
        done.append(day)
    return done


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]


def _end_of_day(ts_ms: int, now: datetime) -> datetime:
    day = datetime.fromtimestamp(ts_ms / 1000, tz=UTC).date()
    return min(datetime.combine(day, time.max, tzinfo=UTC), now)


def load_demo(
    settings: Settings,
    now: datetime | None = None,
    days: int = 28,
    seed: int = 7,
    live_minutes: int = 30,
    progress: bool = True,
    roll_up: bool = False,
) -> DemoSummary:
    """Generate the demo traffic and push it through the consumer (and, for the last
    `live_minutes`, through SQS and the worker). Re-running overwrites the same events.

    `roll_up`: also store the rollup of every closed day and the archive file of every settled
    UTC day, from the events just written, when the site had nothing stored before (else the
    compactor's schedule does it, reading all)."""
    now = now or datetime.now(UTC)
    register_site(settings, new_site(DEMO_SITE))
    consumer = Consumer(settings)
    dynamodb = aws.client("dynamodb", settings)
    recorder = None
    if roll_up and not _has_history(dynamodb, settings, DEMO_SITE):
        recorder = consumer.writer = RecordingWriter(consumer.writer)  # type: ignore[assignment]
    hits = list(generate_hits(now, days=days, seed=seed))
    live_from = int((now - timedelta(minutes=live_minutes)).timestamp() * 1000)
    history = [hit for hit in hits if hit.ts_ms < live_from]
    live = [hit for hit in hits if hit.ts_ms >= live_from]
    summary = DemoSummary(hits=len(hits), queued=len(live))
    with tqdm(total=len(hits), desc="demo traffic", unit="hit", disable=not progress) as bar:
        for _, day_hits in groupby(history, key=lambda hit: hit.ts_ms // 86_400_000):
            day_hits = list(day_hits)
            for start in range(0, len(day_hits), LAMBDA_BATCH):
                chunk = day_hits[start : start + LAMBDA_BATCH]
                records = [{"messageId": h.request_id, "body": h.message_body()} for h in chunk]
                outcome = consumer.process(records, now=_end_of_day(chunk[-1].ts_ms, now))
                summary.stored += outcome.stored
                summary.dropped += sum(outcome.dropped.values())
                summary.failed += len(outcome.failures)
                bar.update(len(chunk))
        _send_live(settings, consumer, live, summary)
        bar.update(len(live))
    if recorder is not None:
        summary.rolled_up = roll_up_closed_days(settings, dynamodb, DEMO_SITE, recorder.events, now)
        summary.archived = archive_settled_days(settings, dynamodb, DEMO_SITE, recorder.events, now)
    return summary


def _send_live(
    settings: Settings, consumer: Consumer, live: list[DemoHit], summary: DemoSummary
) -> None:
    if not live:
        return
    sqs = aws.client("sqs", settings)
    url = queue_url(sqs, settings)
    for start in range(0, len(live), 10):
        entries = [
            {"Id": str(i), "MessageBody": hit.message_body()}
            for i, hit in enumerate(live[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)

    def handle(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        # Counted from the consumer's outcome: a dropped hit (a bot) is a message that
        # succeeded, not an event stored.
        outcome = consumer.process(event.get("Records", []))
        summary.stored += outcome.stored
        summary.dropped += sum(outcome.dropped.values())
        return outcome.response()

    drained = Worker(settings, handle, sqs=sqs, wait_time=0).drain()
    summary.failed += drained.failed
