"""Who may open the dashboard, and which sites they see.

The embedded demo and a local emulator are open. A dashboard that reads real AWS is private
by default: it needs an identity provider (`[auth]` in secrets.toml, then `st.login`), or a
password (`[dashboard] password = "…"`), or an explicit `[dashboard] public = true`.

A share link (`?share=TOKEN`, `pipeline.ops.shares`) opens one site, read only, whatever the
access mode, the demo and local emulators included: it carries its own secret. Its session
sees only that site and no operator page. After an identity-provider login, only the sites
whose allowlist names the user's address are offered (`python -m pipeline.sites access add`);
addresses in `[dashboard] operators` see every site, as a password or a public dashboard does.

Passwords (the dashboard's and a link's) are attempt-limited per process: after
`FREE_ATTEMPTS` wrong ones, further attempts are refused for a delay that doubles from
`FIRST_WAIT_S` up to `MAX_WAIT_S`. The count is the process's, shared by every session, so a new
session (a reload, another browser) starts no fresh count.
"""

from __future__ import annotations

import hmac
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from dashboard.format import md_escape
from dashboard.navigation import pages
from pipeline.aws import is_loopback_url
from pipeline.config import ENV_ENDPOINT_URL, Settings
from pipeline.errors import PipelineError
from pipeline.ops.emails import same_address
from pipeline.ops.shares import ShareRefused, allowed_sites, open_share, password_matches

SHARE_PARAM = "share"
# Session state: the link's token (kept to keep it in the URL, so a reload keeps working; never
# shown) and the digest of the link whose password this session gave.
SHARED_LINK = "shared_link"
SHARE_UNLOCKED = "share_unlocked"
ATTEMPT_NOTE = "attempt_note"  # what the last password attempt said
FREE_ATTEMPTS = 5
FIRST_WAIT_S = 30.0
MAX_WAIT_S = 15 * 60.0
FORGET_AFTER_S = 24 * 3600.0  # a count with no failure for a day starts over


@dataclass(frozen=True)
class Access:
    """What this session may see: `sites` None for any site; `shared` the one site of a share
    link (read only, no site picker); `operator` whether operator pages are offered."""

    sites: tuple[str, ...] | None = None
    shared: str = ""
    operator: bool = True


@dataclass
class _Count:
    failures: int = 0
    until: float = 0.0  # no attempt before this (clock seconds)
    last: float = 0.0


class AttemptLimiter:
    """Wrong-password counts by target ("dashboard", a link's digest), shared by every session
    of the process (thread-safe: Streamlit runs sessions in threads)."""

    def __init__(
        self,
        free: int = FREE_ATTEMPTS,
        first_wait_s: float = FIRST_WAIT_S,
        max_wait_s: float = MAX_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.first_wait_s, self.max_wait_s = free, first_wait_s, max_wait_s
        self.clock = clock
        self._counts: dict[str, _Count] = {}
        self._lock = threading.Lock()

    def _count(self, key: str, now: float) -> _Count:
        count = self._counts.get(key)
        if count is None or now - count.last > FORGET_AFTER_S:
            count = self._counts[key] = _Count()
        return count

    def wait(self, key: str) -> float:
        """Seconds before `key` may be tried again; 0 when it may be now."""
        with self._lock:
            now = self.clock()
            return max(0.0, self._count(key, now).until - now)

    def failed(self, key: str) -> float:
        """Count a wrong attempt; the wait it imposes (0 while attempts are free)."""
        with self._lock:
            now = self.clock()
            count = self._count(key, now)
            count.failures += 1
            count.last = now
            if count.failures < self.free:
                return 0.0
            wait = min(self.first_wait_s * 2 ** (count.failures - self.free), self.max_wait_s)
            count.until = now + wait
            return wait

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


LIMITER = AttemptLimiter()


def too_many(wait_s: float) -> str:
    return f"Too many wrong passwords: try again in {math.ceil(wait_s)} s."


def _secret(section: str) -> dict:
    try:
        return dict(st.secrets.get(section, {}))
    except (FileNotFoundError, StreamlitSecretNotFoundError):
        return {}


def is_local(endpoint_url: str | None) -> bool:
    """An emulator on this machine: decided from the endpoint's parsed host, never by
    substring (`https://dynamodb.…amazonaws.com/?localhost` is real AWS)."""
    return is_loopback_url(endpoint_url)


def _backend_settings() -> Settings:
    from dashboard.data import backend  # the demo's emulator starts only when a link needs it

    return backend().settings


def _stop_with(show: Callable[[], None], operator: bool = False) -> None:
    """Show only `show`'s output: the navigation is declared hidden (else Streamlit lists the
    pages/ folder in the sidebar) and the run stops."""
    st.navigation(pages(operator), position="hidden")
    show()
    st.stop()


def _stop_with_error(text: str) -> None:
    """Show only `text` (Markdown, already escaped) as an error."""
    # markdown-safe: every caller passes md_escape()d text
    _stop_with(lambda: st.error(text))


def _attempt(key: str, target: str, matches: Callable[[str], bool], unlock: Callable[[], None]):
    """A password field's on_change: one attempt per entry (the field empties, so the same
    text typed again is another attempt), refused unchecked while the target waits."""
    given = str(st.session_state.get(key) or "")
    st.session_state[key] = ""
    if not given:
        return
    wait = LIMITER.wait(target)
    if wait:
        st.session_state[ATTEMPT_NOTE] = too_many(wait)
    elif matches(given):
        LIMITER.succeeded(target)
        st.session_state.pop(ATTEMPT_NOTE, None)
        unlock()
    else:
        wait = LIMITER.failed(target)
        st.session_state[ATTEMPT_NOTE] = too_many(wait) if wait else "Wrong password."


def _password_form(
    key: str, target: str, matches: Callable[[str], bool], unlock: Callable[[], None]
) -> None:
    st.text_input(
        "Password",
        type="password",
        key=key,
        on_change=_attempt,
        args=(key, target, matches, unlock),
    )
    note = st.session_state.get(ATTEMPT_NOTE)
    wait = LIMITER.wait(target)
    if wait:
        note = too_many(wait)  # said on every run while it lasts, new sessions included
    if note:
        # markdown-safe: "Wrong password." or too_many()'s sentence, literals and a number
        st.error(note)


def share_access(settings_of: Callable[[], Settings], now: datetime | None = None) -> Access | None:
    """The access a share link gives this session (None without one); stops the run with one
    sentence for a link that opens nothing, or with the link's password form."""
    token = st.query_params.get(SHARE_PARAM)
    if token and token != st.session_state.get(SHARED_LINK):
        st.session_state[SHARED_LINK] = token  # another link: its own password
        st.session_state.pop(SHARE_UNLOCKED, None)
        st.session_state.pop(ATTEMPT_NOTE, None)
    token = st.session_state.get(SHARED_LINK)
    if not token:
        return None
    try:
        # Read afresh on every run: a revoked link stops at the viewer's next click.
        share = open_share(settings_of(), token, now or datetime.now(UTC))
    except ShareRefused as exc:
        _stop_with_error(md_escape(exc))
        raise
    except PipelineError as exc:
        _stop_with_error(f"**The analytics backend is not reachable.** {md_escape(exc)}")
        raise
    if share.has_password and st.session_state.get(SHARE_UNLOCKED) != share.digest:

        def unlock() -> None:
            st.session_state[SHARE_UNLOCKED] = share.digest

        def ask() -> None:
            st.title("Analytics")
            st.caption("This shared link needs a password.")
            _password_form(
                "share_password",
                f"share:{share.digest}",
                lambda given: password_matches(given, share.password_hash),
                unlock,
            )

        _stop_with(ask)
    return Access(sites=(share.site,), shared=share.site, operator=False)


@st.cache_data(ttl=30, show_spinner=False)
def _allowed(settings: Settings, email: str) -> list[str]:
    return allowed_sites(settings, email)


def not_allowed(email: str) -> str:
    """The one sentence a login allowed on no site reads (Markdown, the address literal)."""
    command = f"python -m pipeline.sites access add SITE {email}"
    shown = f"`{command}`" if "`" not in command else md_escape(command)
    return f"{md_escape(email)} is not allowed to see any site here; ask the owner to run {shown}"


def login_access(settings_of: Callable[[], Settings], dashboard: dict) -> Access:
    """After an identity-provider login: the sites the user's address is allowed on (every
    site for `[dashboard] operators`); stops the run for a user allowed nowhere."""
    if not st.user.get("is_logged_in", False):
        _stop_with(
            lambda: (st.title("Analytics"), st.button("Log in", on_click=st.login, key="login"))
        )
    email = str(st.user.get("email") or "").strip()
    # A provider that says the address is unverified proves nothing about who this is.
    verified = bool(email) and st.user.get("email_verified") is not False
    operators = dashboard.get("operators") or []
    if verified and any(same_address(email, str(o)) for o in operators):
        return Access()
    try:
        sites = _allowed(settings_of(), email) if verified else []
    except PipelineError as exc:
        _stop_with_error(f"**The analytics backend is not reachable.** {md_escape(exc)}")
        raise
    if not sites:

        def refuse() -> None:
            # markdown-safe: not_allowed() escapes the address
            st.error(not_allowed(email or "This account (no verified e-mail address)"))
            st.button("Log out", on_click=st.logout, key="logout")

        _stop_with(refuse)
    return Access(sites=tuple(sites), operator=False)


def require_access(
    is_demo: bool, settings_of: Callable[[], Settings] = _backend_settings
) -> Access:
    """Stop the page unless this visitor may see the data; what they may see."""
    shared = share_access(settings_of)
    if shared:
        return shared
    endpoint = os.environ.get(ENV_ENDPOINT_URL) or _secret("aws").get("endpoint_url")
    settings = _secret("dashboard")
    if is_demo or is_local(endpoint) or settings.get("public") is True:
        return Access()
    if _secret("auth"):
        return login_access(settings_of, settings)
    password = settings.get("password")
    if password:
        if st.session_state.get("authenticated"):
            return Access()

        def unlock() -> None:
            st.session_state["authenticated"] = True

        _stop_with(
            lambda: _password_form(
                "password",
                "dashboard",
                lambda given: hmac.compare_digest(given.encode(), str(password).encode()),
                unlock,
            ),
            operator=True,
        )
    _stop_with(
        lambda: st.error(
            "**This dashboard is private.** Add an identity provider (`[auth]` in secrets.toml), "
            'a password (`[dashboard] password = "…"`), or, to share it on purpose, '
            "`[dashboard] public = true`."
        )
    )
    return Access()  # not reached: _stop_with stops


def site_for(access: Access, requested: str, default: str) -> tuple[str, str | None]:
    """The site to show for a view asking `requested` (or `default` when it asks none), and
    the sentence to say when it is refused: a share link shows its site whatever the URL
    says; a login outside its allowlist gets its first allowed site."""
    wanted = (requested or default).strip().lower()
    if access.shared:
        return access.shared, None
    if access.sites is None or wanted in access.sites:
        return wanted, None
    first = access.sites[0] if access.sites else ""
    if not requested or requested.strip().lower() == default.strip().lower():
        return first, None  # the dashboard's default site is not this user's: no refusal
    return first, f"{requested} is not among the sites you may see; showing {first} instead."
