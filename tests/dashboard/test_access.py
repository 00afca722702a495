"""Who may open the dashboard: private by default on real AWS, open for the demo and locally."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

GATED = """
from dashboard.access import require_access
import streamlit as st
require_access(is_demo={demo})
st.markdown("THE DATA")
"""


@pytest.fixture(autouse=True)
def no_endpoint(monkeypatch) -> Iterator[None]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    yield


def page(demo: bool = False, **secrets) -> AppTest:
    app = AppTest.from_string(GATED.format(demo=demo), default_timeout=30)
    for section, values in secrets.items():
        app.secrets[section] = values
    return app.run()


def shows_data(app: AppTest) -> bool:
    return any(m.value == "THE DATA" for m in app.markdown)


def test_a_real_aws_dashboard_without_access_settings_is_private():
    app = page(aws={"stack": "analytics", "region": "eu-central-1"})
    assert not shows_data(app)
    assert "This dashboard is private" in app.error[0].value


def test_a_password_opens_it_and_a_wrong_one_does_not():
    app = page(dashboard={"password": "correct horse"})
    assert not shows_data(app)
    app.text_input(key="password").set_value("wrong").run()
    assert not shows_data(app) and app.error[0].value == "Wrong password."
    app.text_input(key="password").set_value("correct horse").run()
    assert shows_data(app)


def test_an_identity_provider_asks_to_log_in():
    app = page(
        auth={
            "redirect_uri": "http://localhost:8501/oauth2callback",
            "cookie_secret": "x" * 32,
            "client_id": "id",
            "client_secret": "s",
            "server_metadata_url": "https://accounts.example/.well-known/openid-configuration",
        }
    )
    assert not shows_data(app)
    assert app.button(key="login").label == "Log in"


@pytest.mark.parametrize(
    ("demo", "secrets", "endpoint"),
    [
        pytest.param(True, {}, None, id="embedded-demo"),
        pytest.param(False, {}, "http://127.0.0.1:4566", id="local-emulator"),
        pytest.param(False, {"dashboard": {"public": True}}, None, id="public-on-purpose"),
    ],
)
def test_open_cases(demo, secrets, endpoint, monkeypatch):
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    assert shows_data(page(demo, **secrets))


LOOKALIKES = [
    "https://dynamodb.eu-central-1.amazonaws.com/?localhost",
    "http://127.0.0.1.nip.io:4566",
    "https://ops-localhost-gw.example.com",
    "https://user:localhost@dynamodb.eu-central-1.amazonaws.com",
    "https://dynamodb.eu-central-1.amazonaws.com/127.0.0.1#[::1]",
    "http://localhost.evil.test:4566",
    "http://[::2]:4566",
    "http://128.0.0.1:4566",
    "http://[::1",  # malformed: refused, not an error
    "localhost:4566",  # no scheme: no host to trust
    "",
    None,
]
LOOPBACKS = [
    "http://localhost:4566",
    "http://LOCALHOST:4566/",
    "http://127.0.0.1:4566",
    "http://127.8.9.10",
    "http://[::1]:4566",
    "http://[::ffff:127.0.0.1]:4566",
    "https://user:pw@localhost/path?x=1",
]


@pytest.mark.parametrize("url", LOOPBACKS)
def test_a_loopback_host_is_local(url):
    from pipeline.aws import is_loopback_url

    assert is_loopback_url(url)


@pytest.mark.parametrize("url", LOOKALIKES)
def test_a_host_that_only_mentions_loopback_is_not_local(url):
    from pipeline.aws import is_loopback_url

    assert not is_loopback_url(url)


@pytest.mark.parametrize("endpoint", LOOKALIKES[:3])
def test_a_dashboard_on_a_lookalike_endpoint_stays_private(endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    app = page(aws={"region": "eu-central-1"})
    assert not shows_data(app)
    assert "This dashboard is private" in app.error[0].value


def test_the_aws_client_uses_emulator_credentials_only_for_a_loopback_endpoint(monkeypatch):
    from pipeline.aws import client
    from pipeline.config import Settings

    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    # Nothing of this machine's: no credential files, no instance metadata.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    local = client("sqs", Settings.for_prefix("x", endpoint_url="http://127.0.0.1:4566"))
    assert local._request_signer._credentials.access_key == "testing"
    remote = client("sqs", Settings.for_prefix("x", endpoint_url=LOOKALIKES[0]))
    credentials = remote._request_signer._credentials
    assert credentials is None or credentials.access_key != "testing"


def test_make_run_binds_the_dashboard_to_loopback():
    from pathlib import Path

    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "--server.address 127.0.0.1" in run


# ---- issue 17: allowlisted logins, share links, attempt limiting ----

AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "x" * 32,
    "client_id": "id",
    "client_secret": "s",
    "server_metadata_url": "https://accounts.example/.well-known/openid-configuration",
}
# The registry is moto's in-process mock (the `settings` fixture), named by the environment.
NARROWED = """
from dashboard.access import require_access
from pipeline.stack import settings_from_env
import streamlit as st
access = require_access(is_demo={demo}, settings_of=lambda: settings_from_env(resolve_stack=False))
st.markdown("THE DATA")
st.markdown("SITES " + ",".join(access.sites or ["any"]) + " SHARED " + (access.shared or "-"))
st.markdown("OPERATOR " + str(access.operator))
"""


@pytest.fixture(autouse=True)
def fresh_limiter() -> Iterator[None]:
    from dashboard import access

    access.LIMITER.reset()
    yield
    access.LIMITER.reset()


@pytest.fixture
def registry(settings, monkeypatch):
    from pipeline.config import resource_env

    for name, value in resource_env(settings).items():
        monkeypatch.setenv(name, value)
    return settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    from dashboard import access

    fake = Clock()
    monkeypatch.setattr(access.LIMITER, "clock", fake)
    return fake


def narrowed(user: dict | None = None, demo: bool = False, query=None, **secrets) -> AppTest:
    app = AppTest.from_string(NARROWED.format(demo=demo), default_timeout=60)
    for section, values in secrets.items():
        app.secrets[section] = values
    if user is not None:
        app.user = user
    for key, value in (query or {}).items():
        app.query_params[key] = value
    return app.run()


def texts(app: AppTest) -> list[str]:
    return [m.value for m in app.markdown]


def test_an_allowlisted_login_sees_only_its_sites(registry):
    from pipeline.ops import shares

    shares.allow(registry, "site.test", "ann@example.org")
    shares.allow(registry, "example.com", "*@example.org")
    app = narrowed({"is_logged_in": True, "email": "Ann@Example.org"}, auth=AUTH)
    assert not app.exception and shows_data(app)
    assert "SITES example.com,site.test SHARED -" in texts(app)
    assert "OPERATOR False" in texts(app)  # no Pipeline health for a narrowed login
    bob = narrowed({"is_logged_in": True, "email": "bob@example.org"}, auth=AUTH)
    assert "SITES example.com SHARED -" in texts(bob)


def test_a_login_allowed_nowhere_is_refused_with_a_sentence_and_can_log_out(registry):
    from pipeline.ops import shares

    shares.allow(registry, "example.com", "ann@example.org")
    app = narrowed({"is_logged_in": True, "email": "mallory@example.net"}, auth=AUTH)
    assert not shows_data(app)
    # The address is escaped for Markdown (it reads the same), the command a code span.
    assert [e.value for e in app.error] == [
        f"{md_escape('mallory@example.net')} is not allowed to see any site here; ask the "
        "owner to run `python -m pipeline.sites access add SITE mallory@example.net`"
    ]
    assert app.button(key="logout").label == "Log out"
    # A provider that marks the address unverified is refused even for an allowed address.
    unverified = narrowed(
        {"is_logged_in": True, "email": "ann@example.org", "email_verified": False}, auth=AUTH
    )
    assert not shows_data(unverified) and "is not allowed" in unverified.error[0].value


def test_an_operator_login_sees_every_site_and_the_operator_pages(registry):
    app = narrowed(
        {"is_logged_in": True, "email": "ops@example.org"},
        auth=AUTH,
        dashboard={"operators": ["OPS@example.org"]},
    )
    assert shows_data(app) and "SITES any SHARED -" in texts(app) and "OPERATOR True" in texts(app)


def test_the_limiter_doubles_its_wait_up_to_the_cap():
    from dashboard.access import AttemptLimiter

    clock = Clock()
    limiter = AttemptLimiter(clock=clock)
    waits = [limiter.failed("k") for _ in range(4)]
    assert waits == [0, 0, 0, 0] and limiter.wait("k") == 0
    assert limiter.failed("k") == 30 and limiter.wait("k") == 30
    clock.now += 30
    assert limiter.wait("k") == 0 and limiter.failed("k") == 60
    for _ in range(10):
        clock.now += 1000
        last = limiter.failed("k")
    assert last == 15 * 60
    assert limiter.wait("other") == 0  # counted per target
    limiter.succeeded("k")
    assert limiter.wait("k") == 0 and limiter.failed("k") == 0


def enter(app: AppTest, key: str, value: str) -> AppTest:
    return app.text_input(key=key).set_value(value).run()


def test_dashboard_password_attempts_are_limited_across_sessions(clock):
    app = page(dashboard={"password": "correct horse"})
    for _ in range(4):
        enter(app, "password", "wrong")
        assert app.error[0].value == "Wrong password."
    enter(app, "password", "wrong")
    assert app.error[0].value == "Too many wrong passwords: try again in 30 s."
    # The right password is not even checked while the wait lasts, in this session or another.
    clock.now += 10
    enter(app, "password", "correct horse")
    assert (
        not shows_data(app) and app.error[0].value == "Too many wrong passwords: try again in 20 s."
    )
    other = page(dashboard={"password": "correct horse"})
    assert other.error[0].value == "Too many wrong passwords: try again in 20 s."
    enter(other, "password", "correct horse")
    assert not shows_data(other)
    clock.now += 20
    enter(other, "password", "correct horse")
    assert shows_data(other)


def test_a_share_link_opens_its_site_only_with_its_password(registry, clock):
    from pipeline.ops import shares

    token, _ = shares.create_share(registry, "site.test", password="correct horse")
    # Whatever the dashboard's own mode: here a private one with a password of its own.
    app = narrowed(query={"share": token}, dashboard={"password": "other"})
    assert not shows_data(app) and app.caption[0].value == "This shared link needs a password."
    enter(app, "share_password", "correct horsE")
    assert app.error[0].value == "Wrong password."
    enter(app, "share_password", "correct horse")
    assert shows_data(app) and not app.error
    assert "SITES site.test SHARED site.test" in texts(app) and "OPERATOR False" in texts(app)
    # The token is nowhere on the page.
    assert all(token not in text for text in texts(app))
    # Five wrong passwords in another session lock the link, not the dashboard's own password.
    other = narrowed(query={"share": token}, dashboard={"password": "other"})
    for _ in range(5):
        enter(other, "share_password", "nope nope")
    assert other.error[0].value == "Too many wrong passwords: try again in 30 s."
    dashboard = page(dashboard={"password": "other"})
    enter(dashboard, "password", "other")
    assert shows_data(dashboard)


@pytest.mark.parametrize("case", ["forged", "revoked", "expired", "site-removed"])
def test_a_share_link_that_opens_nothing_shows_one_sentence(registry, case, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from pipeline.enrich.sites import remove_site
    from pipeline.ops import shares

    made = datetime.now(UTC) - timedelta(days=3)
    token, share = shares.create_share(
        registry, "example.com", expires_days=2 if case == "expired" else None, now=made
    )
    if case == "forged":
        token = token[:-4] + "AAAA"
    elif case == "revoked":
        shares.revoke_share(registry, "example.com", share.prefix)
    elif case == "site-removed":
        remove_site(registry, "example.com")
    # Even on the open demo: the link is refused, nothing of the dashboard is shown.
    app = narrowed(query={"share": token}, demo=True)
    assert not shows_data(app) and not app.exception
    expected = {
        "forged": "This share link is not valid: it was revoked, or it was never made.",
        "revoked": "This share link is not valid: it was revoked, or it was never made.",
        "expired": f"This share link expired on {(made + timedelta(days=2)):%Y-%m-%d %H:%M} UTC.",
        "site-removed": "This share link's site is no longer registered here.",
    }[case]
    assert [e.value for e in app.error] == [md_escape(expected)]


def md_escape(text: str) -> str:
    from dashboard.format import md_escape as escape

    return escape(text)


def test_a_share_or_a_narrowed_login_keeps_the_view_on_its_sites():
    from dashboard.access import Access, site_for

    shared = Access(sites=("a.example",), shared="a.example", operator=False)
    assert site_for(shared, "b.example", "b.example") == ("a.example", None)
    narrowed_login = Access(sites=("a.example", "c.example"), operator=False)
    assert site_for(narrowed_login, "C.example", "") == ("c.example", None)
    assert site_for(narrowed_login, "", "b.example") == ("a.example", None)
    site, note = site_for(narrowed_login, "b.example", "a.example")
    assert site == "a.example" and note and "b.example is not among the sites you may see" in note
    assert site_for(Access(), "B.example ", "") == ("b.example", None)


EMPTY_WITH_DROPS = """
import streamlit as st
from dashboard.navigation import OPERATOR, pages
from dashboard.tables import empty_state
from dashboard.view import View
st.session_state[OPERATOR] = {operator}
st.navigation(pages({operator}), position="hidden")
empty_state(View(site="example.com", period="today"), filtered=False)
"""


def test_an_empty_period_links_its_drops_to_pipeline_health_only_where_it_is_offered(
    registry, message_factory, sqs_record
):
    # A share link's viewer has no Pipeline health page: a link to it would fail the page.
    from dashboard.data import backend
    from pipeline.consume.consumer import Consumer
    from tests.conftest import GOOGLEBOT_UA

    bot = sqs_record(message_factory(headers={"User-Agent": GOOGLEBOT_UA}))
    assert dict(Consumer(registry).process([bot]).dropped) == {"bot": 1}
    backend.clear()  # this test's registry, not a backend another test cached
    try:
        for operator, links in ((True, 1), (False, 0)):
            app = AppTest.from_string(EMPTY_WITH_DROPS.format(operator=operator)).run(timeout=60)
            assert not app.exception
            assert any("were dropped" in warning.value for warning in app.warning)
            assert len(app.get("page_link")) == links
    finally:
        backend.clear()
