"""The site registry: only registered sites are counted, and only from their own hostnames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from pipeline import aws, load_drops, load_events
from pipeline.consume.consumer import Consumer
from pipeline.enrich.sites import (
    SiteRegistry,
    host_allowed,
    list_sites,
    main,
    new_site,
    register_site,
    remove_site,
    site_item,
)
from pipeline.errors import InvalidSite
from tests.conftest import CHROME_UA


def page_hit(message_factory, site: str, page: str, **kwargs) -> str:
    return message_factory(query=f"d={quote(site)}&u={quote(page, safe='')}", **kwargs)


def today_drops(settings, site: str) -> dict[str, int]:
    today = datetime.now(UTC).date()
    return load_drops(site, today, today + timedelta(days=1), settings=settings).to_dict()


def today_paths(settings, site: str) -> list[str]:
    now = datetime.now(UTC)
    frame = load_events(site, now - timedelta(hours=1), now + timedelta(hours=1), settings=settings)
    return sorted(
        f"{host}{path}" for host, path in zip(frame["hostname"], frame["path"], strict=True)
    )


@pytest.mark.parametrize(
    ("host", "patterns", "allowed"),
    [
        ("example.com", ("example.com",), True),
        ("www.example.com", ("example.com",), False),
        ("www.example.com", ("*.example.com",), True),
        ("a.b.example.com", ("*.example.com",), True),
        ("example.com", ("*.example.com",), False),  # a wildcard is for subdomains only
        ("badexample.com", ("*.example.com",), False),  # a suffix is not a subdomain
        ("example.com.evil.net", ("example.com", "*.example.com"), False),
        ("shop.example.net", ("example.com", "shop.example.net"), True),
    ],
)
def test_host_matching(host, patterns, allowed):
    assert host_allowed(host, patterns) is allowed


def test_a_new_site_is_normalised_and_defaults_to_its_domain_and_subdomains():
    site = new_site(" Example.COM. ")
    assert (site.domain, site.hostnames) == ("example.com", ("example.com", "*.example.com"))
    assert new_site("example.com", ["Shop.Example.net", "shop.example.net"]).hostnames == (
        "shop.example.net",
    )


@pytest.mark.parametrize(
    ("domain", "hostnames", "query_params"),
    [
        ("https://example.com/", (), ()),
        ("exa mple.com", (), ()),
        ("-bad.example", (), ()),
        ("", (), ()),
        ("example.com", ("*",), ()),
        ("example.com", ("shop.*.com",), ()),
        ("example.com", (), ("utm_source",)),
        ("example.com", (), ("a b",)),
        ("example.com", (), ("",)),
    ],
)
def test_invalid_sites_are_refused_with_a_reason(domain, hostnames, query_params):
    with pytest.raises(InvalidSite, match="is not a"):
        new_site(domain, hostnames, query_params)


def test_only_registered_sites_are_counted(settings, message_factory, sqs_record):
    outcome = Consumer(settings).process(
        [
            sqs_record(page_hit(message_factory, "example.com", "https://example.com/a")),
            sqs_record(page_hit(message_factory, "not-ours.example", "https://not-ours.example/")),
        ]
    )
    assert (outcome.stored, dict(outcome.dropped), outcome.failures) == (
        1,
        {"unknown_site": 1},
        [],
    )
    assert today_paths(settings, "not-ours.example") == []
    assert today_drops(settings, "not-ours.example") == {"unknown_site": 1}


def test_a_page_from_another_host_cannot_count_for_a_site(settings, message_factory, sqs_record):
    pages = [
        "https://example.com/home",
        "https://www.example.com/www",
        "https://blog.example.com/post",
        "https://evil.example.net/spoof",
        "https://example.com.evil.net/spoof",
        "https://badexample.com/spoof",
    ]
    records = [sqs_record(page_hit(message_factory, "example.com", page)) for page in pages]
    outcome = Consumer(settings).process(records)
    assert dict(outcome.dropped) == {"foreign_host": 3}
    assert today_paths(settings, "example.com") == [
        "blog.example.com/post",
        "example.com/home",
        "www.example.com/www",
    ]
    assert today_drops(settings, "example.com") == {"foreign_host": 3}


def test_a_plain_pixel_is_checked_against_its_referer(settings, message_factory, sqs_record):
    # No `u`: the embedding page is the Referer header, which a spoofer controls just as well.
    spoofed = message_factory(
        query="d=example.com", headers={"User-Agent": CHROME_UA, "Referer": "https://x.net/"}
    )
    outcome = Consumer(settings).process([sqs_record(spoofed)])
    assert dict(outcome.dropped) == {"foreign_host": 1}


def test_a_site_keeps_the_query_parameters_it_chose_and_no_others(
    settings, message_factory, sqs_record
):
    register_site(settings, new_site("example.com", query_params=["page", "q"]))
    page = "https://example.com/blog?page=2&q=shoes&email=a%40b.example&utm_source=nl&token=x"
    Consumer(settings).process([sqs_record(page_hit(message_factory, "example.com", page))])
    now = datetime.now(UTC)
    (url,) = load_events(
        "example.com", now - timedelta(hours=1), now + timedelta(hours=1), settings=settings
    )["url"]
    assert url == "example.com/blog?utm_source=nl&page=2&q=shoes"
    # Another site keeps nothing but utm_*.
    plain = page_hit(message_factory, "site.test", page.replace("example.com", "site.test"))
    Consumer(settings).process([sqs_record(plain)])
    (url,) = load_events(
        "site.test", now - timedelta(hours=1), now + timedelta(hours=1), settings=settings
    )["url"]
    assert url == "site.test/blog?utm_source=nl"


def test_a_site_can_be_limited_to_other_hostnames(settings, message_factory, sqs_record):
    register_site(settings, new_site("example.com", ["shop.example.net"]))
    records = [
        sqs_record(page_hit(message_factory, "example.com", "https://shop.example.net/cart")),
        sqs_record(page_hit(message_factory, "example.com", "https://example.com/")),
    ]
    outcome = Consumer(settings).process(records)
    assert (outcome.stored, dict(outcome.dropped)) == (1, {"foreign_host": 1})
    assert today_paths(settings, "example.com") == ["shop.example.net/cart"]


def test_the_registry_is_cached_and_sees_a_new_site_after_its_cache_time(settings):
    now = [0.0]
    registry = SiteRegistry(
        aws.client("dynamodb", settings),
        settings.sites_table,
        cache_seconds=60,
        clock=lambda: now[0],
    )
    assert registry.lookup({"new.example", "example.com"})["new.example"] is None
    register_site(settings, new_site("new.example"))
    now[0] = 59.0
    assert registry.lookup({"new.example"})["new.example"] is None  # the cached answer
    now[0] = 60.0
    assert registry.lookup({"new.example"})["new.example"] == new_site("new.example")


def test_made_up_site_names_cannot_grow_the_registry_cache_without_end(settings, monkeypatch):
    monkeypatch.setattr("pipeline.enrich.sites.MAX_CACHED", 50)
    registry = SiteRegistry(aws.client("dynamodb", settings), settings.sites_table)
    for batch in range(5):
        registry.lookup({f"junk{batch}-{n}.example" for n in range(40)} | {"example.com"})
        assert len(registry._cache) <= 50 + 41
    assert registry.lookup({"example.com"})["example.com"] == new_site("example.com")


def test_the_registry_reads_more_sites_than_one_batch_get_takes(settings):
    dynamodb = aws.client("dynamodb", settings)
    for n in range(130):
        dynamodb.put_item(TableName=settings.sites_table, Item=site_item(new_site(f"s{n}.example")))
    registry = SiteRegistry(dynamodb, settings.sites_table)
    found = registry.lookup({f"s{n}.example" for n in range(150)})
    assert sum(site is not None for site in found.values()) == 130


def test_an_unreadable_registry_sends_the_batch_back_for_redelivery(
    settings, message_factory, sqs_record
):
    missing = settings.with_overrides(sites_table="no-such-table")
    records = [sqs_record(message_factory(), message_id=f"m{i}") for i in range(3)]
    outcome = Consumer(missing).process(records)
    assert sorted(outcome.failures) == ["m0", "m1", "m2"]
    assert (outcome.stored, sum(outcome.dropped.values())) == (0, 0)
    assert today_drops(settings, "example.com") == {}


def test_the_command_line_adds_lists_and_removes_sites(settings, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_SITES_TABLE", settings.sites_table)
    assert (
        main(["add", "Shop.Example.org", "--hostname", "*.example.org", "--keep-query", "q"]) == 0
    )
    assert "shop.example.org: counted from *.example.org; keeps ?q" in capsys.readouterr().out
    assert main(["list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert "shop.example.org\t*.example.org\tq\tUTC" in listed
    assert [s.domain for s in list_sites(settings)] == [
        "example.com",
        "shop.example.org",
        "site.test",
    ]
    assert main(["remove", "shop.example.org"]) == 0
    assert main(["remove", "shop.example.org"]) == 1
    assert "was not registered" in capsys.readouterr().err
    assert main(["add", "not a domain"]) == 2
    assert "error: 'not a domain' is not a domain name" in capsys.readouterr().err
    assert not remove_site(settings, "never.example")
