"""No secret a URL carries survives stripping: not in a page, a referrer or a link prop.

Property-based: any host and path, with a secret placed wherever real URLs carry one (the
query, a hash route's parameters, a `;` path parameter, a percent-encoded query), and the
whole enrichment run on a real contract message.
"""

from __future__ import annotations

import json
from datetime import date
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.enrich.sites import new_site
from pipeline.enrich.steps import Context, enrich, hit_from_message
from pipeline.enrich.urls import strip_link_url, strip_url
from pipeline.ingest.contract import build_message, encode_message, parse_message
from tests.conftest import CHROME_UA

RECEIVED = 1_764_150_000_000  # 2025-11-26T09:40:00Z
DAY = date(2025, 11, 26)

# Hosts, paths and keys in lower case, secrets in upper case: a secret found in the output
# can only have come from where it was placed.
label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
hosts = st.lists(label, min_size=1, max_size=3).map(lambda labels: ".".join([*labels, "test"]))
paths = st.lists(st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.", max_size=10), max_size=4).map(
    lambda segments: "/" + "/".join(segments)
)
keys = st.sampled_from(["token", "access_token", "jsessionid", "sig", "x-amz-signature", "k"])
secrets = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=8, max_size=24)
PLACES = {
    "query": "{path}?{key}={secret}",
    "query-after-utm": "{path}?utm_source=nl&{key}={secret}",
    "route-query": "{path}#/route?{key}={secret}",
    "route-and": "{path}#/route&{key}={secret}",
    "route-segment": "{path}#/{key}={secret}&state=x",
    "hashbang-segment": "{path}#!/route/{key}={secret}/more",
    "path-param": "{path};{key}={secret}",
    "path-param-mid": "{path};{key}={secret}/more",
    "route-param": "{path}#/route;{key}={secret}",
    "encoded-query": "{path}%3F{key}%3D{secret}",
    "encoded-route-query": "{path}#/route%3F{key}%3D{secret}",
    "encoded-fragment": "{path}%23{key}={secret}",
    "encoded-param": "{path}%3B{key}%3D{secret}",
    "anchor": "{path}#{key}={secret}",
}
places = st.sampled_from(sorted(PLACES))
schemes = st.sampled_from(["https://", "http://", "//", ""])


def secret_url(scheme: str, host: str, path: str, place: str, key: str, secret: str) -> str:
    return scheme + host + PLACES[place].format(path=path, key=key, secret=secret)


@settings(max_examples=300, deadline=None)
@given(schemes, hosts, paths, places, keys, secrets)
def test_no_secret_survives_stripping(scheme, host, path, place, key, secret):
    url = secret_url(scheme, host, path, place, key, secret)
    page = strip_url(url)
    referrer = strip_url(url, keep_route_fragment=False)
    assert page is not None and referrer is not None
    assert page.host == referrer.host == host
    for kept in (page.url, page.path, referrer.url, strip_link_url(url)):
        assert secret not in kept, (place, kept)
    # What is kept of the path itself is untouched.
    assert referrer.path.startswith(path)


@settings(max_examples=100, deadline=None)
@given(paths, places, keys, secrets, places)
def test_no_secret_reaches_a_stored_page_or_referrer(path, page_place, key, secret, ref_place):
    page = secret_url("https://", "example.com", path, page_place, key, secret)
    referrer = secret_url("https://", "news.test", path, ref_place, key, secret)
    query = f"d=example.com&n=pageview&u={quote(page, safe='')}&r={quote(referrer, safe='')}"
    body = encode_message(build_message(query, {"User-Agent": CHROME_UA}, "", RECEIVED, "req"))
    sites = {"example.com": new_site("example.com")}
    event = enrich(
        hit_from_message(parse_message(body)), Context(salts={DAY: b"s" * 32}, sites=sites)
    )
    assert event["hostname"] == "example.com" and event["referrer_source"] == "news.test"
    assert secret not in json.dumps(event, ensure_ascii=False)


@settings(max_examples=100, deadline=None)
@given(schemes, hosts, paths, places, keys, secrets)
def test_no_secret_reaches_a_stored_link_prop(scheme, host, path, place, key, secret):
    # What an old script (the whole `href`) or a hand-made hit sends for an outbound click.
    link = secret_url(scheme, host, path, place, key, secret)
    props = quote(json.dumps({"url": link, "plan": "pro"}), safe="")
    page = quote("https://example.com/", safe="")
    query = f"d=example.com&n=Outbound%20Link%3A%20Click&u={page}&p={props}"
    body = encode_message(build_message(query, {"User-Agent": CHROME_UA}, "", RECEIVED, "req"))
    sites = {"example.com": new_site("example.com")}
    event = enrich(
        hit_from_message(parse_message(body)), Context(salts={DAY: b"s" * 32}, sites=sites)
    )
    assert event["props"] == {"url": strip_link_url(link), "plan": "pro"}
    assert host in event["props"]["url"] and secret not in event["props"]["url"]
