"""Shared fixtures for the Stats API tests: a registered site with a few days of hand-made
traffic written through the real path (contract message → `Consumer` → DynamoDB on moto),
closed days rolled up by the real compactor. Reusable by every test under tests/api.

The traffic of `stats_site` (site "example.com", UTC; NOW is Friday 2026-11-20 15:00 UTC),
written so the numbers can be worked out by hand (see `HAND`):

- Wed 18: alice (Chrome, DE, from Google) views / at 10:00, /pricing at 10:05, sends "Signup"
  {plan: pro} at 10:06; bob (iPhone, US, direct) views / at 11:00 and leaves.
- Thu 19: carol (Chrome, FR, from Hacker News) views /blog at 09:00 (engaged 30 s, scrolled
  80 %, reported at 09:09), / at 09:10; alice again (a new day, a new hash) views /pricing at
  12:00 and leaves; dave (Chrome, US, utm_source=newsletter) views / at 13:00, sends "Signup"
  {plan: free} at 13:01.
- Fri 20 (today): erin (iPhone, DE) views / at 14:00.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby
from urllib.parse import urlencode

import pytest
from moto import mock_aws

from pipeline.config import Settings
from pipeline.consume.consumer import Consumer
from pipeline.ingest.contract import build_message, encode_message
from pipeline.store.compactor import compact
from tests.conftest import CHROME_UA, IPHONE_UA, create_test_resources

SITE = "example.com"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
TODAY = NOW.date()


@dataclass(frozen=True)
class Hit:
    """One request of the tracker, as a person at a place sends it."""

    at: datetime
    person: int  # the last byte of the IP: one person per number (with `ua`)
    path: str = "/"
    name: str = "pageview"
    props: dict[str, str] = field(default_factory=dict)
    referrer: str = ""
    query: str = ""  # the page URL's query string (utm_* ...)
    ua: str = CHROME_UA
    country: str = "DE"
    engaged_ms: int | None = None
    scroll: int | None = None


def _message(hit: Hit, n: int, site: str) -> dict[str, str]:
    url = f"https://{site}{hit.path}" + (f"?{hit.query}" if hit.query else "")
    params = {"d": site, "u": url, "r": hit.referrer, "w": "1280"}
    if hit.name != "pageview":
        params["n"] = hit.name
    if hit.props:
        params["p"] = json.dumps(hit.props)
    if hit.engaged_ms is not None:
        params["e"] = str(hit.engaged_ms)
    if hit.scroll is not None:
        params["sd"] = str(hit.scroll)
    headers = {"User-Agent": hit.ua, "CloudFront-Viewer-Country": hit.country}
    ms = int(hit.at.timestamp() * 1000)
    request_id = f"api-{ms}-{n}"
    body = encode_message(
        build_message(urlencode(params), headers, f"203.0.113.{hit.person}", ms, request_id)
    )
    return {"messageId": request_id, "body": body}


def write_hits(settings: Settings, hits: Iterable[Hit], site: str = SITE) -> int:
    """Every hit through the consumer (the Lambda's code), a day's batch with the clock at
    that day's end (so each day's salt is the one it would have had); returns events stored."""
    consumer = Consumer(settings)
    stored = 0
    ordered = sorted(hits, key=lambda h: h.at)
    for day, group in groupby(ordered, key=lambda h: h.at.astimezone(UTC).date()):
        batch = list(group)
        records = [_message(hit, n, site) for n, hit in enumerate(batch)]
        end = min(datetime.combine(day, time.max, tzinfo=UTC), NOW)
        outcome = consumer.process(records, now=end)
        assert not outcome.failures, outcome
        stored += outcome.stored
    return stored


def at(day: date, clock: str) -> datetime:
    hours, minutes = (int(p) for p in clock.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=UTC)


WED, THU = TODAY - timedelta(days=2), TODAY - timedelta(days=1)
HITS = (
    Hit(at(WED, "10:00"), 1, "/", referrer="https://www.google.com/"),
    Hit(at(WED, "10:05"), 1, "/pricing"),
    Hit(at(WED, "10:06"), 1, "/pricing", name="Signup", props={"plan": "pro"}),
    Hit(at(WED, "11:00"), 2, "/", ua=IPHONE_UA, country="US"),
    Hit(at(THU, "09:00"), 3, "/blog", referrer="https://news.ycombinator.com/", country="FR"),
    Hit(at(THU, "09:09"), 3, "/blog", name="engagement", engaged_ms=30_000, scroll=80,
        country="FR"),
    Hit(at(THU, "09:10"), 3, "/", country="FR"),
    Hit(at(THU, "12:00"), 1, "/pricing"),
    Hit(at(THU, "13:00"), 4, "/", query="utm_source=newsletter", country="US"),
    Hit(at(THU, "13:01"), 4, "/", name="Signup", props={"plan": "free"}, country="US"),
    Hit(at(TODAY, "14:00"), 5, "/", ua=IPHONE_UA),
)  # fmt: skip

# Worked out by hand from HITS for Wed..Thu (Plausible's rules, docs in metrics.py):
# 5 visits of 5 visitor hashes (alice is two: a new salt each day), 7 pageviews, 2 Signups;
# bob's and alice's Thursday visit bounce (2 of 5); durations 360 + 0 + 600 + 0 + 60 s.
HAND = {
    "visitors": 5,
    "visits": 5,
    "pageviews": 7,
    "events": 9,
    "bounce_rate": 40,
    "visit_duration": 204,
    "views_per_visit": 1.4,
}


@pytest.fixture
def stats_site(settings: Settings) -> tuple[Settings, str]:
    """(settings, site): HITS stored for the registered site "example.com", every closed day
    rolled up by the compactor as of NOW. Sources: `StoreSource(settings, site, now=...)`."""
    stored = write_hits(settings, HITS)
    assert stored == len(HITS)
    compact(settings, now=NOW)
    return settings, SITE


@pytest.fixture(scope="module")
def stats_site_module() -> Iterator[tuple[Settings, str]]:
    """`stats_site` written once for a whole module (read-only tests: writing and compacting
    takes seconds), in a moto mock of its own."""
    with pytest.MonkeyPatch.context() as env, mock_aws():
        for name, value in (
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ):
            env.setenv(name, value)
        settings = Settings.for_prefix(f"m{uuid.uuid4().hex[:8]}")
        create_test_resources(settings)
        assert write_hits(settings, HITS) == len(HITS)
        compact(settings, now=NOW)
        yield settings, SITE
