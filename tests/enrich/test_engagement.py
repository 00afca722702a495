"""Engagement events (engaged time, scroll depth) and the previous day's visitor hash, in
enrichment: hits built from real contract messages, run through every step."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

import pytest

from pipeline.enrich.salts import CARRY_OVER, visitor_hash
from pipeline.enrich.sites import new_site
from pipeline.enrich.steps import (
    DROP_EXPLANATIONS,
    MAX_ENGAGEMENT_MS,
    Context,
    Dropped,
    DropReason,
    enrich,
    hit_from_message,
    in_carry_over,
)
from pipeline.ingest.contract import FORWARDED_HEADERS, build_message, encode_message, parse_message
from tests.conftest import CHROME_UA

DAY = date(2026, 11, 20)
YESTERDAY = DAY - timedelta(days=1)
MIDNIGHT = datetime(2026, 11, 20, tzinfo=UTC)
NOON_MS = int((MIDNIGHT + timedelta(hours=12)).timestamp() * 1000)
SALT, OLD_SALT = b"s" * 32, b"o" * 32
SITES = {"example.com": new_site("example.com")}
CTX = Context(salts={DAY: SALT, YESTERDAY: OLD_SALT}, sites=SITES)
PAGE = "d=example.com&u=https%3A%2F%2Fexample.com%2Fblog%2Fpost"
IP = "203.0.113.7"


def run(query: str, received_at_ms: int = NOON_MS, ctx: Context = CTX):
    body = encode_message(
        build_message(query, {"User-Agent": CHROME_UA}, IP, received_at_ms, "req-1")
    )
    return enrich(hit_from_message(parse_message(body)), ctx)


def engagement(e: str, sd: str) -> dict | Dropped:
    return run(f"{PAGE}&n=engagement&e={quote(e)}&sd={quote(sd)}")


@pytest.mark.parametrize(
    ("e", "sd", "engaged_ms", "depth"),
    [
        pytest.param("42000", "87", 42_000, 87, id="plain"),
        pytest.param("0", "0", 0, 0, id="zeros"),
        pytest.param(" 1500 ", "100", 1_500, 100, id="spaces-around"),
        pytest.param("1500.9", "33.7", 1_500, 33, id="fractions-cut"),
        pytest.param("+250", "+10", 250, 10, id="plus-sign"),
        pytest.param(str(MAX_ENGAGEMENT_MS), "50", MAX_ENGAGEMENT_MS, 50, id="exactly-24h"),
        pytest.param("86400001", "50", MAX_ENGAGEMENT_MS, 50, id="absurd-over-24h-clamped"),
        pytest.param("9" * 20, "50", MAX_ENGAGEMENT_MS, 50, id="huge-clamped"),
        pytest.param("1000", "-5", 1_000, 0, id="depth-negative-clamped"),
        pytest.param("1000", "150", 1_000, 100, id="depth-over-100-clamped"),
        pytest.param("1000", "abc", 1_000, None, id="depth-not-a-number-left-out"),
        pytest.param("1000", "", 1_000, None, id="depth-missing-left-out"),
        pytest.param("1000", "nan", 1_000, None, id="depth-nan-left-out"),
        pytest.param("1000", "1e2", 1_000, None, id="depth-exponent-left-out"),
    ],
)
def test_engagement_values_are_kept_clamped_or_left_out(e, sd, engaged_ms, depth):
    event = engagement(e, sd)
    assert not isinstance(event, Dropped)
    assert event["name"] == "engagement" and event["engagement_ms"] == engaged_ms
    assert isinstance(event["engagement_ms"], int)
    if depth is None:
        assert "scroll_depth" not in event
    else:
        assert event["scroll_depth"] == depth and isinstance(depth, int)


@pytest.mark.parametrize(
    "e",
    [
        pytest.param("-1", id="negative"),
        pytest.param("-0.5", id="negative-fraction"),
        pytest.param("abc", id="not-a-number"),
        pytest.param("", id="missing"),
        pytest.param("NaN", id="nan"),
        pytest.param("Infinity", id="infinity"),
        pytest.param("1e3", id="exponent"),
        pytest.param("1_000", id="underscores"),
        pytest.param("١٢٣", id="non-ascii-digits"),
        pytest.param("0x10", id="hex"),
        pytest.param("9" * 21, id="longer-than-any-real-value"),
        pytest.param("😀", id="emoji"),
    ],
)
def test_an_engagement_without_a_usable_time_is_dropped_with_a_named_reason(e):
    assert engagement(e, "50") == Dropped(DropReason.BAD_ENGAGEMENT)


def test_the_new_drop_reason_is_named_and_explained():
    assert DropReason.BAD_ENGAGEMENT.value == "bad_engagement"
    assert "engaged time" in DROP_EXPLANATIONS[DropReason.BAD_ENGAGEMENT]


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(f"{PAGE}&e=5000&sd=80", id="pageview"),
        pytest.param(f"{PAGE}&n=Signup&e=5000&sd=80", id="custom-event"),
        pytest.param(f"{PAGE}&n=Engagement&e=-1&sd=abc", id="another-case-is-a-custom-event"),
        pytest.param(f"{PAGE}&e=-1&sd=abc", id="bad-values-ignored"),
    ],
)
def test_other_events_never_carry_engagement_fields(query):
    event = run(query)
    assert not isinstance(event, Dropped)
    assert "engagement_ms" not in event and "scroll_depth" not in event


def test_a_version_1_message_enriches_as_before():
    # Queued by the old collector: six query keys, no `e`/`sd` at all.
    headers = dict.fromkeys(FORWARDED_HEADERS, "") | {"user-agent": CHROME_UA}
    query = {"d": "example.com", "u": "https://example.com/a", "r": "", "n": "", "p": "", "w": ""}
    body = json.dumps(
        {"v": 1, "request_id": "old-1", "received_at": NOON_MS, "source_ip": IP}
        | {"query": query, "headers": headers}
    )
    event = enrich(hit_from_message(parse_message(body)), CTX)
    assert (event["name"], event["path"]) == ("pageview", "/a")
    assert "engagement_ms" not in event and "prev_visitor" not in event


def test_an_engagement_event_from_a_version_1_message_has_no_time_and_is_dropped():
    headers = dict.fromkeys(FORWARDED_HEADERS, "") | {"user-agent": CHROME_UA}
    query = {"d": "example.com", "u": "https://example.com/a", "r": "", "n": "engagement"}
    body = json.dumps(
        {"v": 1, "request_id": "old-2", "received_at": NOON_MS, "source_ip": IP}
        | {"query": query | {"p": "", "w": ""}, "headers": headers}
    )
    assert enrich(hit_from_message(parse_message(body)), CTX) == Dropped(DropReason.BAD_ENGAGEMENT)


# ---- prev_visitor ----------------------------------------------------------------------


def at(delta: timedelta) -> int:
    return int((MIDNIGHT + delta).timestamp() * 1000)


@pytest.mark.parametrize(
    ("delta", "carried"),
    [
        pytest.param(timedelta(0), True, id="midnight"),
        pytest.param(timedelta(minutes=30, seconds=59, milliseconds=999), True, id="30m59.999s"),
        pytest.param(timedelta(minutes=31), False, id="31m"),
        pytest.param(timedelta(hours=23, minutes=59), False, id="end-of-day"),
    ],
)
def test_prev_visitor_only_in_the_first_31_minutes(delta, carried):
    assert timedelta(minutes=31) == CARRY_OVER
    assert in_carry_over(at(delta), DAY) is carried
    event = run(PAGE, received_at_ms=at(delta))
    expected = visitor_hash(OLD_SALT, "example.com", IP, CHROME_UA)
    assert event.get("prev_visitor") == (expected if carried else None)
    assert event["visitor"] == visitor_hash(SALT, "example.com", IP, CHROME_UA) != expected


def test_no_prev_visitor_without_the_previous_days_salt():
    event = run(PAGE, received_at_ms=at(timedelta(minutes=1)), ctx=Context({DAY: SALT}, SITES))
    assert "prev_visitor" not in event and event["visitor"]


def test_a_late_hit_of_yesterday_uses_the_day_before_it_not_today():
    # Received 23:59 yesterday: its own day is yesterday, far from that day's midnight.
    event = run(PAGE, received_at_ms=at(-timedelta(minutes=1)))
    assert event["visitor"] == visitor_hash(OLD_SALT, "example.com", IP, CHROME_UA)
    assert "prev_visitor" not in event
