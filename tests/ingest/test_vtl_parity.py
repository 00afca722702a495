"""The API Gateway template and the local collector put the same message on the queue.

The template (infra/pixel_request.vtl, the file the stack deploys) is rendered by a Velocity
engine (airspeed-ext) in API Gateway's documented environment (tests/apigateway_vtl.py).
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, quote

import pytest

from pipeline.ingest.contract import QUERY_KEYS, build_message, parse_message
from tests.apigateway_vtl import escape_javascript, render, url_encode
from tests.conftest import CHROME_UA

# XML 1.0's characters, which is what SQS accepts in a message body.
SQS_LEGAL = re.compile("^[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*$")
NASTY = (
    "\"quote\" 'apostrophe' back\\slash </script><script>alert(1)</script> 😀 é \x00\x01\x1f\x7f"
)


def queue_message(body: str) -> str:
    form = parse_qs(body, keep_blank_values=True, strict_parsing=True)
    assert form["Action"] == ["SendMessage"]
    (message,) = form["MessageBody"]
    return message


CASES = {
    "plain": ("d=example.com&u=https%3A%2F%2Fexample.com%2Fa%3Fb%3D1", {"User-Agent": CHROME_UA}),
    "no query string": ("", {"User-Agent": CHROME_UA}),
    "no headers": ("d=example.com", {}),
    "nasty in every query value": (
        "&".join(f"{k}={quote(NASTY)}" for k in QUERY_KEYS),
        {"User-Agent": CHROME_UA},
    ),
    "nasty in every header": (
        "d=example.com",
        {
            name: NASTY
            for name in (
                "User-Agent",
                "Referer",
                "CloudFront-Viewer-City",
                "CloudFront-Viewer-Country",
                "DNT",
            )
        },
    ),
    "apostrophes": (
        "d=o%27reilly.com&n=it%27s&p=%7B%22k%22%3A%22it%27s%22%7D",
        {"User-Agent": "it's"},
    ),
    "invalid utf-8": ("d=%FF%FE&u=%C3%28", {"User-Agent": CHROME_UA}),
    "long values": (
        f"u={'a' * 5000}&n={'😀' * 3000}",
        {"User-Agent": "x" * 9000, "Referer": "é" * 3000},
    ),
    "emoji straddling the cap in a query value": ("n=" + "a" + "😀" * 1500, {}),
    "emoji straddling the cap in every query value": (
        "&".join(f"{k}={quote('a' + '😀' * 1100)}" for k in QUERY_KEYS),
        {},
    ),
    "emoji straddling the cap in a header": ("d=example.com", {"User-Agent": "a" + "😀" * 1100}),
    "emoji ending exactly at the cap": (
        f"u={quote('😀' * 1025)}",
        {"Referer": "b" * 2046 + "😀" + "c"},
    ),
    "header names in any case": (
        "d=e.com",
        {"user-agent": "lower", "CLOUDFRONT-VIEWER-COUNTRY": "DE", "Sec-Gpc": "1"},
    ),
    "repeated and unknown parameters": (
        "d=a.com&d=b.com&zzz=1&Action=DeleteQueue",
        {"X-Unlisted": "ignored"},
    ),
    "plus and percent": ("n=a+b%2Bc%25d", {"User-Agent": "a+b%20c"}),
    "engagement event": (
        "d=example.com&u=https%3A%2F%2Fexample.com%2Fblog&n=engagement&e=42000&sd=87",
        {"User-Agent": CHROME_UA},
    ),
    "nasty engagement values": (
        f"n=engagement&e={quote(NASTY)}&sd={quote(NASTY)}",
        {"User-Agent": CHROME_UA},
    ),
    "engagement values off the scale": (
        "n=engagement&e=-1e309&sd=%2B150.5%00&E=1&SD=2&e%20=3",
        {},
    ),
    "repeated, empty and long engagement values": (
        f"e=1&e=&sd=50&sd={'9' * 3000}",
        {},
    ),
    "emoji straddling the cap in e and sd": (
        f"e={quote('a' + '😀' * 1100)}&sd={quote('😀' * 1100)}",
        {},
    ),
    "viewer address": (
        "d=e.com",
        {"CloudFront-Viewer-Address": "2001:db8::1:443", "CloudFront-Viewer-Latitude": "48.1"},
    ),
}


@pytest.mark.parametrize(("raw_query", "headers"), list(CASES.values()), ids=list(CASES))
def test_template_message_equals_the_collectors_field_for_field(raw_query, headers):
    args = (
        raw_query,
        headers,
        "198.51.100.9",
        1_764_150_000_123,
        "c6a1b0de-7f0e-4c1f-9a57-3f0e5e6b0001",
    )
    message = queue_message(render(*args))
    assert SQS_LEGAL.match(message) and message.isascii()
    assert json.loads(message) == build_message(*args)
    parse_message(message)  # and the consumer accepts it
    # No value ends in half an emoji: the whole message encodes to UTF-8 as it is.
    json.dumps(json.loads(message), ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        pytest.param("a" + "😀" * 1100, "a" + "😀" * 1023, id="pair straddling: cut before it"),
        pytest.param("😀" * 1100, "😀" * 1024, id="pair ending at the cap: kept"),
        pytest.param("a" * 2047 + "é" * 5, "a" * 2047 + "é", id="no pair: 2,048 units"),
    ],
)
def test_the_template_cuts_before_a_pair_the_cap_would_split(value, kept):
    raw_query = f"n={quote(value)}"
    args = (raw_query, {"User-Agent": value}, "::1", 1, "r")
    message = json.loads(queue_message(render(*args)))
    assert message["query"]["n"] == kept and message["headers"]["user-agent"] == kept


def test_a_missing_query_value_is_an_empty_string_not_a_vtl_reference():
    message = json.loads(queue_message(render("", {}, "::1", 1, "r")))
    assert set(message["query"].values()) == {""} and set(message["headers"].values()) == {""}
    assert set(message["query"]) == set(QUERY_KEYS) >= {"e", "sd"}


def test_the_template_renders_contract_version_2_with_the_engagement_keys():
    message = json.loads(queue_message(render("n=engagement&e=1500&sd=73", {}, "::1", 1, "r")))
    assert message["v"] == 2
    assert list(message["query"]) == ["d", "u", "r", "n", "p", "w", "e", "sd"]
    assert (message["query"]["e"], message["query"]["sd"]) == ("1500", "73")


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("it's", "it\\'s"),
        ('"\\/', '\\"\\\\\\/'),
        ("\n\t\x00\x1f", "\\n\\t\\u0000\\u001F"),
        ("é😀", "\\u00E9\\uD83D\\uDE00"),
    ],
)
def test_escape_javascript_follows_commons_lang(text, escaped):
    assert escape_javascript(text) == escaped


def test_url_encode_follows_java():
    assert url_encode("a b*~'é") == "a+b*%7E%27%C3%A9"
