"""A site's time zone in the registry (issue 13): stored, listed, validated, UTC by default,
and a change of zone has the site's rolled-up days recomputed in the new one."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pipeline import aws
from pipeline.enrich.sites import (
    SiteRegistry,
    check_timezone,
    list_sites,
    main,
    new_site,
    register_site,
    site_from_item,
)
from pipeline.errors import InvalidSite
from pipeline.store.compactor import compact
from pipeline.store.query import load_rollups
from pipeline.store.storage import dirty_days


def test_the_command_line_stores_and_lists_the_time_zone(settings, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_SITES_TABLE", settings.sites_table)
    assert main(["add", "berlin.example", "--timezone", "Europe/Berlin"]) == 0
    assert "days in Europe/Berlin" in capsys.readouterr().out
    assert main(["list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert "berlin.example\tberlin.example, *.berlin.example\t\tEurope/Berlin" in listed
    registry = SiteRegistry(aws.client("dynamodb", settings), settings.sites_table)
    assert registry.lookup({"berlin.example"})["berlin.example"].timezone == "Europe/Berlin"
    assert main(["add", "plain.example"]) == 0
    assert {s.domain: s.timezone for s in list_sites(settings)}["plain.example"] == "UTC"


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "CEST", "../../etc/passwd", "/etc/localtime", "", "x" * 300]
)
def test_a_zone_that_is_not_an_iana_name_is_refused_in_one_sentence(zone):
    with pytest.raises(InvalidSite) as refused:
        new_site("example.org", timezone=zone)
    message = str(refused.value)
    assert "IANA time zone" in message and message.count(". ") == 0 and len(message) < 160


def test_the_command_refuses_a_bad_zone_with_exit_code_2_and_no_traceback(settings):
    env = {"PIPELINE_SITES_TABLE": settings.sites_table, "AWS_DEFAULT_REGION": "us-east-1"}
    # No backend is needed: the zone is checked before anything is written.
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.sites", "add", "example.org", "--timezone", "Berlin"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: 'Berlin' is not an IANA time zone name like Europe/Berlin or UTC"
    ]
    assert "Traceback" not in result.stderr + result.stdout


def test_check_timezone_keeps_iana_names():
    assert check_timezone(" Asia/Tokyo ") == "Asia/Tokyo"
    assert check_timezone("UTC") == "UTC"


def test_an_item_from_before_time_zones_reads_as_utc(settings):
    dynamodb = aws.client("dynamodb", settings)
    old = {"site": {"S": "old.example"}, "hostnames": {"L": [{"S": "old.example"}]}}
    dynamodb.put_item(TableName=settings.sites_table, Item=old)
    assert site_from_item(old).timezone == "UTC"
    found = SiteRegistry(dynamodb, settings.sites_table).lookup({"old.example"})
    assert found["old.example"].timezone == "UTC"


def test_changing_the_zone_recomputes_the_rollups_in_it(settings, message_factory, sqs_record):
    from pipeline.consume.consumer import Consumer

    now = datetime.now(UTC)
    two_days_ago = now - timedelta(days=2)
    body = message_factory(received_at_ms=int(two_days_ago.timestamp() * 1000))
    consumer = Consumer(settings, clock=two_days_ago.timestamp)  # its salt is still there
    assert consumer.process([sqs_record(body)]).stored == 1
    compact(settings, now=now)
    day = two_days_ago.date()
    (stored,) = load_rollups(
        "example.com", day, day, settings=settings, now=now, compute_missing=False
    )
    assert stored["tz"] == "UTC"
    dynamodb = aws.client("dynamodb", settings)
    assert dirty_days(dynamodb, settings.events_table, "example.com") == []
    register_site(settings, new_site("example.com", timezone="Asia/Tokyo"))
    marked = {d for _, d, _ in dirty_days(dynamodb, settings.events_table, "example.com")}
    assert {day - timedelta(days=1), day, day + timedelta(days=1)} <= marked
    compact(settings, now=now)
    tokyo_day = two_days_ago.astimezone(ZoneInfo("Asia/Tokyo")).date()
    records = load_rollups(
        "example.com",
        tokyo_day,
        tokyo_day,
        tz="Asia/Tokyo",
        settings=settings,
        now=now,
        compute_missing=False,
    )
    assert records[0]["tz"] == "Asia/Tokyo" and records[0]["summary"]["pageviews"] == 1
