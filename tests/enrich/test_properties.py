"""Hostile input, property-based: for arbitrary query strings, headers and bytes the pixel
contract and the enrichment never raise, every stored field keeps its cap and type, and the
API Gateway template agrees with the collector."""

from __future__ import annotations

import json
import re
from datetime import date
from urllib.parse import parse_qs, quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.enrich.sites import Site
from pipeline.enrich.steps import Context, Dropped, enrich, hit_from_message
from pipeline.enrich.urls import strip_url
from pipeline.ingest.contract import (
    FORWARDED_HEADERS,
    QUERY_KEYS,
    build_message,
    encode_message,
    parse_message,
)
from pipeline.store.storage import event_item
from tests.apigateway_vtl import render

SQS_MAX_BYTES = 256 * 1024
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
texts = st.text(max_size=300)
raw_queries = st.one_of(
    st.text(max_size=500),
    st.binary(max_size=300).map(lambda b: "&".join(f"{k}={quote(b)}" for k in QUERY_KEYS)),
    st.dictionaries(st.sampled_from([*QUERY_KEYS, "x", "utm_source"]), texts).map(
        lambda d: "&".join(f"{k}={quote(v)}" for k, v in d.items())
    ),
)
headers = st.dictionaries(
    st.sampled_from([*FORWARDED_HEADERS, "X-Other", "USER-AGENT"]), texts, max_size=8
)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def message(raw_query: str, header_values: dict[str, str]) -> str:
    return encode_message(
        build_message(raw_query, header_values, "198.51.100.4", 1_764_150_000_000, "req-1")
    )


@PROPERTY
@given(raw_queries, headers)
def test_the_contract_never_raises_and_stays_sqs_safe(raw_query, header_values):
    body = message(raw_query, header_values)
    assert body.isascii() and len(body.encode()) < SQS_MAX_BYTES
    parsed = parse_message(body)
    assert set(parsed.query) == set(QUERY_KEYS) and set(parsed.headers) == set(FORWARDED_HEADERS)


@PROPERTY
@given(raw_queries, headers)
def test_enrichment_never_raises_and_respects_every_cap(raw_query, header_values):
    hit = hit_from_message(parse_message(message(raw_query, header_values)))
    page = strip_url(hit.page_url)
    # Every hit's site registered for its own page host, so the caps below are really reached.
    sites = {hit.site: Site(hit.site, (page.host,))} if page else {}
    result = enrich(hit, Context(salts={date(2025, 11, 26): b"s" * 32}, sites=sites))
    if isinstance(result, Dropped):
        return
    assert len(result["site"]) <= 253 and result["site"] == result["site"].lower()
    assert result["path"].startswith("/") and len(result["path"]) <= 2000
    assert 0 < len(result["name"]) <= 120
    assert isinstance(result["props"], dict) and len(result["props"]) <= 30
    assert all(
        isinstance(k, str) and isinstance(v, str) and len(v) <= 2000
        for k, v in result["props"].items()
    )
    assert result["screen_width"] is None or 0 < result["screen_width"] <= 20000
    assert result["lat"] is None or -90 <= result["lat"] <= 90
    for name in ("site", "path", "name", "referrer", "city", "utm_source", "utm_campaign"):
        assert not CONTROL.search(result[name]), name
    item = event_item(result, 30)
    json.loads(item["e"]["S"])  # storable as UTF-8 JSON (no lone surrogates)
    assert len(json.dumps(item)) < 400_000


@PROPERTY
@given(
    st.dictionaries(st.sampled_from(QUERY_KEYS), texts),
    st.dictionaries(st.sampled_from(["User-Agent", "Referer", "CloudFront-Viewer-City"]), texts),
)
def test_template_and_collector_agree_for_arbitrary_strings(query_values, header_values):
    raw_query = "&".join(f"{k}={quote(v)}" for k, v in query_values.items())
    args = (raw_query, header_values, "198.51.100.4", 1_764_150_000_000, "req-1")
    body = parse_qs(render(*args), keep_blank_values=True)["MessageBody"][0]
    assert json.loads(body) == build_message(*args)


# Any code point, lone surrogates included: what JSON "\udXXX" escapes in a body can carry.
any_text = st.text(st.characters(), max_size=80)
deep_props = st.integers(min_value=0, max_value=3000).map(lambda n: "[" * n + "]" * n)


@PROPERTY
@given(
    st.fixed_dictionaries({key: any_text for key in QUERY_KEYS}),
    st.fixed_dictionaries({name: any_text for name in FORWARDED_HEADERS}),
    st.one_of(any_text, deep_props),
)
def test_enrichment_never_raises_on_lone_surrogates_or_deep_props(query, header_values, props):
    user_agent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0 " + header_values["user-agent"]
    body = json.dumps(
        {
            "v": 1,
            "request_id": "req-1",
            "received_at": 1_764_150_000_000,
            "source_ip": "198.51.100.4" + header_values["referer"],
            "query": {**query, "d": "example.com", "u": "https://example.com/" + query["u"],
                      "p": props},
            "headers": {**header_values, "user-agent": user_agent},
        }
    )  # fmt: skip
    hit = hit_from_message(parse_message(body))
    # The site registered for any page host, so every step runs, ua-parser's included.
    page = strip_url(hit.page_url)
    sites = {hit.site: Site(hit.site, (page.host,))} if page else {}
    result = enrich(hit, Context(salts={date(2025, 11, 26): b"s" * 32}, sites=sites))
    if not isinstance(result, Dropped):
        json.dumps(event_item(result, 30)).encode("utf-8")  # storable: no lone surrogate left


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(st.sampled_from("a😀é🇫🇷"), min_size=1400, max_size=1500),
    st.sampled_from(["", "x"]),
)
def test_template_and_collector_cut_astral_text_at_the_cap_alike(value, shift):
    value = shift + value  # either parity of the pairs against the cap
    raw_query = f"n={quote(value)}"
    args = (raw_query, {"User-Agent": value}, "198.51.100.4", 1_764_150_000_000, "req-1")
    body = parse_qs(render(*args), keep_blank_values=True)["MessageBody"][0]
    assert json.loads(body) == build_message(*args)
