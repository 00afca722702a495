"""The ingestion contract: request → message (pixel and event API), message validation, and
an event body's mapping into the pixel's query."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.enrich.steps import Dropped, DropReason, enrich, hits_from_message
from pipeline.errors import MalformedMessage
from pipeline.ingest.contract import (
    FORWARDED_HEADERS,
    MAX_BODY_UNITS,
    MAX_DOMAINS,
    MAX_VALUE_UNITS,
    PIXEL_GIF,
    PIXEL_HEADERS,
    QUERY_KEYS,
    build_event_message,
    build_message,
    cap_utf16,
    encode_message,
    event_queries,
    parse_message,
)

SQS_MAX_BYTES = 256 * 1024


def test_pixel_is_a_43_byte_transparent_gif_with_no_cache_headers():
    assert len(PIXEL_GIF) == 43
    assert PIXEL_GIF.startswith(b"GIF89a")
    assert PIXEL_HEADERS["Content-Type"] == "image/gif"
    assert "no-store" in PIXEL_HEADERS["Cache-Control"]
    assert PIXEL_HEADERS["Access-Control-Allow-Origin"] == "*"
    assert PIXEL_HEADERS["X-Content-Type-Options"] == "nosniff"


def test_message_has_every_key_and_reads_headers_case_insensitively():
    message = build_message(
        "d=example.com&u=https%3A%2F%2Fexample.com%2Fa&x=ignored",
        {"USER-AGENT": "UA", "CloudFront-Viewer-Country": "DE", "X-Other": "dropped"},
        "192.0.2.1",
        1_700_000_000_000,
        "req-1",
    )
    assert message == {
        "v": 2,
        "request_id": "req-1",
        "received_at": 1_700_000_000_000,
        "source_ip": "192.0.2.1",
        "query": {
            "d": "example.com",
            "u": "https://example.com/a",
            "r": "",
            "n": "",
            "p": "",
            "w": "",
            "e": "",
            "sd": "",
        },
        "headers": {
            name: {"user-agent": "UA", "cloudfront-viewer-country": "DE"}.get(name, "")
            for name in FORWARDED_HEADERS
        },
    }


def test_the_last_of_repeated_parameters_wins():
    assert build_message("d=a.com&d=b.com", {}, "", 1, "r")["query"]["d"] == "b.com"


def test_invalid_percent_encoded_utf8_becomes_replacement_characters():
    assert build_message("d=%FF%FEx", {}, "", 1, "r")["query"]["d"] == "\ufffd\ufffdx"


@pytest.mark.parametrize(
    ("text", "expected_units"),
    [
        pytest.param("a" * 5000, MAX_VALUE_UNITS, id="ascii"),
        pytest.param("é" * 5000, MAX_VALUE_UNITS, id="bmp"),
        pytest.param("😀" * 5000, MAX_VALUE_UNITS, id="astral: two units each, as in Java"),
        pytest.param("short", 5, id="short text untouched"),
    ],
)
def test_values_are_cut_to_the_documented_utf16_length(text, expected_units):
    capped = cap_utf16(text)
    assert len(capped.encode("utf-16-le", "surrogatepass")) // 2 == expected_units
    assert text.startswith(capped)


def test_worst_case_message_stays_ascii_and_under_the_sqs_limit():
    nasty = "\ufffd" * 10_000  # every character needs a six-byte \\uXXXX escape
    query = "&".join(f"{key}={nasty}" for key in QUERY_KEYS)
    body = encode_message(
        build_message(query, dict.fromkeys(FORWARDED_HEADERS, nasty), "::1", 1, "r")
    )
    assert body.isascii()
    assert len(body.encode()) < SQS_MAX_BYTES


def test_parse_message_round_trips_a_built_message():
    body = encode_message(
        build_message("d=x.com&p=%7B%7D", {"Referer": "https://x.com/"}, "::1", 5, "abc")
    )
    parsed = parse_message(body)
    assert (parsed.request_id, parsed.received_at_ms, parsed.source_ip) == ("abc", 5, "::1")
    assert parsed.query["d"] == "x.com" and parsed.query["p"] == "{}"
    assert parsed.headers["referer"] == "https://x.com/"


def _valid() -> dict:
    return json.loads(encode_message(build_message("d=x.com", {}, "::1", 5, "abc")))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("not json", id="not-json"),
        pytest.param("[1, 2]", id="not-an-object"),
        pytest.param(json.dumps({**_valid(), "v": 4}), id="unknown-version"),
        pytest.param(json.dumps({**_valid(), "v": 0}), id="version-zero"),
        pytest.param(json.dumps({**_valid(), "v": True}), id="version-is-a-bool"),
        pytest.param(json.dumps({**_valid(), "v": "2"}), id="version-is-text"),
        pytest.param(
            json.dumps({**_valid(), "query": {**_valid()["query"], "e": 1500}}),
            id="engaged-time-not-a-string",
        ),
        pytest.param(json.dumps({**_valid(), "request_id": ""}), id="empty-request-id"),
        pytest.param(
            json.dumps({**_valid(), "request_id": "a#b"}), id="request-id-with-key-separator"
        ),
        pytest.param(json.dumps({**_valid(), "received_at": "soon"}), id="time-not-a-number"),
        pytest.param(json.dumps({**_valid(), "received_at": True}), id="time-is-a-bool"),
        pytest.param(json.dumps({**_valid(), "query": "d=x"}), id="query-not-an-object"),
        pytest.param(
            json.dumps({**_valid(), "headers": {"user-agent": 5}}), id="header-not-a-string"
        ),
    ],
)
def test_off_contract_messages_are_rejected(body):
    with pytest.raises(MalformedMessage):
        parse_message(body)


# Text where astral characters (two UTF-16 units each) are common, so that the cut often falls
# on one of them; the caps range from 1 unit up past the contract's.
astral_heavy = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
        st.sampled_from("a😀é🇫🇷"),
        st.characters(codec="utf-8"),  # any but surrogates: a Python str holds pairs whole
    ),
    max_size=1200,
)


@settings(max_examples=300, deadline=None)
@given(astral_heavy, st.integers(min_value=1, max_value=MAX_VALUE_UNITS))
def test_the_cap_never_splits_a_surrogate_pair(text, units):
    capped = cap_utf16(text, units)
    length = len(capped.encode("utf-16-le", "surrogatepass")) // 2
    assert text.startswith(capped)
    capped.encode("utf-8")  # no lone surrogate: it raises on one
    if len(text.encode("utf-16-le", "surrogatepass")) // 2 <= units:
        assert capped == text
    else:  # as long as it can be: one unit short only when the next pair does not fit
        assert length == units or (length == units - 1 and ord(text[len(capped)]) > 0xFFFF)


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(), max_size=60), st.integers(1, 40))  # lone surrogates too
def test_a_cut_never_ends_in_a_high_surrogate_even_from_text_with_lone_ones(text, units):
    capped = cap_utf16(text, units)
    assert text.startswith(capped)
    if capped != text:
        assert not capped or not "\ud800" <= capped[-1] <= "\udbff"


def test_an_emoji_straddling_the_cap_is_left_out_whole():
    assert cap_utf16("a" + "😀" * 1500) == "a" + "😀" * 1023
    assert cap_utf16("😀" * 1500) == "😀" * 1024


def test_a_body_nested_too_deeply_is_malformed_not_a_crash():
    with pytest.raises(MalformedMessage, match="nested too deeply"):
        parse_message("[" * 100_000)


def test_an_unsupported_version_is_named_without_echoing_a_string():
    body = json.dumps({**_valid(), "v": "203.0.113.9 Mozilla/5.0"})
    with pytest.raises(MalformedMessage) as raised:
        parse_message(body)
    assert str(raised.value) == "unsupported contract version of type str"


def test_engagement_parameters_travel_as_the_text_that_arrived():
    message = build_message("d=x.com&n=engagement&e=1500&sd=-5&sd=73", {}, "::1", 1, "r")
    assert message["v"] == 2
    assert (message["query"]["e"], message["query"]["sd"]) == ("1500", "73")  # last sd wins
    # Judging the values is enrichment's job: a bad one never makes the message invalid.
    odd = parse_message(encode_message(build_message("e=abc&sd=%F0%9F%98%80", {}, "", 1, "r")))
    assert (odd.query["e"], odd.query["sd"]) == ("abc", "😀")


def _version_1(**query: str) -> str:
    """A message exactly as a version-1 collector or template sent it: six query keys."""
    six = {key: query.get(key, "") for key in ("d", "u", "r", "n", "p", "w")}
    headers = dict.fromkeys(FORWARDED_HEADERS, "")
    return json.dumps(
        {"v": 1, "request_id": "old-1", "received_at": 5, "source_ip": "::1", "query": six,
         "headers": headers}
    )  # fmt: skip


def test_a_version_1_message_still_parses_and_its_missing_keys_read_empty():
    parsed = parse_message(_version_1(d="x.com", n="Signup"))
    assert set(parsed.query) == set(QUERY_KEYS) == {"d", "u", "r", "n", "p", "w", "e", "sd"}
    assert (parsed.query["d"], parsed.query["n"]) == ("x.com", "Signup")
    assert (parsed.query["e"], parsed.query["sd"]) == ("", "")


def test_a_version_2_message_round_trips_its_engagement_values():
    body = encode_message(build_message("d=x.com&n=engagement&e=42000&sd=88", {}, "::1", 5, "a"))
    assert json.loads(body)["v"] == 2
    parsed = parse_message(body)
    assert (parsed.query["n"], parsed.query["e"], parsed.query["sd"]) == (
        "engagement",
        "42000",
        "88",
    )


def test_the_documented_size_bound_holds_for_every_value_at_its_cap():
    # 8 query values + 11 headers, each 2,048 units of six-byte escapes: 233,472 bytes.
    values = len(QUERY_KEYS) + len(FORWARDED_HEADERS)
    assert values == 19 and values * MAX_VALUE_UNITS * 6 == 233_472 < SQS_MAX_BYTES
    nasty = "\x00" * 5000  # JSON-escaped as \u0000: six bytes each
    body = encode_message(
        build_message(
            "&".join(f"{key}=%00{'%00' * 5000}" for key in QUERY_KEYS),
            dict.fromkeys(FORWARDED_HEADERS, nasty),
            "::1",
            1,
            "r",
        )
    )
    assert 233_472 < len(body.encode()) < 233_472 + 1024 < SQS_MAX_BYTES


# ---- version 3: the event API's body ---------------------------------------------------------


def _event(body: str, request_id: str = "req-1") -> str:
    return encode_message(
        build_event_message(body, {"User-Agent": "UA"}, "192.0.2.1", 1, request_id)
    )


def test_an_event_message_is_version_3_with_the_body_as_text_and_empty_query_values():
    body = '{"n":"pageview","u":"https://example.com/é"}'
    message = json.loads(_event(body))
    assert message["v"] == 3 and message["body"] == body
    assert message["query"] == dict.fromkeys(QUERY_KEYS, "")
    assert _event(body).isascii()
    assert parse_message(_event(body)).body == body


def test_a_pixel_message_stays_version_2_and_reads_an_empty_body():
    message = build_message("d=example.com", {}, "192.0.2.1", 1, "req-1")
    assert message["v"] == 2 and "body" not in message
    assert parse_message(encode_message(message)).body == ""


@pytest.mark.parametrize("body", [5, ["x"], {"n": "x"}, True])
def test_a_body_that_is_not_a_string_is_malformed(body):
    with pytest.raises(MalformedMessage, match="body is not a string"):
        parse_message(json.dumps({**json.loads(_event("{}")), "body": body}))


def test_the_event_message_bound_holds_with_every_value_at_its_cap():
    headers = dict.fromkeys(FORWARDED_HEADERS, "\x01" * 3000)
    message = _event("\x02" * (MAX_BODY_UNITS + 100))
    worst = encode_message(build_event_message("\x02" * 99_999, headers, "f" * 45, 1, "r" * 64))
    assert len(json.loads(message)["body"]) == MAX_BODY_UNITS
    assert 230_000 < len(worst.encode()) < SQS_MAX_BYTES


def test_an_event_body_maps_to_the_pixels_query():
    body = {
        "n": "Signup",
        "u": "https://example.com/a?b=1#section",
        "d": "example.com",
        "r": "https://ref.example/",
        "p": {"plan": "pro", "n": 1, "ok": True, "list": [1], "map": {}, "blank": "", " ": "k"},
        "w": 1280,
        "v": 36,
        "i": False,
    }
    assert event_queries(json.dumps(body)) == [
        {
            "d": "example.com",
            "u": "https://example.com/a?b=1",  # no hash mode: the fragment is not the page
            "r": "https://ref.example/",
            "n": "Signup",
            "p": '{"plan":"pro","n":1,"ok":true}',
            "w": "1280",
            "e": "",
            "sd": "",
        }
    ]


def test_engagement_values_hash_mode_and_long_names():
    body = {
        "name": "engagement",
        "url": "https://example.com/#/x",
        "hashMode": 1,
        "e": 1500,
        "sd": "73",
    }
    (query,) = event_queries(json.dumps(body))
    assert (query["n"], query["u"], query["e"], query["sd"]) == (
        "engagement",
        "https://example.com/#/x",
        "1500",
        "73",
    )
    assert query["d"] == "example.com"  # no `d`: the page's host


@pytest.mark.parametrize(
    ("domains", "expected"),
    [
        ("a.com,b.com", ["a.com", "b.com"]),
        (" www.a.com , b.com,a.com", ["a.com", "b.com"]),
        (",".join(f"s{n}.com" for n in range(50)), [f"s{n}.com" for n in range(MAX_DOMAINS)]),
    ],
)
def test_a_comma_separated_domain_gives_one_query_per_site(domains, expected):
    body = json.dumps({"n": "pageview", "u": "https://a.com/", "d": domains})
    assert [q["d"] for q in event_queries(body)] == expected


@pytest.mark.parametrize(
    "body",
    [
        "",
        "{",
        "[]",
        "null",
        '{"n": "x", "u": "https://a.com/", "w": NaN}',
        "[" * 10_000,
        '{"u": "https://a.com/"}',
        '{"n": "x"}',
        '{"n": "", "u": "https://a.com/"}',
        '{"n": ["x"], "u": "https://a.com/"}',
        '{"n": true, "u": "https://a.com/"}',
        '{"n": "x", "u": 5}',
    ],
)
def test_a_body_that_is_no_event_maps_to_none(body):
    assert event_queries(body) is None


def test_hits_of_a_fanned_out_body_have_distinct_stable_ids_and_a_bad_body_is_one_drop():
    body = json.dumps({"n": "pageview", "u": "https://a.com/", "d": "a.com,b.com,c.com"})
    message = parse_message(_event(body, request_id="c6a1b0de-7f0e-4c1f-9a57-3f0e5e6b0001"))
    hits = hits_from_message(message)
    assert [h.site for h in hits] == ["a.com", "b.com", "c.com"]
    ids = [h.request_id for h in hits]
    assert ids[0] == message.request_id and len(set(ids)) == 3
    assert ids == [h.request_id for h in hits_from_message(message)]  # a redelivery: the same
    assert all(h.user_agent == "UA" and not h.bad_body for h in hits)
    (bad,) = hits_from_message(parse_message(_event("not json")))
    assert bad.bad_body and bad.site == ""
    assert enrich(bad, None) == Dropped(DropReason.BAD_BODY)  # the first step: nothing else read
