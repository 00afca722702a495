"""Enrichment steps, run on hits built from real contract messages."""

from __future__ import annotations

import ipaddress
import json
from datetime import date
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.enrich.geo import client_ip, location_from_headers
from pipeline.enrich.salts import visitor_hash
from pipeline.enrich.sites import new_site
from pipeline.enrich.steps import (
    DROP_EXPLANATIONS,
    Context,
    Dropped,
    DropReason,
    enrich,
    hit_from_message,
    parse_props,
    screen_class,
)
from pipeline.ingest.contract import build_message, encode_message, parse_message
from tests.conftest import CHROME_UA, GOOGLEBOT_UA

RECEIVED = 1_764_150_000_000  # 2025-11-26T09:40:00Z
DAY = date(2025, 11, 26)
SALT = b"s" * 32
SITES = {"example.com": new_site("example.com")}


def hit(query: str, headers: dict[str, str] | None = None, ip: str = "203.0.113.7"):
    headers = {"User-Agent": CHROME_UA} if headers is None else headers
    body = encode_message(build_message(query, headers, ip, RECEIVED, "req-1"))
    return hit_from_message(parse_message(body))


def run(
    query: str,
    headers: dict[str, str] | None = None,
    ctx: Context | None = None,
    ip: str = "203.0.113.7",
):
    return enrich(hit(query, headers, ip), ctx or Context(salts={DAY: SALT}, sites=SITES))


def test_a_full_pageview_event():
    event = run(
        "d=Example.com&u=https%3A%2F%2Fexample.com%2Fpricing%3Futm_source%3Dnl%26secret%3D1"
        "&r=https%3A%2F%2Fwww.google.com%2Fsearch%3Fq%3Dme&w=390",
        {
            "User-Agent": CHROME_UA,
            "CloudFront-Viewer-Address": "198.51.100.23:53311",
            "CloudFront-Viewer-Country": "fr",
            "CloudFront-Viewer-Country-Region": "IDF",
            "CloudFront-Viewer-City": "Saint-%C3%89tienne",
            "CloudFront-Viewer-Latitude": "45.43389",
            "CloudFront-Viewer-Longitude": "4.39000",
        },
    )
    assert event == {
        "site": "example.com",
        "ts": RECEIVED,
        "request_id": "req-1",
        "hostname": "example.com",
        "path": "/pricing",
        "url": "example.com/pricing?utm_source=nl",
        "utm_source": "nl",
        "utm_medium": "",
        "utm_campaign": "",
        "utm_term": "",
        "utm_content": "",
        "referrer": "www.google.com/search",
        "referrer_source": "Google",
        "name": "pageview",
        "props": {},
        "browser": "Chrome",
        "browser_version": "131",
        "os": "Windows",
        "os_version": "10",
        "device": "Desktop",
        "screen_width": 390,
        "screen": "Mobile",
        "country": "FR",
        "region": "FR-IDF",
        "city": "Saint-Étienne",
        "lat": 45.4,
        "lon": 4.4,
        # The hash is of the viewer address from CloudFront, not the TCP peer.
        "visitor": visitor_hash(SALT, "example.com", "198.51.100.23", CHROME_UA),
    }


def test_without_u_the_referer_header_is_the_page():
    event = run(
        "d=example.com", {"User-Agent": CHROME_UA, "Referer": "https://example.com/blog?x=1"}
    )
    assert event["path"] == "/blog"


def test_internal_referrer_is_not_a_source_but_utm_is():
    event = run(
        "d=example.com&u=https%3A%2F%2Fexample.com%2Fb%3Futm_source%3Dhn&r=https%3A%2F%2Fwww.example.com%2Fa"
    )
    assert (event["referrer"], event["referrer_source"]) == ("", "Hacker News")


def test_no_referrer_is_direct():
    assert run("d=example.com&u=https%3A%2F%2Fexample.com%2F")["referrer_source"] == "Direct / None"


def test_custom_event_with_props():
    event = run(
        "d=example.com&u=https%3A%2F%2Fexample.com%2F&n=Signup&p=%7B%22plan%22%3A%22pro%22%2C%22seats%22%3A3%7D"
    )
    assert (event["name"], event["props"]) == ("Signup", {"plan": "pro", "seats": "3"})


@pytest.mark.parametrize(
    ("query", "headers", "ctx", "reason"),
    [
        pytest.param(
            "d=example.com&u=https%3A%2F%2Fexample.com%2F",
            {"User-Agent": GOOGLEBOT_UA},
            None,
            DropReason.BOT,
            id="bot",
        ),
        pytest.param(
            "d=example.com&u=https%3A%2F%2Fexample.com%2F",
            {},
            None,
            DropReason.BOT,
            id="no-user-agent",
        ),
        pytest.param(
            "u=https%3A%2F%2Fexample.com%2F", None, None, DropReason.NO_SITE, id="missing-d"
        ),
        pytest.param(
            "d=example.com&u=%2Fonly-a-path", None, None, DropReason.NO_PAGE, id="page-without-host"
        ),
        pytest.param(
            "d=example.com&u=https%3A%2F%2Fexample.com%2F",
            None,
            Context(salts={}, sites=SITES),
            DropReason.STALE,
            id="salt-gone",
        ),
        pytest.param(
            "d=example.com&u=https%3A%2F%2Fexample.com%2F",
            {"User-Agent": CHROME_UA, "DNT": "1"},
            Context(salts={DAY: SALT}, sites=SITES, respect_dnt=True),
            DropReason.DO_NOT_TRACK,
            id="dnt-when-respected",
        ),
        pytest.param(
            "d=example.com&u=https%3A%2F%2Fexample.com%2F",
            {"User-Agent": CHROME_UA, "Sec-GPC": "1"},
            Context(salts={DAY: SALT}, sites=SITES, respect_dnt=True),
            DropReason.DO_NOT_TRACK,
            id="gpc-when-respected",
        ),
    ],
)
def test_drops_name_their_reason(query, headers, ctx, reason):
    assert run(query, headers, ctx) == Dropped(reason)


def test_dnt_is_ignored_by_default():
    assert not isinstance(
        run("d=example.com&u=https%3A%2F%2Fexample.com%2F", {"User-Agent": CHROME_UA, "DNT": "1"}),
        Dropped,
    )


def test_nasty_text_is_cleaned_and_capped():
    nasty = "%22%5C%3Cscript%3E%00%01%F0%9F%98%80%FF"  # " \ <script> NUL SOH 😀 invalid-byte
    decoded = '"\\<script>\x00\x01😀\ufffd'
    props = quote(json.dumps({"k": decoded, "x": "not closed"})[:-1])  # broken JSON: no props
    event = run(f"d=example.com&u=https%3A%2F%2Fexample.com%2F{nasty}&n={nasty * 100}&p={props}")
    assert event["path"] == '/"\\<script>😀\ufffd'
    assert len(event["name"]) == 120 and "\x00" not in event["name"]
    assert event["props"] == {}
    good = run(
        f"d=example.com&u=https%3A%2F%2Fexample.com%2F&p={quote(json.dumps({'k': decoded}))}"
    )
    assert good["props"] == {"k": '"\\<script>😀\ufffd'}


@pytest.mark.parametrize(
    ("raw", "props"),
    [
        ("", {}),
        ("not json", {}),
        ("[1,2]", {}),
        ('"text"', {}),
        (
            '{"a": 1, "b": true, "c": null, "d": {"x": 1}, "e": 1.5}',
            {"a": "1", "b": "true", "d": '{"x":1}', "e": "1.5"},
        ),
        (
            "{" + ",".join(f'"k{i}": "v"' for i in range(50)) + "}",
            {f"k{i}": "v" for i in range(30)},
        ),
        ('{"long": "' + "x" * 5000 + '"}', {"long": "x" * 2000}),
    ],
)
def test_props_are_a_capped_string_map(raw, props):
    assert parse_props(raw) == props


@pytest.mark.parametrize(
    ("width", "label"),
    [(None, ""), (375, "Mobile"), (820, "Tablet"), (1280, "Laptop"), (1920, "Desktop")],
)
def test_screen_classes(width, label):
    assert screen_class(width) == label


@pytest.mark.parametrize("raw", ["", "abc", "-5", "0", "99999999", "1e3"])
def test_odd_screen_widths_are_unknown(raw):
    assert run(f"d=example.com&u=https%3A%2F%2Fexample.com%2F&w={raw}")["screen_width"] is None


@pytest.mark.parametrize(
    ("address", "source", "expected"),
    [
        ("198.51.100.23:53311", "10.0.0.1", "198.51.100.23"),
        (
            "2001:db8::8a2e:370:7334:443",
            "10.0.0.1",
            "2001:db8::8a2e:370:7334",
        ),  # the port follows the last colon
        ("[2001:db8::1]:443", "10.0.0.1", "2001:db8::1"),
        ("2001:db8::1", "10.0.0.1", "2001:db8::1"),
        ("", "10.0.0.1", "10.0.0.1"),
        ("garbage", "10.0.0.1", "10.0.0.1"),
        ("", "not-an-ip", ""),
    ],
)
def test_client_ip(address, source, expected):
    assert client_ip({"cloudfront-viewer-address": address}, source) == expected


def _reference_ip(text: str) -> str:
    """What the client address was before the dotted-quad shortcut: ipaddress's own text."""
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        return ""


# Dotted numbers near every edge of the shortcut's pattern: 255/256, leading zeros, too few
# or too many parts, non-ASCII digits, spaces and brackets around, newlines after.
_OCTET = st.one_of(
    st.integers(0, 300).map(str),
    st.integers(0, 99).map(lambda n: f"0{n}"),
    st.sampled_from(["", "٣", "1 ", "+1", "0x1", "2555"]),
)


@given(
    st.lists(_OCTET, min_size=1, max_size=6).map(".".join),
    st.sampled_from(["{}", " {} ", "[{}]", "{}\n", "{}:443"]),
)
def test_client_ip_text_is_ipaddress_text(address, shape):
    text = shape.format(address)
    assert client_ip({}, text) == _reference_ip(text)


def test_location_rejects_malformed_values():
    loc = location_from_headers(
        {
            "cloudfront-viewer-country": "<b>",
            "cloudfront-viewer-country-region": "CA",
            "cloudfront-viewer-latitude": "91",
            "cloudfront-viewer-longitude": "nan",
        }
    )
    assert (loc.country, loc.region, loc.lat, loc.lon) == ("", "", None, None)


def test_every_drop_reason_is_explained_for_the_dashboard():
    assert set(DROP_EXPLANATIONS) == set(DropReason)
    assert all(text.strip() for text in DROP_EXPLANATIONS.values())


def test_lone_surrogates_leave_every_string_before_any_parser_sees_one():
    message = build_message(
        "d=example.com&u=https%3A%2F%2Fexample.com%2Fa&n=signup&p=%7B%22k%22%3A1%7D&w=390",
        {"User-Agent": CHROME_UA, "CloudFront-Viewer-Address": "198.51.100.23:53311"},
        "203.0.113.7",
        RECEIVED,
        "req-1",
    )
    halves = iter("\ud800\udbff\udc00\udfff" * 10)
    for part in ("query", "headers"):
        message[part] = {key: value + next(halves) for key, value in message[part].items()}
    body = encode_message({**message, "source_ip": "203.0.113.7\ud83d"})
    assert "\\ud800" in body  # JSON escapes, which json.loads turns into lone surrogates
    h = hit_from_message(parse_message(body))
    strings = [value for value in vars(h).values() if isinstance(value, str)]
    for text in [*strings, *h.headers.values()]:
        text.encode("utf-8")  # raises on a lone surrogate
    assert (h.site, h.page_url, h.name, h.user_agent) == (
        "example.com",
        "https://example.com/a",
        "signup",
        CHROME_UA,
    )
    event = enrich(h, Context(salts={DAY: SALT}, sites=SITES))
    assert (event["browser"], event["props"], event["screen_width"]) == ("Chrome", {"k": "1"}, 390)
    assert event["visitor"] == visitor_hash(SALT, "example.com", "198.51.100.23", CHROME_UA)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("[" * 100_000, id="100,000 open brackets"),
        pytest.param('{"a":' * 10_000 + "1" + "}" * 10_000, id="objects 10,000 deep"),
        pytest.param('{"a": ' + "[" * 2040 + "]" * 2040 + "}", id="2,048 units of nesting"),
        pytest.param('{"a":' * 17 + "1" + "}" * 17, id="one level over the limit"),
    ],
)
def test_props_nested_too_deeply_are_dropped_not_raised(raw):
    assert parse_props(raw) == {}


@pytest.mark.parametrize(
    ("raw", "props"),
    [
        pytest.param(
            '{"a":' * 16 + "1" + "}" * 16, {"a": '{"a":' * 15 + "1" + "}" * 15}, id="16 levels"
        ),
        pytest.param('{"k": "' + "[" * 5000 + '"}', {"k": "[" * 2000}, id="brackets in a string"),
        pytest.param(
            '{"k": "\\"[[[[[[[[[[[[[[[[[[[[", "d": {"x": [1]}}',
            {"k": '"' + "[" * 20, "d": '{"x":[1]}'},
            id="escaped quote in a string",
        ),
    ],
)
def test_props_nested_within_the_limit_are_kept(raw, props):
    assert parse_props(raw) == props


def test_an_event_with_props_too_deep_is_kept_without_them():
    event = run(f"d=example.com&u=https%3A%2F%2Fexample.com%2F&n=buy&p={'%5B' * 2048}")
    assert (event["name"], event["props"], event["path"]) == ("buy", {}, "/")


@pytest.mark.parametrize(
    ("d", "site"),
    [
        ("Example.COM.", "example.com"),
        ("%20example.com.%20", "example.com"),
        ("example.com..", "example.com"),
        (".", ""),
    ],
)
def test_the_site_is_normalised_like_the_registry_s_domains(d, site):
    assert hit(f"d={d}&u=https%3A%2F%2Fexample.com.%2F").site == site


def test_a_hit_from_a_fully_qualified_domain_counts_for_its_site():
    event = run("d=Example.COM.&u=https%3A%2F%2FEXAMPLE.com.%2Fpricing")
    assert (event["site"], event["hostname"], event["path"]) == (
        "example.com",
        "example.com",
        "/pricing",
    )
