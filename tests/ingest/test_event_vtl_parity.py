"""The event API's template and the local collector put the same message on the queue.

`infra/event_request.vtl` (the file the stack deploys for `POST /api/event`) is rendered by
a Velocity engine (airspeed-ext) in API Gateway's documented environment
(tests/apigateway_vtl.py), on bodies chosen to break a template: quotes, backslashes,
`</script>`, emoji, lone surrogates, control characters, a 1 MB body, Velocity's own `$`/`#`
syntax, an empty body.
"""

from __future__ import annotations

import json

import pytest

from pipeline.ingest.contract import (
    MAX_BODY_UNITS,
    QUERY_KEYS,
    build_event_message,
    event_queries,
    parse_message,
)
from tests.apigateway_vtl import render_event
from tests.conftest import CHROME_UA
from tests.ingest.test_vtl_parity import NASTY, SQS_LEGAL, queue_message

ARGS = ("198.51.100.9", 1_764_150_000_123, "c6a1b0de-7f0e-4c1f-9a57-3f0e5e6b0002")


def event(**fields) -> str:
    return json.dumps({"n": "pageview", "u": "https://example.com/", "d": "example.com", **fields})


BODIES = {
    "tracker pageview": json.dumps(
        {"n": "pageview", "v": 36, "u": "https://example.com/a?b=1", "d": "example.com", "r": None}
    ),
    "engagement": json.dumps(
        {"n": "engagement", "sd": 87, "d": "example.com", "u": "https://example.com/", "e": 4200}
    ),
    "nasty in every value": event(n=NASTY, u=NASTY, r=NASTY, p={NASTY: NASTY}),
    "nasty as raw text, not JSON": NASTY,
    "quotes and backslashes": '{"n":"\\"\\\\\'","u":"https://example.com/\\\\\\""}',
    "script end tag": event(n="</script><script>alert(1)</script>"),
    "emoji": event(n="😀" * 10, p={"😀": "👍🏽"}),
    "emoji unescaped in the raw text": '{"n":"😀","u":"https://example.com/é"}',
    "lone surrogates, escaped in the JSON": '{"n":"\\ud83d","u":"https://example.com/\\ude00"}',
    "lone surrogates in the text itself": '{"n":"\ud83d","u":"\ude00"}',
    "control characters": event(n="\x00\x01\x1f\x7f\t\n\r\x0b\x0c"),
    "raw control characters in the text": '{"n":"a\x00b\x1f","u":"\n"}',
    "velocity syntax": event(n="$input.body #set($x = 1) ${util} #foreach($a in [1])x#end ##"),
    "velocity directives as the whole body": "#set($body = 'x')$context.requestId##",
    "empty body": "",
    "1 MB body": event(p={"k": "x" * 1_000_000}),
    "emoji straddling the cap": "a" + "😀" * (MAX_BODY_UNITS // 2 + 5),
    "emoji ending exactly at the cap": "😀" * (MAX_BODY_UNITS // 2) + "b",
    "apostrophes": event(n="it's", p={"o'k": "l'été"}),
    "url-encoding characters": event(n="a+b%2Bc%25d&Action=DeleteQueue"),
}


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
def test_template_message_equals_the_collectors_field_for_field(body):
    headers = {"User-Agent": CHROME_UA, "CloudFront-Viewer-Country": "DE", "X-Other": "no"}
    message = queue_message(render_event(body, headers, *ARGS))
    assert SQS_LEGAL.match(message) and message.isascii()
    assert json.loads(message) == build_event_message(body, headers, *ARGS)
    parsed = parse_message(message)  # and the consumer accepts it
    assert parsed.body == build_event_message(body, headers, *ARGS)["body"]
    assert set(parsed.query.values()) == {""} and list(parsed.query) == list(QUERY_KEYS)
    # No value ends in half an emoji the cap made: the message encodes to UTF-8 as it is,
    # unless the body itself carried a lone surrogate.
    if "lone surrogates in the text" not in body and "\ud83d" not in body:
        json.dumps(json.loads(message), ensure_ascii=False).encode("utf-8")
    assert len(message.encode()) < 256 * 1024


def test_the_message_carries_the_body_text_and_the_consumer_maps_it():
    body = BODIES["tracker pageview"]
    message = json.loads(queue_message(render_event(body, {}, *ARGS)))
    assert message["v"] == 3 and message["body"] == body
    assert event_queries(message["body"]) == [
        {
            "d": "example.com",
            "u": "https://example.com/a?b=1",
            "r": "",
            "n": "pageview",
            "p": "",
            "w": "",
            "e": "",
            "sd": "",
        }
    ]


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        pytest.param("a" + "😀" * 9000, "a" + "😀" * 8191, id="pair straddling: cut before it"),
        pytest.param("😀" * 9000, "😀" * 8192, id="pair ending at the cap: kept"),
        pytest.param("a" * 16383 + "é" * 5, "a" * 16383 + "é", id="no pair: 16,384 units"),
    ],
)
def test_the_template_cuts_the_body_before_a_pair_the_cap_would_split(body, kept):
    message = json.loads(queue_message(render_event(body, {}, "::1", 1, "r")))
    assert message["body"] == kept
    assert event_queries(message["body"]) is None  # a cut body is no event: a counted drop


def test_the_largest_message_stays_under_sqs_limit():
    """Every header at its cap and a body of characters that escape to six bytes each."""
    headers = {
        name: "\x01" * 5000
        for name in ("User-Agent", "Referer", "CloudFront-Viewer-City", "DNT", "Sec-GPC")
    }
    headers |= {f"CloudFront-Viewer-{n}": "é" * 5000 for n in ("Country", "Latitude", "Longitude")}
    headers |= {
        "CloudFront-Viewer-Address": "é" * 5000,
        "CloudFront-Viewer-Country-Region": "é" * 5000,
        "CloudFront-Viewer-Time-Zone": "é" * 5000,
    }
    message = queue_message(render_event("\x02" * 100_000, headers, *ARGS))
    assert 230_000 < len(message.encode()) < 256 * 1024
