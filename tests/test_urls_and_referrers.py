"""URL stripping, UTM extraction and referrer sources: table-driven."""

from __future__ import annotations

import pytest

from pipeline.referrers import DIRECT, source_for_host, source_for_utm
from pipeline.urls import strip_url


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
