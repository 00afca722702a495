"""Share links and login allowlists in the site registry (moto in-process), and their CLI."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from pipeline import sites as sites_cli
from pipeline.enrich.sites import new_site, register_site, remove_site
from pipeline.errors import InvalidSite
from pipeline.ops import shares
from pipeline.ops.emails import InvalidEmail
from pipeline.ops.shares import ShareError, ShareRefused

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def registry_items(settings) -> list[dict]:
    table = boto3.client("dynamodb").scan(TableName=settings.sites_table)
    return table["Items"]


def test_a_link_opens_its_site_and_only_its_hash_is_stored(settings):
    token, made = shares.create_share(settings, " Example.COM ", now=NOW)
    assert len(token) >= 43 and made.site == "example.com" and made.prefix == token[:6]
    opened = shares.open_share(settings, token, NOW + timedelta(days=400))
    assert (opened.site, opened.prefix, opened.expires_at, opened.has_password) == (
        "example.com",
        token[:6],
        None,
        False,
    )
    stored = json.dumps(registry_items(settings))
    assert token not in stored and shares.token_digest(token) in stored


def test_list_shows_prefix_expiry_and_password_and_revoke_refuses_at_once(settings):
    plain, _ = shares.create_share(settings, "example.com", now=NOW)
    guarded, _ = shares.create_share(
        settings, "example.com", password="correct horse", expires_days=7, now=NOW
    )
    other, _ = shares.create_share(settings, "site.test", now=NOW)
    listed = shares.list_shares(settings, "example.com")
    assert [(s.prefix, s.expires_at, s.has_password) for s in listed] == sorted(
        [(plain[:6], None, False), (guarded[:6], "2026-12-04T12:00:00Z", True)]
    )
    assert shares.revoke_share(settings, "example.com", guarded[:6]) == 1
    with pytest.raises(ShareRefused, match="revoked, or it was never made"):
        shares.open_share(settings, guarded, NOW)
    # Another site's link with the same prefix is not this site's to revoke.
    assert shares.revoke_share(settings, "example.com", other[:6]) == 0
    assert shares.open_share(settings, other, NOW).site == "site.test"
    assert shares.open_share(settings, plain, NOW).site == "example.com"


def test_an_expired_link_says_when_it_expired(settings):
    token, _ = shares.create_share(settings, "example.com", expires_days=1, now=NOW)
    assert shares.open_share(settings, token, NOW + timedelta(hours=23)).site == "example.com"
    with pytest.raises(ShareRefused) as refused:
        shares.open_share(settings, token, NOW + timedelta(days=1))
    assert str(refused.value) == "This share link expired on 2026-11-28 12:00 UTC."


def test_a_password_is_stored_salted_and_checked(settings):
    first, made = shares.create_share(settings, "example.com", password="correct horse", now=NOW)
    second, again = shares.create_share(settings, "example.com", password="correct horse", now=NOW)
    opened = shares.open_share(settings, first, NOW)
    assert opened.has_password
    assert shares.password_matches("correct horse", opened.password_hash)
    assert not shares.password_matches("correct horsE", opened.password_hash)
    assert not shares.password_matches("correct horse", "scrypt$garbage")
    # A salt per link: the same password hashes differently, and nothing stores it in clear.
    assert made.password_hash != again.password_hash
    stored = json.dumps(registry_items(settings))
    assert "correct horse" not in stored and first not in stored and second not in stored
    with pytest.raises(ShareError, match="8 to 1024 characters"):
        shares.create_share(settings, "example.com", password="short", now=NOW)


def test_a_link_of_a_removed_site_is_refused_and_works_again_if_it_returns(settings):
    token, _ = shares.create_share(settings, "site.test", now=NOW)
    remove_site(settings, "site.test")
    with pytest.raises(ShareRefused, match="no longer registered"):
        shares.open_share(settings, token, NOW)
    register_site(settings, new_site("site.test"))
    assert shares.open_share(settings, token, NOW).site == "site.test"


@pytest.mark.parametrize(
    "token",
    ["", "x" * 43, "#key#abc", "a" * 5000],
    ids=["empty", "forged", "registry-key", "huge"],
)
def test_a_forged_token_is_refused_in_one_sentence(settings, token):
    shares.create_share(settings, "example.com", now=NOW)
    with pytest.raises(ShareRefused) as refused:
        shares.open_share(settings, token, NOW)
    assert str(refused.value) == (
        "This share link is not valid: it was revoked, or it was never made."
    )


def test_links_are_only_made_for_registered_sites(settings):
    with pytest.raises(InvalidSite, match=r"not registered: python -m pipeline\.sites add"):
        shares.create_share(settings, "nowhere.example", now=NOW)
    for name in ("#key#x", "", "   "):
        with pytest.raises(InvalidSite, match="not a domain name"):
            shares.create_share(settings, name, now=NOW)
    with pytest.raises(ShareError, match="whole number of days"):
        shares.create_share(settings, "example.com", expires_days=0, now=NOW)


def test_the_link_joins_the_dashboard_url_whatever_its_slash():
    assert shares.share_link("https://d.example/", "t-1_x") == "https://d.example/?share=t-1_x"
    assert shares.share_link("https://d.example", "t") == "https://d.example/?share=t"


def test_an_allowlist_takes_addresses_and_whole_domains(settings):
    assert shares.allow(settings, "example.com", " Ann@Example.ORG ") == "Ann@example.org"
    assert shares.allow(settings, "site.test", "*@Staff.Example") == "*@staff.example"
    shares.allow(settings, "site.test", "bob@other.example")
    assert shares.allowed_entries(settings, "site.test") == ["*@staff.example", "bob@other.example"]
    assert shares.allowed_sites(settings, "ann@example.org") == ["example.com"]
    assert shares.allowed_sites(settings, "ANN@example.org") == ["example.com"]
    assert shares.allowed_sites(settings, "zoe@staff.example") == ["site.test"]
    assert shares.allowed_sites(settings, "zoe@evil-staff.example") == []
    assert shares.allowed_sites(settings, "zoe@staff.example.evil") == []
    assert shares.allowed_sites(settings, "mallory@example.org") == []
    assert shares.allowed_sites(settings, "not an address") == []
    assert shares.disallow(settings, "example.com", "ann@EXAMPLE.org")
    assert not shares.disallow(settings, "example.com", "ann@example.org")
    assert shares.allowed_sites(settings, "ann@example.org") == []
    # A removed site is offered to nobody, its allowlist kept for when it returns.
    remove_site(settings, "site.test")
    assert shares.allowed_sites(settings, "zoe@staff.example") == []


def test_bad_allowlist_entries_are_refused(settings):
    for entry in ("nobody", "*@", "*@not a domain", "a@b@c"):
        with pytest.raises(InvalidEmail):
            shares.allow(settings, "example.com", entry)
    with pytest.raises(InvalidSite, match="not registered"):
        shares.allow(settings, "nowhere.example", "ann@example.org")


def run_cli(monkeypatch, capsys, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = sites_cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_env(settings, monkeypatch):
    from pipeline.config import resource_env

    for name, value in resource_env(settings).items():
        monkeypatch.setenv(name, value)
    return settings


def test_the_cli_makes_lists_and_revokes_links(cli_env, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_DASHBOARD_URL", "https://dash.example/")
    code, out, _ = run_cli(
        monkeypatch, capsys, "share", "create", "example.com", "--password-stdin",
        "--expires-days", "30", stdin="correct horse\n",
    )  # fmt: skip
    assert code == 0
    link = out.strip().splitlines()[-1]
    assert link.startswith("https://dash.example/?share=")
    token = link.split("=", 1)[1]
    opened = shares.open_share(cli_env, token)
    assert opened.has_password and shares.password_matches("correct horse", opened.password_hash)
    code, out, _ = run_cli(monkeypatch, capsys, "share", "list", "example.com")
    prefix, _created, expires, password = out.strip().split("\t")
    assert code == 0 and prefix == token[:6] and expires.endswith("UTC") and password == "yes"
    assert token not in out
    code, _, err = run_cli(monkeypatch, capsys, "share", "revoke", "example.com", "zzzzzz")
    assert code == 1 and "no share link starting zzzzzz" in err
    assert run_cli(monkeypatch, capsys, "share", "revoke", "example.com", prefix)[0] == 0
    with pytest.raises(ShareRefused):
        shares.open_share(cli_env, token)


def test_without_a_dashboard_url_the_cli_says_how_to_get_the_link(cli_env, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "share", "create", "site.test")
    lines = out.strip().splitlines()
    assert code == 0 and "PIPELINE_DASHBOARD_URL" in lines[-1] and "--base-url" in lines[-1]
    assert shares.open_share(cli_env, lines[-2]).site == "site.test"
    code, out, _ = run_cli(
        monkeypatch, capsys, "share", "create", "site.test", "--base-url", "http://127.0.0.1:8501"
    )
    assert out.strip().splitlines()[-1].startswith("http://127.0.0.1:8501/?share=")


def test_the_cli_manages_the_allowlist(cli_env, monkeypatch, capsys):
    assert run_cli(monkeypatch, capsys, "access", "add", "example.com", "ann@example.org")[0] == 0
    assert run_cli(monkeypatch, capsys, "access", "add", "example.com", "*@example.net")[0] == 0
    code, out, _ = run_cli(monkeypatch, capsys, "access", "list", "example.com")
    assert out.split() == ["*@example.net", "ann@example.org"]
    assert run_cli(monkeypatch, capsys, "access", "remove", "example.com", "*@example.net")[0] == 0
    code, _, err = run_cli(monkeypatch, capsys, "access", "remove", "example.com", "x@y.example")
    assert code == 1 and "was not allowed" in err
    assert shares.allowed_sites(cli_env, "someone@example.net") == []


@pytest.mark.parametrize(
    ("argv", "stdin", "sentence"),
    [
        (("share", "create", "nowhere.example"), "", "nowhere.example is not registered"),
        (("share", "create", "example.com", "--expires-days", "-3"), "", "whole number of days"),
        (("share", "create", "example.com", "--password-stdin"), "short\n", "8 to 1024"),
        (("share", "revoke", "example.com", "abc"), "", "6-character prefix"),
        (("access", "add", "example.com", "not-an-address"), "", "not an e-mail address"),
        (("access", "add", "example.com", "*@"), "", "not a domain entry like *@example.com"),
    ],
)
def test_bad_cli_input_gets_one_sentence(cli_env, monkeypatch, capsys, argv, stdin, sentence):
    code, out, err = run_cli(monkeypatch, capsys, *argv, stdin=stdin)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and sentence in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
