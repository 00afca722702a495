"""How numbers and text read on the dashboard."""

from __future__ import annotations

import re
import string

# Streamlit renders titles, captions, alerts, metric and widget labels, tabs, expanders and
# buttons as Markdown (GFM, LaTeX, `:emoji:`, `:color[…]` directives, `:material/…:` icons).
# CommonMark lets a backslash escape every ASCII punctuation character, and the escaped
# character is always literal: that disarms links, images, emphasis, headings, HTML, code,
# tables, `$…$` maths and directives at parse time.
_ESCAPED = frozenset(string.punctuation)
# Some plugins work later, on the parsed text where escapes are already gone: GFM's second
# autolink pass (`https://…`, `www.…`, `a@b.c`), `:emoji:` and `:material/…:` shortcodes, and
# Streamlit's typography (` -> ` becomes an arrow). An invisible WORD JOINER breaks each of
# their patterns: after every `:`, before every `.`, and after a `<`, `-`, `>` or `~` that
# starts a word.
WORD_JOINER = "\u2060"
_TYPOGRAPHY_STARTS = frozenset("<->~")
# A line break would start a new block (a heading, a list, a quote) and leading spaces an
# indented code block: data stays on one line, its spaces as HTML shows them anyway (one).
_SPACES = re.compile(r"[\x00-\x20\x7f\u2028\u2029]+")


def _escaped(char: str, starts_word: bool) -> str:
    if char == ":":
        return "\\:" + WORD_JOINER
    if char == ".":
        return WORD_JOINER + "\\."
    if starts_word and char in _TYPOGRAPHY_STARTS:
        return "\\" + char + WORD_JOINER
    return "\\" + char if char in _ESCAPED else char


def md_escape(text: object) -> str:
    """`text` (any value, as `str()` shows it) made literal for Streamlit's Markdown: it reads
    as the same characters, and nothing in it renders as markup or fetches anything."""
    flat = _SPACES.sub(" ", str(text)).strip(" ")
    return "".join(
        _escaped(char, index == 0 or flat[index - 1].isspace()) for index, char in enumerate(flat)
    )


def number(value: float) -> str:
    return f"{value:,.0f}"


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def duration(seconds: float) -> str:
    seconds = round(seconds)
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{rest}s"


def change(value: float | None) -> str | None:
    """A percent change for `st.metric`'s delta; None (no delta) from a missing baseline."""
    return None if value is None else f"{value:+.0f}%"
