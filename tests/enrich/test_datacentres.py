"""Data-centre ranges: parsed from each provider's format, fetched, stored, refreshed, looked up,
and applied by the consumer as their own drop reason."""

from __future__ import annotations

import ipaddress
import json
import threading
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import aws
from pipeline.enrich import datacentres
from pipeline.enrich.datacentres import (
    RangesCache,
    build_ranges,
    in_datacentre,
    main,
    parse_ranges,
    read_ranges,
    refresh_if_stale,
    update_ranges,
)
from pipeline.enrich.sites import list_sites
from pipeline.errors import PipelineError

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

# Each provider's published shape, cut down to a few entries.
AWS = {
    "syncToken": "1732700000",
    "createDate": "2026-11-27-08-13-05",
    "prefixes": [
        {
            "ip_prefix": "3.5.140.0/22",
            "region": "ap-northeast-2",
            "service": "AMAZON",
            "network_border_group": "ap-northeast-2",
        },
        {
            "ip_prefix": "3.5.140.0/22",
            "region": "ap-northeast-2",
            "service": "S3",
            "network_border_group": "ap-northeast-2",
        },
        {
            "ip_prefix": "52.94.76.0/22",
            "region": "us-west-2",
            "service": "EC2",
            "network_border_group": "us-west-2",
        },
        {
            "ip_prefix": "52.94.80.0/22",  # adjacent to the one above: merged into one range
            "region": "us-west-2",
            "service": "AMAZON",
            "network_border_group": "us-west-2",
        },
        # CloudFront is listed under AMAZON too; both entries are left out.
        {
            "ip_prefix": "13.32.0.0/15",
            "region": "GLOBAL",
            "service": "AMAZON",
            "network_border_group": "GLOBAL",
        },
        {
            "ip_prefix": "13.32.0.0/15",
            "region": "GLOBAL",
            "service": "CLOUDFRONT",
            "network_border_group": "GLOBAL",
        },
    ],
    "ipv6_prefixes": [
        {
            "ipv6_prefix": "2600:1f14::/35",
            "region": "us-west-2",
            "service": "EC2",
            "network_border_group": "us-west-2",
        },
        {
            "ipv6_prefix": "2600:9000:2000::/36",
            "region": "GLOBAL",
            "service": "CLOUDFRONT",
            "network_border_group": "GLOBAL",
        },
    ],
}
GOOGLE = {
    "syncToken": "1732700000000",
    "creationTime": "2026-11-27T00:00:00.000000",
    "prefixes": [
        {"ipv4Prefix": "34.1.208.0/20", "service": "Google Cloud", "scope": "africa-south1"},
        {"ipv6Prefix": "2600:1900:8000::/44", "service": "Google Cloud", "scope": "us-east1"},
    ],
}
ORACLE = {
    "last_updated_timestamp": "2026-11-20T21:12:44.640271",
    "regions": [
        {
            "region": "us-phoenix-1",
            "cidrs": [
                {"cidr": "129.146.0.0/21", "tags": ["OCI"]},
                {"cidr": "134.70.16.0/22", "tags": ["OBJECT_STORAGE"]},
            ],
        }
    ],
}
# DigitalOcean publishes a geofeed (RFC 8805): prefix, country, region, city, postcode.
DIGITALOCEAN = (
    "104.131.0.0/18,US,US-NY,New York,10011\n"
    "2604:a880::/32,US,US-NY,New York,10011\n"
    "# a comment\n"
    "not-a-network,US,,,\n"
)


def write_sources(folder: Path) -> dict[str, Path]:
    files = {
        "aws": ("ip-ranges.json", json.dumps(AWS)),
        "google": ("cloud.json", json.dumps(GOOGLE)),
        "oracle": ("public_ip_ranges.json", json.dumps(ORACLE)),
        "digitalocean": ("google.csv", DIGITALOCEAN),
    }
    paths = {}
    for name, (filename, text) in files.items():
        paths[name] = folder / filename
        paths[name].write_text(text)
    return paths


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    return write_sources(tmp_path)


@pytest.fixture
def ranges_server(sources: dict[str, Path]):
    """The sample files served over HTTP on loopback, as the providers serve theirs."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(sources["aws"].parent))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    try:
        thread.start()
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def networks(*cidrs: str) -> set:
    return {ipaddress.ip_network(c) for c in cidrs}


def test_each_providers_format_is_parsed():
    assert set(parse_ranges(json.dumps(AWS))) == networks(
        "3.5.140.0/22", "52.94.76.0/22", "52.94.80.0/22", "2600:1f14::/35"
    )
    assert set(parse_ranges(json.dumps(GOOGLE))) == networks("34.1.208.0/20", "2600:1900:8000::/44")
    assert set(parse_ranges(json.dumps(ORACLE))) == networks("129.146.0.0/21", "134.70.16.0/22")
    assert set(parse_ranges(DIGITALOCEAN)) == networks("104.131.0.0/18", "2604:a880::/32")
    assert set(parse_ranges("# plain list\n198.51.100.0/24\n\n2001:db8::/48\n")) == networks(
        "198.51.100.0/24", "2001:db8::/48"
    )


@pytest.mark.parametrize(
    "text", ["", "{", '{"prefixes": 3}', '{"something": "else"}', "[1, 2]", "<html>moved</html>"]
)
def test_anything_else_holds_no_ranges(text):
    assert parse_ranges(text) == []


@pytest.mark.parametrize(
    ("ip", "inside"),
    [
        ("52.94.76.0", True),  # first address
        ("52.94.83.255", True),  # last address of the merged 52.94.76.0/22 + 52.94.80.0/22
        ("52.94.75.255", False),
        ("52.94.84.0", False),
        ("3.5.141.7", True),
        ("13.32.0.1", False),  # CloudFront: proxies, not their own traffic
        ("2600:1f14::1", True),
        ("2600:1f14:1fff:ffff:ffff:ffff:ffff:ffff", True),
        ("2600:1f14:2000::", False),
        ("::ffff:52.94.77.1", True),  # an IPv4-mapped IPv6 address is its IPv4 host
        ("203.0.113.7", False),
        ("", False),
        ("not an ip", False),
        ("52.94.76.0/24", False),
        ("999.1.1.1", False),
    ],
)
def test_lookup(ip, inside):
    ranges = build_ranges(parse_ranges(json.dumps(AWS)))
    assert in_datacentre(ip, ranges) is inside


def test_overlapping_and_adjacent_networks_are_merged():
    ranges = build_ranges(
        networks("10.0.0.0/24", "10.0.1.0/24", "10.0.0.128/25", "10.0.3.0/24", "2001:db8::/32")
    )
    assert ranges.v4 == ((0x0A000000, 0x0A000300), (0x0A0001FF, 0x0A0003FF))
    assert ranges.count == 3


ipv4_networks = st.builds(
    lambda value, prefix: ipaddress.IPv4Network((value, prefix), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(4, 32),
)
ipv6_networks = st.builds(
    lambda value, prefix: ipaddress.IPv6Network((value, prefix), strict=False),
    st.integers(0, 2**128 - 1),
    st.integers(8, 128),
)


@given(st.lists(st.one_of(ipv4_networks, ipv6_networks), max_size=40), st.data())
def test_lookup_agrees_with_ipaddress(nets, data):
    ranges = build_ranges(nets)
    # Random addresses, and each network's edges and their neighbours.
    probes = data.draw(st.lists(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), max_size=20))
    for net in nets:
        first, last = int(net.network_address), int(net.broadcast_address)
        kind = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
        probes += [
            kind(v) for v in (first - 1, first, last, last + 1) if 0 <= v < 2**net.max_prefixlen
        ]
    for address in probes:
        # An IPv4-mapped IPv6 address (::ffff:192.0.2.1) is looked up as its IPv4 host.
        host = getattr(address, "ipv4_mapped", None) or address
        expected = any(host in net for net in nets if net.version == host.version)
        assert in_datacentre(str(address), ranges) is expected, address


def test_ranges_are_fetched_from_files_and_kept_beside_the_sites(settings, sources):
    stored = update_ranges(settings, [str(p) for p in sources.values()], now=NOW)
    assert read_ranges(aws.client("dynamodb", settings), settings.sites_table) == stored
    for ip in ("3.5.140.1", "34.1.208.9", "129.146.7.255", "104.131.63.1", "2604:a880::5"):
        assert in_datacentre(ip, stored), ip
    assert not in_datacentre("203.0.113.7", stored)
    assert stored.updated_at_ms == int(NOW.timestamp() * 1000)
    # It shares the sites' table, but it is not a site.
    assert [site.domain for site in list_sites(settings)] == ["example.com", "site.test"]


def test_ranges_are_fetched_over_http(settings, ranges_server):
    urls = [f"{ranges_server}/ip-ranges.json", f"{ranges_server}/google.csv"]
    stored = update_ranges(settings, urls, now=NOW)
    assert stored.source == " ".join(urls)
    assert in_datacentre("52.94.80.1", stored) and in_datacentre("104.131.0.1", stored)
    assert not in_datacentre("34.1.208.9", stored)  # Google's file was not asked for


def test_a_failed_empty_or_oversized_source_keeps_the_ranges_in_force(
    settings, sources, tmp_path, ranges_server
):
    good = [str(sources["aws"])]
    before = update_ranges(settings, good, now=NOW)
    with pytest.raises(PipelineError, match="could not fetch data-centre ranges"):
        update_ranges(settings, [*good, "http://127.0.0.1:9/ip-ranges.json"])
    with pytest.raises(PipelineError, match="could not fetch"):
        update_ranges(settings, [*good, f"{ranges_server}/missing.json"])  # 404
    with pytest.raises(PipelineError, match="could not fetch"):
        update_ranges(settings, [*good, str(tmp_path / "missing.json")])
    with pytest.raises(PipelineError, match="could not fetch"):
        update_ranges(settings, [*good, str(tmp_path)])  # a folder is not readable as a file
    moved = tmp_path / "moved.html"
    moved.write_text("<html>This page has moved</html>")
    with pytest.raises(PipelineError, match="holds no address ranges"):
        update_ranges(settings, [*good, str(moved)])
    huge = tmp_path / "huge.csv"
    line = b"198.51.100.0/24,US,,,\n"
    huge.write_bytes(line * (datacentres.MAX_SOURCE_BYTES // len(line) + 1))
    with pytest.raises(PipelineError, match="not a list of ranges"):
        update_ranges(settings, [*good, str(huge)])
    with pytest.raises(PipelineError, match="no data-centre range source"):
        update_ranges(settings, [])
    assert read_ranges(aws.client("dynamodb", settings), settings.sites_table) == before


def test_the_ranges_are_refreshed_once_they_are_a_day_old(settings, sources):
    aws_file = (str(sources["aws"]),)
    assert refresh_if_stale(settings, aws_file, now=NOW) is not None  # nothing stored yet
    assert refresh_if_stale(settings, aws_file, now=NOW + timedelta(hours=23)) is None
    refreshed = refresh_if_stale(settings, aws_file, now=NOW + timedelta(hours=24))
    assert refreshed is not None and refreshed.updated_at_ms == int(
        (NOW + timedelta(hours=24)).timestamp() * 1000
    )
    assert refresh_if_stale(settings, (), now=NOW + timedelta(days=9)) is None


def test_the_consumer_rereads_the_ranges_after_its_cache_time(settings, sources):
    now = [0.0]
    cache = RangesCache(
        aws.client("dynamodb", settings),
        settings.sites_table,
        cache_seconds=300,
        clock=lambda: now[0],
    )
    assert cache.ranges().count == 0
    update_ranges(settings, [str(sources["aws"])])
    now[0] = 299.0
    assert not in_datacentre("52.94.76.1", cache.ranges())
    now[0] = 300.0
    assert in_datacentre("52.94.76.1", cache.ranges())


def test_the_command_line_updates_and_shows_the_ranges(settings, sources, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_SITES_TABLE", settings.sites_table)
    assert main(["show"]) == 0
    assert "No data-centre ranges stored" in capsys.readouterr().out
    args = ["update", "--source", str(sources["aws"]), "--source", str(sources["google"])]
    assert main(args) == 0
    # AWS: 3.5.140.0/22 and the merged 52.94.76.0-52.94.83.255; Google: one of each.
    assert "3 IPv4 and 2 IPv6 ranges from " in capsys.readouterr().out
    assert main(["show"]) == 0
    assert f"{sources['aws']} {sources['google']}, updated " in capsys.readouterr().out
    assert main(["update", "--source", str(sources["aws"].parent / "missing.json")]) == 2
    assert "error:" in capsys.readouterr().err


def test_the_compactor_refreshes_the_ranges_and_survives_a_failure(settings, sources, caplog):
    from pipeline.store.compactor import refresh_datacentre_ranges

    assert refresh_datacentre_ranges(settings, (str(sources["aws"]),)) is True
    assert refresh_datacentre_ranges(settings, (str(sources["aws"]),)) is False  # fresh
    assert refresh_datacentre_ranges(settings, ()) is False  # no source: nothing fetched
    read = read_ranges(aws.client("dynamodb", settings), settings.sites_table)
    assert in_datacentre("52.94.76.1", read)
    missing = (str(sources["aws"].parent / "gone.json"),)
    aws.client("dynamodb", settings).delete_item(
        TableName=settings.sites_table, Key={"site": {"S": datacentres.LIST_KEY}}
    )
    assert refresh_datacentre_ranges(settings, missing) is False
    assert "data-centre ranges not refreshed" in caplog.text


# The drop step itself lives in pipeline/enrich/steps.py and pipeline/consume/consumer.py (issue 11, item 9):
# `DropReason.DATACENTRE`, its explanation, `drop_datacentres` after `drop_bots`, and
# `Context.datacentre_ranges` filled by the consumer from a `RangesCache`.
def test_hits_from_data_centres_are_dropped_with_their_own_reason(
    settings, sources, message_factory, sqs_record
):
    from pipeline.consume.consumer import Consumer
    from pipeline.enrich.steps import (
        DROP_EXPLANATIONS,
        STEPS,
        DropReason,
        drop_bots,
        drop_datacentres,
    )

    assert (
        DropReason.DATACENTRE.value == "datacentre" and DropReason.DATACENTRE in DROP_EXPLANATIONS
    )
    assert STEPS.index(drop_datacentres) == STEPS.index(drop_bots) + 1
    update_ranges(settings, [str(p) for p in sources.values()])
    records = [
        sqs_record(message_factory(ip="52.94.76.10")),  # AWS EC2
        sqs_record(message_factory(ip="104.131.0.20")),  # DigitalOcean
        sqs_record(
            message_factory(  # Google Cloud, IPv6, as CloudFront reports the viewer
                headers={
                    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                    "CloudFront-Viewer-Address": "[2600:1900:8000::7]:443",
                },
                ip="130.176.1.1",
            )
        ),
        sqs_record(message_factory(ip="13.32.0.1")),  # a CloudFront address: kept
        sqs_record(message_factory(ip="203.0.113.7")),  # a home connection
        sqs_record(message_factory(ip="2001:db8::1")),
    ]
    outcome = Consumer(settings).process(records)
    assert (outcome.stored, dict(outcome.dropped)) == (3, {"datacentre": 3})
