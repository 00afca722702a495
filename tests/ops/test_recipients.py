"""Report recipients in the registry: the `report` command, bad input, the unsubscribe token."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import data
from dashboard.format import md_escape
from pipeline import sites
from pipeline.config import resource_env
from pipeline.enrich.sites import list_sites
from pipeline.ops import recipients

UNSUBSCRIBE_PAGE = """
import streamlit as st
from dashboard.unsubscribe import answer_unsubscribe

answer_unsubscribe()
st.write("the dashboard")
"""


@pytest.fixture
def cli(settings, monkeypatch, capsys):
    """`python -m pipeline.sites ...` against the test's tables: (exit status, out, err)."""
    for name, value in resource_env(settings).items():
        monkeypatch.setenv(name, value)

    def run(*argv: str) -> tuple[int, str, str]:
        status = sites.main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def test_add_list_update_and_remove_recipients(cli, settings):
    assert cli("report", "add", "Example.com", "Ann@Example.ORG", "--weekly", "--alerts") == (
        0,
        "Ann@example.org gets weekly, alerts for example.com\n",
        "",
    )
    token = recipients.read(settings, "example.com").recipients[0].token
    assert len(token) >= 40
    # Adding again changes what the address gets, not its unsubscribe token.
    assert cli("report", "add", "example.com", "ann@example.org", "--monthly")[0] == 0
    assert cli("report", "add", "example.com", "bob@example.org", "--weekly")[0] == 0
    (ann, bob) = recipients.read(settings, "example.com").recipients
    # (The address as last given: one mailbox, whatever the case.)
    assert (ann.email, ann.kinds, ann.token) == ("ann@example.org", ("monthly",), token)
    assert bob.token != token
    status, out, _ = cli("report", "list", "example.com")
    assert (status, out) == (0, "ann@example.org\tmonthly\nbob@example.org\tweekly\n")
    assert cli("report", "remove", "example.com", "ANN@example.org")[0] == 0
    assert [p.email for p in recipients.read(settings, "example.com").recipients] == [
        "bob@example.org"
    ]
    status, _, err = cli("report", "remove", "example.com", "ann@example.org")
    assert status == 1 and "gets no reports" in err
    # The #report# item is not a site.
    assert [s.domain for s in list_sites(settings)] == ["example.com", "site.test"]


def test_the_webhook_is_set_shown_without_its_secret_and_removed(cli, settings):
    url = "https://hooks.slack.com/services/T000/B000/very-secret"
    assert cli("report", "webhook", "example.com", url)[0] == 0
    assert recipients.read(settings, "example.com").webhook == url
    _, out, _ = cli("report", "list", "example.com")
    assert out == "webhook\thttps://hooks.slack.com/…\n" and "secret" not in out
    assert cli("report", "webhook", "example.com", "--remove")[0] == 0
    assert recipients.read(settings, "example.com").webhook == ""


@pytest.mark.parametrize(
    ("argv", "sentence"),
    [
        pytest.param(
            ("add", "example.com", "not-an-address", "--weekly"),
            "'not-an-address' is not an e-mail address like name@example.com",
            id="bad-email",
        ),
        pytest.param(
            ("add", "nowhere.example", "ann@example.org", "--weekly"),
            "nowhere.example is not registered: python -m pipeline.sites add nowhere.example",
            id="unregistered-site",
        ),
        pytest.param(
            ("add", "example.com", "ann@example.org"),
            "say what to send: --weekly, --monthly and/or --alerts",
            id="no-kind",
        ),
        pytest.param(
            ("webhook", "example.com", "http://hooks.example.com/x"),
            "'http://hooks.example.com/x' is not an https:// webhook URL",
            id="plain-http-webhook",
        ),
        pytest.param(
            ("webhook", "example.com", "javascript:alert(1)"),
            "'javascript:alert(1)' is not an https:// webhook URL",
            id="not-a-url",
        ),
        pytest.param(
            ("webhook", "nowhere.example", "https://hooks.example.com/x"),
            "nowhere.example is not registered",
            id="webhook-unregistered-site",
        ),
        pytest.param(
            ("webhook", "example.com"), "give either a webhook URL or --remove", id="none"
        ),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(cli, settings, argv, sentence):
    status, out, err = cli("report", *argv)
    assert status == 2 and out == ""
    assert err.startswith(f"error: {sentence}") and err.count("\n") == 1
    assert "Traceback" not in err
    found = recipients.read(settings, "example.com")
    assert found.recipients == () and found.webhook == ""


def test_unsubscribe_removes_every_kind_once(settings):
    ann = recipients.add_recipient(settings, "example.com", "ann@example.org", {"weekly", "alerts"})
    recipients.add_recipient(settings, "example.com", "bob@example.org", {"weekly"})
    assert recipients.unsubscribe(settings, ann.token[:-1] + "x") is None
    assert recipients.unsubscribe(settings, "") is None
    assert recipients.unsubscribe(settings, ann.token) == ("ann@example.org", "example.com")
    assert [p.email for p in recipients.read(settings, "example.com").recipients] == [
        "bob@example.org"
    ]
    assert recipients.unsubscribe(settings, ann.token) is None  # used


def _unsubscribe_page(settings, monkeypatch, token: str | None) -> AppTest:
    for name, value in resource_env(settings).items():
        monkeypatch.setenv(name, value)
    data.backend.clear()  # the cached backend of another test's tables
    app = AppTest.from_string(UNSUBSCRIBE_PAGE, default_timeout=30)
    if token is not None:
        app.query_params["unsubscribe"] = token
    try:
        return app.run()
    finally:
        data.backend.clear()


def test_the_unsubscribe_link_answers_before_anything_else(settings, monkeypatch):
    ann = recipients.add_recipient(settings, "example.com", "ann@example.org", {"weekly"})
    page = _unsubscribe_page(settings, monkeypatch, ann.token)
    assert [s.value for s in page.success] == [
        md_escape("You will no longer receive e-mail reports for example.com.")
    ]
    assert not page.markdown  # stopped: the dashboard below is not shown
    assert recipients.read(settings, "example.com").recipients == ()
    again = _unsubscribe_page(settings, monkeypatch, ann.token)
    assert [w.value for w in again.warning] == [
        md_escape("This unsubscribe link is not valid (already used or mistyped).")
    ]
    plain = _unsubscribe_page(settings, monkeypatch, None)
    assert [m.value for m in plain.markdown] == ["the dashboard"] and not plain.warning
