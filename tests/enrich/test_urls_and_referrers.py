"""URL stripping, UTM extraction and referrer sources: table-driven."""

from __future__ import annotations

import pytest

from pipeline.enrich.referrers import DIRECT, source_for_host, source_for_utm
from pipeline.enrich.urls import strip_link_props, strip_link_url, strip_url


@pytest.mark.parametrize(
    ("raw", "host", "path", "url"),
    [
        ("https://Example.com/a/b?x=1&y=2#top", "example.com", "/a/b", "example.com/a/b"),
        (
            "https://example.com/p?utm_source=hn&token=secret&utm_medium=social",
            "example.com",
            "/p",
            "example.com/p?utm_source=hn&utm_medium=social",
        ),
        ("http://example.com", "example.com", "/", "example.com/"),
        ("example.com/no-scheme?q=1", "example.com", "/no-scheme", "example.com/no-scheme"),
        ("https://example.com/%E2%9C%93?email=a@b.c", "example.com", "/✓", "example.com/✓"),
        (
            "https://example.com/app#/settings/profile",
            "example.com",
            "/app#/settings/profile",
            "example.com/app#/settings/profile",
        ),
        (
            "https://example.com/app#/reset?token=secret",
            "example.com",
            "/app#/reset",
            "example.com/app#/reset",
        ),
        ("https://user:pass@example.com:8443/x", "example.com", "/x", "example.com/x"),
        # A hash route's own parameters after `&` (an OAuth implicit flow into a router).
        (
            "https://example.com/app#/callback&access_token=secret&state=s",
            "example.com",
            "/app#/callback",
            "example.com/app#/callback",
        ),
        # ... or with the token as the route itself: cut from the `key=value` segment on.
        (
            "https://example.com/app#/access_token=secret&token_type=bearer",
            "example.com",
            "/app#/",
            "example.com/app#/",
        ),
        (
            "https://example.com/app#!/users/id_token=secret/x",
            "example.com",
            "/app#!/users",
            "example.com/app#!/users",
        ),
        # Path parameters, in the path and in a route, wherever the segment is.
        ("https://example.com/page;jsessionid=ABC", "example.com", "/page", "example.com/page"),
        ("https://example.com/a;sid=secret/b", "example.com", "/a/b", "example.com/a/b"),
        ("https://example.com/p%3Bsid%3Dsecret", "example.com", "/p", "example.com/p"),
        (
            "https://example.com/app#/orders;session=secret/42",
            "example.com",
            "/app#/orders/42",
            "example.com/app#/orders/42",
        ),
        # An encoded `?` or `#` is not decoded into a stored query or fragment.
        (
            "https://example.com/path%3Ftoken%3Dsecret?utm_source=nl",
            "example.com",
            "/path",
            "example.com/path?utm_source=nl",
        ),
        ("https://example.com/path%23token=secret", "example.com", "/path", "example.com/path"),
        (
            "https://example.com/app#/reset%3Ftoken%3Dsecret",
            "example.com",
            "/app#/reset",
            "example.com/app#/reset",
        ),
    ],
)
def test_strip_url_keeps_host_path_and_utm_only(raw, host, path, url):
    stripped = strip_url(raw)
    assert (stripped.host, stripped.path, stripped.url) == (host, path, url)


@pytest.mark.parametrize("raw", ["", "   ", "/just/a/path", "https://", "http://[::1"])
def test_strip_url_without_a_host_is_none(raw):
    assert strip_url(raw) is None


def test_path_is_capped_at_2000_characters():
    assert len(strip_url("https://example.com/" + "a" * 5000).path) == 2000


def test_utm_fields_are_extracted():
    stripped = strip_url(
        "https://e.com/?utm_source=nl&utm_medium=email&utm_campaign=nov&utm_term=t&utm_content=c&utm_x=no"
    )
    assert stripped.utm == {
        "utm_source": "nl",
        "utm_medium": "email",
        "utm_campaign": "nov",
        "utm_term": "t",
        "utm_content": "c",
    }


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ("https://news.test/story;jsessionid=ABC?id=7", "/story"),
        ("https://news.test/go%3Fnext%3D%2Faccount%26token%3Dsecret", "/go"),
        ("https://news.test/a;x=1/b%3Fk%3Dsecret", "/a/b"),
        ("https://mail.test/inbox/a%23secret", "/inbox/a"),
    ],
)
def test_referrers_are_stripped_by_the_same_rules(raw, path):
    # The enrichment strips referrers without their route (add_referrer).
    assert strip_url(raw, keep_route_fragment=False).path == path


@pytest.mark.parametrize(
    ("raw", "stripped"),
    [
        pytest.param(
            "https://bucket.s3.test/r.pdf?X-Amz-Signature=s&X-Amz-Credential=c#tok",
            "https://bucket.s3.test/r.pdf",
            id="presigned",
        ),
        pytest.param(
            "https://user:pw@Other.TEST:8443/a%20b.zip;jsessionid=s?utm_source=nl&token=s#x",
            "https://other.test:8443/a b.zip?utm_source=nl",
            id="credentials-port-utm",
        ),
        pytest.param(
            "https://other.test/reset%3Ftoken%3Ds", "https://other.test/reset", id="encoded-query"
        ),
        pytest.param(
            "http://[2001:db8::1]:8080/f.csv?k=s", "http://[2001:db8::1]:8080/f.csv", id="ipv6"
        ),
        pytest.param("//cdn.test/f.zip?sig=s", "//cdn.test/f.zip", id="scheme-relative"),
        pytest.param("/files/r.pdf;sid=s?k=s#x", "/files/r.pdf", id="relative"),
        pytest.param("mailto:a@example.com?body=s", "mailto:a@example.com", id="mailto"),
        pytest.param("https://other.test:99999/f?k=s", "https://other.test/f", id="bad-port"),
        pytest.param("https://", "", id="no-host"),
    ],
)
def test_link_urls_are_stripped_like_pages(raw, stripped):
    assert strip_link_url(raw) == stripped


def test_what_the_script_sends_is_kept_as_sent():
    sent = "http://site.test:8080/files/report.pdf?utm_campaign=nov"
    assert strip_link_url(sent) == sent


def test_only_url_props_are_stripped():
    props = {"url": "https://other.test/f?token=s", "query": "a?b=c", "plan": "pro"}
    assert strip_link_props(props) == {
        "url": "https://other.test/f",
        "query": "a?b=c",
        "plan": "pro",
    }


@pytest.mark.parametrize(
    ("host", "source"),
    [
        ("google.com", "Google"),
        ("google.co.uk", "Google"),
        ("news.google.com", "Google"),
        ("mail.google.com", "Gmail"),
        ("bing.com", "Bing"),
        ("duckduckgo.com", "DuckDuckGo"),
        ("t.co", "Twitter"),
        ("x.com", "Twitter"),
        ("l.facebook.com", "Facebook"),
        ("m.facebook.com", "Facebook"),
        ("old.reddit.com", "Reddit"),
        ("news.ycombinator.com", "Hacker News"),
        ("github.com", "GitHub"),
        ("linkedin.com", "LinkedIn"),
        ("yandex.ru", "Yandex"),
        ("some-blog.dev", "some-blog.dev"),
    ],
)
def test_referrer_sources(host, source):
    assert source_for_host(host) == source


@pytest.mark.parametrize(
    ("utm", "source"), [("hn", "Hacker News"), ("Twitter", "Twitter"), ("newsletter", "newsletter")]
)
def test_utm_sources(utm, source):
    assert source_for_utm(utm) == source


def test_direct_has_plausibles_name():
    assert DIRECT == "Direct / None"
