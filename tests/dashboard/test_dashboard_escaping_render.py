"""`md_escape` in real Streamlit and Chromium: hostile strings shown through every kind of
Markdown-rendering element read as their own characters, and render nothing (no link, image,
emphasis, maths, code, heading, emoji or directive) and fetch nothing."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser

from dashboard.format import WORD_JOINER
from tests.dashboard.test_dashboard_browser import (
    ROOT,
    browser,
    recording_server,
    streamlit_server,
    wait_until_idle,
)

pytestmark = pytest.mark.integration
__all__ = ["browser"]  # the module-scoped Chromium fixture, shared

# Every element kind the dashboard feeds escaped text to, each in its own keyed container.
APP = """
import json, os
import streamlit as st
from dashboard.format import md_escape

for index, text in enumerate(json.loads(os.environ["ESCAPING_CASES"])):
    safe = md_escape(text)
    with st.container(key=f"markdown-{index}"):
        st.markdown(safe)
    with st.container(key=f"title-{index}"):
        st.title(safe, anchor=False)
    with st.container(key=f"caption-{index}"):
        st.caption(safe)
    with st.container(key=f"info-{index}"):
        st.info(safe)
    with st.container(key=f"metric-{index}"):
        st.metric(safe, safe, safe)
    with st.container(key=f"button-{index}"):
        st.button(safe, key=f"b{index}")
    with st.container(key=f"expander-{index}"):
        st.expander(safe)
    with st.container(key=f"tab-{index}"):
        st.tabs([safe])
st.markdown("done")
"""
MARKDOWN = '[data-testid="stMarkdownContainer"], [data-testid="stCaptionContainer"]'
KINDS = ("markdown", "title", "caption", "info", "metric", "button", "expander", "tab")
# What markup would make, had it rendered.
RENDERED = "a, img, strong, em, del, code, pre, table, blockquote, ul, ol, h2, h3, h4, h5, h6, hr, .katex, .stMarkdownColoredText, .stMarkdownColoredBackground, .stMarkdownBadge, [role=img], input"


def cases(leak: str) -> list[str]:
    return [
        f"/![x]({leak}/image.png)",
        "Your account expired: [log in again](https://evil.test/login)",
        "**bold** __bold__ *em* _em_ ~~gone~~ ~gone~",
        "$$x$$ and $y^2$ and \\(z\\)",
        ":smile: :+1: :red[red] :blue-background[bg] :green-badge[badge] :material/home: :streamlit: :help[tip] :small[s]",
        f"<img src={leak}/html.png> <b>bold</b> <https://evil.test/autolink> <evil@evil.test>",
        "https://evil.test/a www.evil.test/b mail evil@evil.test xmpp:me@evil.test",
        "# heading",
        "> quote",
        "- item",
        "1. item",
        "| a | b |\n|---|---|\n| c | d |",
        "`code` and ``more``",
        "```\nfenced\n```",
        "---",
        "a\\b \\* \\",
        "x -> y <- z <-> w -- v >= u <= t ~= s",
        f"line\n# heading\n![i]({leak}/newline.png)",
        "[ref]\n\n[ref]: https://evil.test/ref",
        "&lt;b&gt; &amp; &#42;x&#42;",
        "note[^1]\n\n[^1]: https://evil.test/footnote",
        "- [x] task",
        "ümlaut 日本 🙂 tab\there",
        "",
    ]


def shown(text: str) -> str:
    """What the reader should see: the same characters on one line, spaces as HTML shows them."""
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def leak_server() -> Iterator[tuple[str, list[str]]]:
    with recording_server() as server:
        yield server


@pytest.fixture(scope="module")
def app(tmp_path_factory, leak_server) -> Iterator[tuple[str, list[str]]]:
    script = tmp_path_factory.mktemp("escaping") / "escaping_app.py"
    script.write_text(APP)
    texts = cases(leak_server[0])
    env = os.environ | {"ESCAPING_CASES": json.dumps(texts), "PYTHONPATH": str(ROOT)}
    with streamlit_server(Path(script), env) as url:
        yield url, texts


def test_hostile_text_reads_as_itself_and_renders_nothing(app, browser: Browser, leak_server):
    url, texts = app
    leak, leak_requests = leak_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(url)
    page.get_by_text("done", exact=True).wait_for(timeout=90_000)
    wait_until_idle(page)
    problems = []
    for index, text in enumerate(texts):
        for kind in KINDS:
            block = page.locator(f".st-key-{kind}-{index}")
            markdown = block.locator(MARKDOWN)
            if text and not markdown.count():
                problems.append(f"{kind} {text!r}: nothing rendered")
                continue
            for seen in markdown.all_inner_texts():
                if shown(seen.replace(WORD_JOINER, "")) != shown(text):
                    problems.append(f"{kind} {text!r}: shows {seen!r}")
            found = markdown.locator(RENDERED)
            if found.count():
                problems.append(
                    f"{kind} {text!r}: renders {found.first.evaluate('e => e.outerHTML')[:160]}"
                )
            if kind != "title" and markdown.locator("h1").count():
                problems.append(f"{kind} {text!r}: renders a heading")
    page.close()
    assert problems == [], "\n".join(problems)
    hosts = {urlsplit(u).netloc for u in requested}
    assert urlsplit(leak).netloc not in hosts and "evil.test" not in hosts
    assert leak_requests == []
