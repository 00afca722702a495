"""The referrer-spam blocklist: fetched, stored, refreshed, and applied by the consumer."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from pipeline import aws
from pipeline.consume.consumer import Consumer
from pipeline.enrich.sites import list_sites
from pipeline.enrich.spam import (
    BlocklistCache,
    is_spam,
    main,
    parse_list,
    read_blocklist,
    refresh_if_stale,
    update_blocklist,
)
from pipeline.errors import PipelineError

# Matomo's spammers.txt format: one domain per line.
LIST = "darodar.example\nBest-SEO-offer.example\n\n# a comment\nnot a domain\nsemalt.example\n"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def list_file(tmp_path: Path) -> Path:
    path = tmp_path / "spammers.txt"
    path.write_text(LIST)
    return path


@pytest.fixture
def list_server(list_file: Path):
    """The list served over HTTP on loopback, as GitHub serves Matomo's."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(list_file.parent))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/{list_file.name}"
    server.shutdown()


def test_the_list_format_is_parsed_leniently():
    assert parse_list(LIST) == {"darodar.example", "best-seo-offer.example", "semalt.example"}


@pytest.mark.parametrize(
    ("host", "spam"),
    [
        ("semalt.example", True),
        ("www.semalt.example", True),
        ("a.b.semalt.example", True),
        ("notsemalt.example", False),
        ("semalt.example.org", False),
        ("example", False),
    ],
)
def test_a_host_is_spam_when_it_or_a_parent_domain_is_listed(host, spam):
    assert is_spam(host, parse_list(LIST)) is spam


def test_spam_referrers_are_dropped_and_real_ones_kept(
    settings, list_file, message_factory, sqs_record
):
    update_blocklist(settings, str(list_file))

    def hit(referrer: str) -> str:
        page = quote("https://example.com/", safe="")
        return message_factory(query=f"d=example.com&u={page}&r={quote(referrer, safe='')}")

    records = [
        sqs_record(hit("https://www.semalt.example/seo?site=example.com")),
        sqs_record(hit("http://darodar.example/")),
        sqs_record(hit("https://www.google.com/")),
        sqs_record(hit("https://news.ycombinator.com/item?id=1")),
    ]
    outcome = Consumer(settings).process(records)
    assert (outcome.stored, dict(outcome.dropped)) == (2, {"referrer_spam": 2})


def test_the_list_is_fetched_over_http_and_kept_beside_the_sites(settings, list_server):
    stored = update_blocklist(settings, list_server, now=NOW)
    assert stored.domains == parse_list(LIST) and stored.source == list_server
    assert read_blocklist(aws.client("dynamodb", settings), settings.sites_table) == stored
    # It shares the sites' table, but it is not a site.
    assert [site.domain for site in list_sites(settings)] == ["example.com", "site.test"]


def test_a_failed_empty_or_oversized_download_keeps_the_list_in_force(
    settings, list_file, tmp_path
):
    update_blocklist(settings, str(list_file), now=NOW)
    with pytest.raises(PipelineError, match="could not fetch the referrer-spam list"):
        update_blocklist(settings, "http://127.0.0.1:9/spammers.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# nothing\n")
    with pytest.raises(PipelineError, match="holds no domains"):
        update_blocklist(settings, str(empty))
    huge = tmp_path / "huge.txt"
    huge.write_text("semalt.example\n" * 200_000)  # 3 MB: a cut-off line could block a real site
    with pytest.raises(PipelineError, match="not a referrer-spam list"):
        update_blocklist(settings, str(huge))
    with pytest.raises(PipelineError, match="could not fetch"):
        update_blocklist(settings, str(tmp_path / "missing.txt"))
    stored = read_blocklist(aws.client("dynamodb", settings), settings.sites_table)
    assert stored.domains == parse_list(LIST)


def test_the_list_is_refreshed_once_it_is_a_day_old(settings, list_file):
    with_source = settings.with_overrides(spam_list_url=str(list_file))
    assert refresh_if_stale(with_source, now=NOW) is not None  # nothing stored yet
    assert refresh_if_stale(with_source, now=NOW + timedelta(hours=23)) is None
    refreshed = refresh_if_stale(with_source, now=NOW + timedelta(hours=24))
    assert refreshed is not None and refreshed.updated_at_ms == int(
        (NOW + timedelta(hours=24)).timestamp() * 1000
    )
    assert (
        refresh_if_stale(settings.with_overrides(spam_list_url=""), now=NOW + timedelta(days=9))
        is None
    )


def test_the_consumer_rereads_the_list_after_its_cache_time(settings, list_file):
    now = [0.0]
    cache = BlocklistCache(
        aws.client("dynamodb", settings),
        settings.sites_table,
        cache_seconds=300,
        clock=lambda: now[0],
    )
    assert cache.domains() == frozenset()
    update_blocklist(settings, str(list_file))
    now[0] = 299.0
    assert cache.domains() == frozenset()
    now[0] = 300.0
    assert "semalt.example" in cache.domains()


def test_the_command_line_updates_and_shows_the_list(settings, list_file, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_SITES_TABLE", settings.sites_table)
    assert main(["show"]) == 0
    assert "No referrer-spam list stored" in capsys.readouterr().out
    assert main(["update", "--source", str(list_file)]) == 0
    assert f"3 domains from {list_file}, updated " in capsys.readouterr().out
    assert main(["show"]) == 0
    assert f"3 domains from {list_file}" in capsys.readouterr().out
    assert main(["update", "--source", str(list_file.parent / "missing.txt")]) == 2
    assert "error:" in capsys.readouterr().err


def test_the_compactor_survives_a_failed_refresh(settings, tmp_path, caplog):
    from pipeline.store.compactor import refresh_spam_list

    missing = settings.with_overrides(spam_list_url=str(tmp_path / "gone.txt"))
    assert refresh_spam_list(missing) is False
    assert "referrer-spam list not refreshed" in caplog.text
    assert refresh_spam_list(settings.with_overrides(spam_list_url="")) is False
