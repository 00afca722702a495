"""Local mode counts its sites from pages on this machine (localhost, 127.0.0.1); a site
registered the production way does not, and local mode adds them to a site it loads."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from pipeline.consume.consumer import Consumer
from pipeline.enrich.sites import host_allowed, list_sites, new_site, register_site
from pipeline.local.mode import (
    LOCAL_HOSTNAMES,
    LocalMode,
    local_site,
    parse_args,
    snippet,
    with_local_hostnames,
)
from tests.conftest import CHROME_UA

SITE = "mysite.test"


@pytest.mark.parametrize(
    ("host", "local", "production"),
    [
        pytest.param("mysite.test", True, True, id="the domain"),
        pytest.param("www.mysite.test", True, True, id="a subdomain"),
        pytest.param("127.0.0.1", True, False, id="loopback"),
        pytest.param("localhost", True, False, id="localhost"),
        pytest.param("evil.test", False, False, id="another site"),
        pytest.param("127.0.0.2", False, False, id="another loopback address"),
    ],
)
def test_local_mode_counts_this_machine_besides_the_sites_own_hosts(host, local, production):
    assert host_allowed(host, local_site(SITE).hostnames) is local
    assert host_allowed(host, new_site(SITE).hostnames) is production


def test_a_loaded_site_keeps_its_settings_and_gains_the_local_hosts():
    saved = new_site(SITE, hostnames=["shop.example.net"], query_params=["page"])
    local = with_local_hostnames(saved)
    assert local.hostnames == ("shop.example.net", *LOCAL_HOSTNAMES)
    assert local.query_params == ("page",) and local.domain == SITE
    assert with_local_hostnames(local) == local  # adding twice adds nothing


def test_the_snippet_is_the_tracker_tag_that_sends_from_a_local_page():
    tag = snippet("http://127.0.0.1:8123", SITE)
    assert tag == (
        '<script defer data-local data-domain="mysite.test" '
        'src="http://127.0.0.1:8123/script.js"></script>'
    )


def _hit_from_a_local_page(message_factory, path: str) -> dict:
    page = quote(f"http://127.0.0.1:8000{path}", safe="")
    body = message_factory(
        query=f"d={SITE}&n=pageview&u={page}&w=1440",
        headers={"User-Agent": CHROME_UA},
        ip="127.0.0.1",  # the collector's TCP peer for a browser on this machine
    )
    return {"messageId": path, "body": body}


def test_a_hit_from_a_127_0_0_1_page_is_stored_in_local_mode_and_dropped_in_production(
    settings, message_factory
):
    register_site(settings, new_site(SITE))  # as `python -m pipeline.sites add` does
    production = Consumer(settings).process([_hit_from_a_local_page(message_factory, "/a")])
    assert production.stored == 0 and dict(production.dropped) == {"foreign_host": 1}

    register_site(settings, local_site(SITE))
    local = Consumer(settings).process([_hit_from_a_local_page(message_factory, "/b")])
    assert local.stored == 1 and not local.dropped


def test_local_mode_adds_the_local_hosts_to_a_site_registered_before_it(settings):
    register_site(settings, new_site(SITE, query_params=["page"]))  # e.g. a saved snapshot
    mode = LocalMode(parse_args(["--site", SITE]))
    mode.sites = [local_site(SITE)]
    counted = mode._count_this_machine(settings)
    stored = {site.domain: site for site in list_sites(settings)}[SITE]
    assert counted == [stored]
    assert stored.query_params == ("page",)
    assert set(LOCAL_HOSTNAMES) <= set(stored.hostnames)
