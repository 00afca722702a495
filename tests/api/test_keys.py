"""Stats API keys: stored only as hashes, listed by prefix, revoked, and the per-key rate count."""

from __future__ import annotations

import hashlib
import json

import pytest

from pipeline import aws
from pipeline.api import keys
from pipeline.enrich.sites import RESERVED_KEY_PREFIX, list_sites, main


def registry_items(settings) -> list[dict]:
    return aws.client("dynamodb", settings).scan(TableName=settings.sites_table)["Items"]


def test_a_new_key_is_plausible_shaped_and_only_its_hash_is_stored(settings):
    key = keys.create_key(settings, "example.com", name="CI")
    assert len(key) == 64 and set(key) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    stored = json.dumps(registry_items(settings))
    assert key not in stored and key[:20] not in stored
    assert keys.KEY_ITEM_PREFIX + hashlib.sha256(key.encode()).hexdigest() in stored
    assert keys.KEY_ITEM_PREFIX.startswith(RESERVED_KEY_PREFIX)
    # Key items are not sites.
    assert {s.domain for s in list_sites(settings)} == {"example.com", "site.test"}
    assert keys.create_key(settings, "example.com") != key


def test_site_of_key_knows_each_key_and_nothing_else(settings):
    first = keys.create_key(settings, "example.com")
    other = keys.create_key(settings, "site.test")
    assert keys.site_of_key(settings, first) == "example.com"
    assert keys.site_of_key(settings, other) == "site.test"
    assert keys.site_of_key(settings, first[:-1] + ("A" if first[-1] != "A" else "B")) is None
    assert keys.site_of_key(settings, "") is None
    assert keys.site_of_key(settings, "x" * 10_000) is None  # never hashed, never read


def test_list_and_revoke_by_prefix(settings):
    first = keys.create_key(settings, "example.com", name="CI")
    second = keys.create_key(settings, "example.com", name="laptop")
    keys.create_key(settings, "site.test")
    listed = keys.list_keys(settings, "example.com")
    assert {(k.prefix, k.name) for k in listed} == {(first[:6], "CI"), (second[:6], "laptop")}
    assert all(k.site == "example.com" and k.created_at.endswith("Z") for k in listed)
    assert keys.revoke_key(settings, "site.test", first[:6]) == 0  # another site's key
    assert keys.revoke_key(settings, "example.com", first[:6]) == 1
    assert keys.site_of_key(settings, first) is None
    assert keys.site_of_key(settings, second) == "example.com"
    with pytest.raises(ValueError, match="6-character prefix"):
        keys.revoke_key(settings, "example.com", first[:3])


def test_a_revoked_key_stops_within_the_cache_time(settings):
    now = [0.0]
    key = keys.create_key(settings, "example.com")
    registry = keys.KeyRegistry(
        aws.client("dynamodb", settings), settings.sites_table, clock=lambda: now[0]
    )
    assert registry.site_of(key) == "example.com"
    keys.revoke_key(settings, "example.com", key[:6])
    now[0] = keys.CACHE_SECONDS - 1
    assert registry.site_of(key) == "example.com"  # cached, as documented
    now[0] = keys.CACHE_SECONDS
    assert registry.site_of(key) is None


def test_the_rate_count_is_shared_atomic_and_per_window(settings):
    dynamodb = aws.client("dynamodb", settings)
    table, start = settings.sites_table, 1_800_000_000 - 1_800_000_000 % 3600
    counts: list[int] = []
    sent: list[tuple[str, dict]] = []
    for _ in range(8):
        # Each request has its own client, as separate Lambda containers would.
        client = aws.client("dynamodb", settings)
        client.meta.events.register(
            "provide-client-params.dynamodb.*",
            lambda params, model, **_: sent.append((model.name, params)),
        )
        counts.append(keys.count_request(client, table, "k1", start + 5))
    assert counts == list(range(1, 9))
    # Atomic: each request is one server-side ADD, never a read then a write (which two
    # containers at once would both base on the same count). moto's in-process backend has no
    # lock, so threads racing here tested moto, not us: the test failed now and then.
    assert [name for name, _ in sent] == ["UpdateItem"] * 8
    assert all(params["UpdateExpression"].startswith("ADD ") for _, params in sent)
    assert keys.count_request(dynamodb, table, "k2", start + 5) == 1  # per key
    assert keys.count_request(dynamodb, table, "k1", start + 3600) == 1  # a new window
    items = [
        i for i in registry_items(settings) if i["site"]["S"].startswith(keys.RATE_ITEM_PREFIX)
    ]
    assert all("k1" not in i["site"]["S"] for i in items)  # the key's hash, not the key
    assert {int(i["expires_at"]["N"]) for i in items} == {start + 7200, start + 3600 + 7200}


def test_the_hourly_limit_comes_from_the_environment():
    assert keys.hourly_limit({}) == keys.DEFAULT_HOURLY_LIMIT == 600
    assert keys.hourly_limit({keys.ENV_RATE_LIMIT: " 25 "}) == 25
    with pytest.raises(ValueError):
        keys.hourly_limit({keys.ENV_RATE_LIMIT: "0"})


def test_the_command_line_creates_lists_and_revokes_keys(settings, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_SITES_TABLE", settings.sites_table)
    assert main(["key", "create", "Example.com", "--name", "CI"]) == 0
    out = capsys.readouterr().out
    key = out.strip().splitlines()[-1]
    assert "shown once" in out and len(key) == 64
    assert keys.site_of_key(settings, key) == "example.com"
    assert main(["key", "list", "example.com"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    prefix, _created, name = line.split("\t")
    assert (prefix, name) == (key[:6], "CI") and key not in line
    assert main(["key", "revoke", "example.com", prefix]) == 0
    assert keys.site_of_key(settings, key) is None
    assert main(["key", "revoke", "example.com", prefix]) == 1
    assert "has no key starting" in capsys.readouterr().err
    assert main(["key", "create", "nobody.example"]) == 2
    assert "nobody.example is not registered" in capsys.readouterr().err
