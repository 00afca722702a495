"""The living demo: visits keep arriving through the real pixel path while the demo runs.

A sender thread plays visitors at a gentle rate: each visit is a few pageviews seconds apart
(sometimes a custom event), sent as `GET /pixel?...` requests to our own collector on a free
127.0.0.1 port; the collector puts them on SQS and a worker thread long-polls the queue and
hands them to the consumer, exactly as local mode does. So the Real time page has current
visitors and its feed moves, and the path a browser's hit takes is exercised all along.

The collector's TCP peer is always 127.0.0.1, so each visitor sends the headers CloudFront adds
in front of the pixel on AWS (`CloudFront-Viewer-Address` and the geo headers): distinct
visitors then hash to distinct visitor ids and have a place. Their addresses come from
198.18.0.0/15 (RFC 2544's benchmarking range, never a real visitor or a cloud provider).
Nothing is printed or logged per hit.

    live = start_live_demo(settings)   # after the resources exist
    ...
    live.stop()                         # within about two seconds
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.config import Settings
from pipeline.consume.consumer import Consumer
from pipeline.consume.worker import Worker
from pipeline.enrich.sites import list_sites, new_site, register_site
from pipeline.errors import PipelineError
from pipeline.ingest.collector import CollectorServer, start_collector
from pipeline.local.demo import (
    CITIES,
    CUSTOM_EVENTS,
    DEMO_SITE,
    PAGES,
    SOURCES,
    USER_AGENTS,
    engagement_of,
)

log = logging.getLogger("pipeline.local.live")
# Visits a minute. The demo's days have ~60-100 visitors; one every 20 s keeps Real time busy
# (a dozen current visitors) without making today's numbers leap while the dashboard is open.
DEFAULT_RATE_PER_MINUTE = 3.0
# One long poll: the worker waits this long for a message (moto blocks on a condition, no
# busy loop), and a stop waits at most this long for the worker.
POLL_WAIT_S = 1
SEND_TIMEOUT_S = 2.0
BOUNCE_SHARE = 0.45  # Plausible-like sites see about half the visits bounce
MAX_PAGES = 5
PAGE_GAP_S = (4.0, 20.0)  # seconds between a visit's pageviews: it shows in the feed as it goes
EVENT_DELAY_S = (2.0, 8.0)

T = TypeVar("T")


@dataclass(frozen=True)
class LiveHit:
    """One pixel request of a planned visit, `after` seconds after the visit starts."""

    after: float
    query: str
    headers: dict[str, str]


def _weighted(rng: random.Random, options: Sequence[T], weights: Sequence[float]) -> T:
    return rng.choices(list(options), weights=list(weights))[0]


def _page(rng: random.Random) -> str:
    return _weighted(rng, list(PAGES), list(PAGES.values()))


def visitor_headers(rng: random.Random) -> dict[str, str]:
    """A visitor's request headers as CloudFront forwards them: browser, address, place."""
    ua, _, _ = _weighted(rng, USER_AGENTS, [weight for *_, weight in USER_AGENTS])
    country, region, city, lat, lon, _, _ = _weighted(
        rng, CITIES, [weight for *_, weight in CITIES]
    )
    address = f"198.{rng.randint(18, 19)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return {
        "User-Agent": ua,
        "CloudFront-Viewer-Address": f"{address}:{rng.randint(1024, 65535)}",
        "CloudFront-Viewer-Country": country,
        "CloudFront-Viewer-Country-Region": region,
        "CloudFront-Viewer-City": city,
        "CloudFront-Viewer-Latitude": f"{lat + rng.uniform(-0.05, 0.05):.4f}",
        "CloudFront-Viewer-Longitude": f"{lon + rng.uniform(-0.05, 0.05):.4f}",
    }


def _screen_width(rng: random.Random, user_agent: str) -> int:
    for ua, widths, _ in USER_AGENTS:
        if ua == user_agent:
            return rng.choice(widths)
    return 1440


def plan_visit(rng: random.Random, site: str = DEMO_SITE) -> list[LiveHit]:
    """One visit, as the tracker would send it: its pageviews (the first from a source of
    the demo's mix), the custom events the demo's pages fire and the engagement each page
    reports when it is left, each with its delay."""
    headers = visitor_headers(rng)
    width = str(_screen_width(rng, headers["User-Agent"]))
    referrer, query, entry, _ = _weighted(rng, SOURCES, [source[-1] for source in SOURCES])
    path = entry or _page(rng)
    length = 1 if rng.random() < BOUNCE_SHARE else rng.randint(2, MAX_PAGES)
    hits, after = [], 0.0
    for step in range(length):
        url = f"https://{site}{path}" + (f"?{query}" if query and step == 0 else "")
        sent_from = referrer if step == 0 else f"https://{site}/"
        pixel = {"d": site, "n": "pageview", "u": url, "r": sent_from, "w": width}
        hits.append(LiveHit(after, urlencode(pixel), headers))
        if path in CUSTOM_EVENTS:
            name, chance, props = CUSTOM_EVENTS[path]
            if rng.random() < chance:
                at = after + rng.uniform(*EVENT_DELAY_S)
                event = pixel | {"n": name, "r": "", "p": json.dumps(props(rng))}
                hits.append(LiveHit(at, urlencode(event), headers))
        shown_at, after = after, after + rng.uniform(*PAGE_GAP_S)
        # Leaving the page (the next pageview, or closing it): the script's engagement event,
        # engaged time within the time the page was shown.
        engaged_ms, depth = engagement_of(rng, path, after - shown_at)
        left = {"d": site, "n": "engagement", "u": url, "r": "", "w": width}
        left |= {"e": str(engaged_ms), "sd": str(depth)}
        hits.append(LiveHit(max(shown_at, after - 0.05), urlencode(left), headers))
        path = _page(rng)
    return sorted(hits, key=lambda hit: hit.after)


def send_pixel(host: str, port: int, hit: LiveHit, timeout: float = SEND_TIMEOUT_S) -> int:
    """GET /pixel for one hit on a fresh connection (one every few seconds: no pool needed);
    the collector's status."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", f"/pixel?{hit.query}", headers=hit.headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


class LiveDemo:
    """The collector, worker and sender of the living demo; `stop()` ends all three.

    Everything, set-up included (the site check, the collector, the worker's queue look-ups),
    happens in a daemon thread: starting it costs the dashboard's first page nothing."""

    def __init__(
        self,
        settings: Settings,
        rate_per_minute: float,
        seed: int | None,
        site: str,
        delay_s: float = 0.0,
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self.settings = settings
        self.rate_per_minute = rate_per_minute
        self.site = site
        self.delay_s = delay_s
        self.sent = 0  # pixel requests answered 200
        self.failed = 0  # refused, unanswered or not queued
        self.ready = threading.Event()  # set once sending has begun (or set-up failed)
        self.collector: CollectorServer | None = None
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._main = threading.Thread(target=self._run, name="live-demo", daemon=True)
        self._worker: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.collector.url if self.collector else ""

    @property
    def running(self) -> bool:
        return self._main.is_alive() or bool(self._worker and self._worker.is_alive())

    def start(self) -> LiveDemo:
        self._main.start()
        return self

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Whether the collector is up and sending has begun within `timeout` seconds."""
        return self.ready.wait(timeout) and self.collector is not None

    def _run(self) -> None:
        if self._stop.wait(self.delay_s):
            self.ready.set()
            return
        try:
            self._set_up()
        except (ClientError, BotoCoreError, PipelineError, OSError) as exc:
            log.warning("the living demo could not start: %s", type(exc).__name__)
            self._tear_down()
            return
        finally:
            self.ready.set()
        try:
            self._send_visits()
        finally:
            self._tear_down()

    def _set_up(self) -> None:
        if self.site not in {known.domain for known in list_sites(self.settings)}:
            register_site(self.settings, new_site(self.site))  # a known site keeps its settings
        self.collector = start_collector(self.settings)
        worker = Worker(
            self.settings, Consumer(self.settings).handle, batch_window=0.2, wait_time=POLL_WAIT_S
        )
        self._worker = threading.Thread(
            target=worker.run, args=(self._stop,), name="live-worker", daemon=True
        )
        self._worker.start()

    def _tear_down(self) -> None:
        self._stop.set()
        if self.collector is not None:
            self.collector.shutdown(timeout=1.0)
        if self._worker is not None:
            self._worker.join(timeout=POLL_WAIT_S + 1.0)  # its long poll, then its batch

    def _send_visits(self) -> None:
        """Start a visit now and then one after each random gap (Poisson arrivals at the
        rate), send every planned hit when it is due, sleep until the next thing is due."""
        if self.collector is None:
            return
        host, port = self.collector.server_address[:2]
        due: list[tuple[float, int, LiveHit]] = []
        order = itertools.count()  # ties in time never compare two hits
        next_visit = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_visit:
                for hit in plan_visit(self._rng, self.site):
                    heapq.heappush(due, (now + hit.after, next(order), hit))
                next_visit = now + self._rng.expovariate(self.rate_per_minute / 60)
            while due and due[0][0] <= now and not self._stop.is_set():
                self._send(host, port, heapq.heappop(due)[2])
            wake = min(next_visit, due[0][0]) if due else next_visit
            self._stop.wait(max(0.05, wake - time.monotonic()))

    def _send(self, host: str, port: int, hit: LiveHit) -> None:
        try:
            status = send_pixel(host, port, hit)
        except OSError as exc:  # the type only: nothing about the hit
            status = 0
            log.debug("live demo hit not sent: %s", type(exc).__name__)
        if status == 200:
            self.sent += 1
        else:
            self.failed += 1

    def stop(self, timeout: float = 3.0) -> None:
        """Stop sending, close the collector, let the worker finish its poll; returns within
        `timeout` seconds (about one: the collector closes at once, the long poll is 1 s)."""
        self._stop.set()
        if self._main.is_alive():
            self._main.join(timeout)


def start_live_demo(
    settings: Settings,
    rate_per_minute: float = DEFAULT_RATE_PER_MINUTE,
    seed: int | None = None,
    site: str = DEMO_SITE,
    delay_s: float = 0.0,
) -> LiveDemo:
    """Start the living demo on `settings`' queue and tables (which must exist) and return at
    once; it sets up in its own thread (`wait_ready()` waits for it). The site is registered
    if it is not yet (as `load_demo` does), so either may start first. `delay_s`: wait that
    long first (the dashboard lets its first page render before the collector starts)."""
    return LiveDemo(settings, rate_per_minute, seed, site, delay_s).start()
