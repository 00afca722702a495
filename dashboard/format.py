"""How numbers and text read on the dashboard."""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable

import pandas as pd
import pycountry
import streamlit as st
from pandas.io.formats.style import Styler

from pipeline.stats import countries
from pipeline.stats.metrics import duration_text

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


# --- Measures: one formatter per kind, used by cards, tables, captions and insights alike. ---
# Decisions (docs/dashboard.md, "How numbers read"): counts in full with thousands separators
# (no "12.3k": a card and its table row must read the same), rates with one decimal
# ("38.9%"), durations as Plausible writes them ("45s", "1m 31s", "1h 02m"), views per visit
# with two decimals, changes as whole signed percents ("+12%"), and "—" for anything missing.
MISSING = "—"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def number(value: float | None) -> str:
    """Visitors, visits, pageviews, events: "1,234"."""
    return MISSING if _missing(value) else f"{round(value):,}"


def percent(fraction: float | None) -> str:
    """A rate from a fraction (0.389 → "38.9%")."""
    return MISSING if _missing(fraction) else f"{fraction * 100:.1f}%"


def duration(seconds: float | None) -> str:
    """ "45s", "1m 31s", "1h 02m" (an hour or more drops the seconds, as Plausible does)."""
    return MISSING if _missing(seconds) else duration_text(seconds)


def depth(value: float | None) -> str:
    """Scroll depth, already in percent (0..100): "45%", as Plausible writes it."""
    return MISSING if _missing(value) else f"{round(value):d}%"


def ratio(value: float | None) -> str:
    """Views per visit: "2.31"."""
    return MISSING if _missing(value) else f"{value:.2f}"


def dollars(value: float | None) -> str:
    """Money in US dollars: "$9.63", "$1,204.50"."""
    return MISSING if _missing(value) else f"${value:,.2f}"


def change(value: float | None) -> str:
    """A percent change ("+12%", "-3%"); "—" when there is no baseline to compare with."""
    return MISSING if _missing(value) else f"{value:+.0f}%"


def change_arrow(value: float | None) -> str:
    """`st.metric`'s `delta_arrow` for `change(value)`: no arrow (and no colour, see
    `change_color`) for "—", whose sign means nothing."""
    return "off" if _missing(value) else "auto"


def change_color(value: float | None, lower_is_better: bool = False) -> str:
    """`st.metric`'s `delta_color` for `change(value)`."""
    if _missing(value):
        return "off"
    return "inverse" if lower_is_better else "normal"


# Every measure column the pipeline's frames carry, by kind. Unknown columns are left alone.
FORMATTERS: dict[str, Callable[[float | None], str]] = {
    "visitors": number,
    "visits": number,
    "pageviews": number,
    "events": number,
    "entrances": number,
    "exits": number,
    "conversions": number,
    "hits": number,
    "bounce_rate": percent,
    "conversion_rate": percent,
    "exit_rate": percent,
    "drop_off": percent,
    "share": percent,
    "visit_duration": duration,
    "time_on_page": duration,
    "scroll_depth": depth,
    "views_per_visit": ratio,
    "change": change,  # a table row's change of visitors against the comparison
}


def measure(name: str, value: float | None) -> str:
    """`value` of the measure `name` (a column name such as "bounce_rate"), formatted its one way."""
    return FORMATTERS.get(name, number)(value)


def measure_column(name: str, label: str, help: str | None = None) -> dict:
    """The `column_config` entry for the measure column `name`: the human `label` (units are in
    the values, "38.9%", "1m 31s"), right-aligned. The column keeps its numbers, so it sorts
    as numbers; what a cell shows comes from `styled()`, which uses the same formatters as the
    cards (a NumberColumn `format` would win over the Styler and cannot write "1m 31s")."""
    return st.column_config.Column(label, help=help, alignment="right")


def styled(table: pd.DataFrame) -> Styler:
    """`table` for `st.dataframe`: every known measure column shown through its formatter,
    the numbers underneath kept for sorting and selection."""
    known = {column: FORMATTERS[column] for column in table.columns if column in FORMATTERS}
    return table.style.format(known, na_rep=MISSING)


# --- Countries ---
def _flag(code: str) -> str:
    # A flag emoji is the two regional-indicator symbols of the ISO alpha-2 code.
    return "".join(chr(0x1F1E6 + ord(letter) - ord("A")) for letter in code.upper())


def country_name(code: str) -> str:
    """The country's short English name ("Germany"); "Unknown" for no code."""
    return (countries.country_name(code) or code) if code else "Unknown"


def country_label(code: str) -> str:
    """ "🇩🇪 Germany" from "DE"; "Unknown" for ''; a code pycountry does not know shows as
    itself (with no flag, which could be wrong)."""
    if not code:
        return "Unknown"
    found = pycountry.countries.get(alpha_2=code) if len(code) == 2 else None
    return f"{_flag(code)} {country_name(code)}" if found else code


# --- The live feed ---
LIVE_FEED_COLUMNS = ["Time", "Event", "Page", "Source", "Country", "Device"]


def live_feed(events: pd.DataFrame, tz: str, limit: int = 50) -> pd.DataFrame:
    """The newest `limit` events as the real-time page shows them: local time of day in `tz`
    (HH:MM:SS), event ("Pageview" or the custom event's own name), page, source, country with
    its flag, device. Only these human columns, never the stored field names."""
    newest = events.sort_values("ts", ascending=False).head(limit)
    name = newest["name"].astype(str)
    return pd.DataFrame(
        {
            "Time": newest["ts"].dt.tz_convert(tz).dt.strftime("%H:%M:%S"),
            "Event": name.where(name != "pageview", "Pageview"),
            "Page": newest["path"].astype(str),
            "Source": newest["referrer_source"].astype(str).replace("", "Direct / None"),
            "Country": newest["country"].astype(str).map(country_label),
            "Device": newest["device"].astype(str).replace("", "Unknown"),
        },
        columns=LIVE_FEED_COLUMNS,
    ).reset_index(drop=True)
