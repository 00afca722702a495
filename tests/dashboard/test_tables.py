"""The pure parts of the breakdown tables, chips and empty states (dashboard/tables.py), and the
view's handling of bad filter input."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard import format as fmt
from dashboard.format import MISSING, WORD_JOINER, md_escape
from dashboard.tables import (
    CHIP_CHARS,
    SHARE,
    TALLEST,
    TOP_ROWS,
    chip_label,
    display_frame,
    drop_sentence,
    filter_text,
    filters_of,
    shorten,
    table_height,
    value_label,
)
from dashboard.view import FILTER_DIMENSIONS, View, view_from_params, view_to_params
from pipeline.enrich.steps import DROP_EXPLANATIONS, DropReason
from pipeline.stats import metrics
from pipeline.stats.metrics import Filter
from pipeline.store.query import COLUMNS
from tests.dashboard.test_dashboard_escaping import parsed_text


def breakdown(values: list[str], visitors: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "value": values,
            "visitors": visitors,
            "visits": [v + 1 for v in visitors],
            "pageviews": [2 * v for v in visitors],
            "bounce_rate": [0.5] * len(values),
            "visit_duration": [61.0] * len(values),
        }
    )


def test_every_filter_dimension_is_a_column_of_the_events_a_filter_can_match():
    # A row click or the sidebar box may add any of them: filter_events must find the column.
    assert set(FILTER_DIMENSIONS) <= set(COLUMNS)
    events = pd.DataFrame(
        {c: ["x"] for c in COLUMNS} | {"ts": [pd.Timestamp("2026-01-01", tz="UTC")]}
    )
    for dimension in FILTER_DIMENSIONS:
        assert len(metrics.filter_events(events, {dimension: "x"})) == 1, dimension
        assert metrics.filter_events(events, {dimension: "y"}).empty, dimension
    assert "hostname" in FILTER_DIMENSIONS


def test_entry_and_exit_pages_count_entrances_and_exits_and_filter_by_the_page():
    table = breakdown(["/a", "/b"], [3, 1])
    assert "entrances" in display_frame(table, "entry_page")
    assert "exits" in display_frame(table, "exit_page")
    assert "visits" not in display_frame(table, "exit_page")
    # A page's own visits are the visits that viewed it (Plausible's Pages report).
    assert "visits" in display_frame(table, "path")
    assert "visits" in display_frame(table, "referrer_source")
    assert filters_of("entry_page", "/a") == {"path": "/a"}
    assert filters_of("exit_page", "/b") == {"path": "/b"}
    assert filters_of("referrer_source", "Google") == {"referrer_source": "Google"}


def test_the_share_is_of_the_given_total_and_sits_after_visitors():
    table = breakdown(["Google", "Direct / None"], [30, 10])
    shown = display_frame(table, "referrer_source")
    assert list(shown.columns[:3]) == ["value", "visitors", SHARE]
    assert shown[SHARE].tolist() == [75.0, 25.0]
    assert display_frame(table, "referrer_source", total=80)[SHARE].tolist() == [37.5, 12.5]
    # The table's own numbers are not changed.
    assert shown["visitors"].tolist() == [30, 10]
    no_visitors = display_frame(breakdown(["a"], [0]), "referrer_source")
    assert no_visitors[SHARE].tolist() == [0.0]


def test_conversion_tables_keep_their_rate_and_get_no_share():
    goals = pd.DataFrame(
        {"value": ["Signup"], "visitors": [4], "events": [5], "conversion_rate": [0.1]}
    )
    assert SHARE not in display_frame(goals, "name")


def test_values_read_as_people_say_them():
    assert value_label("country", "DE").endswith("Germany")
    assert value_label("country", "") == "Unknown"
    assert value_label("referrer_source", "") == "(none)"
    assert value_label("path", "/pricing") == "/pricing"


def test_tables_are_as_tall_as_their_rows_until_they_scroll():
    assert table_height(1) == table_height(TOP_ROWS) == "content"
    assert isinstance(table_height(TALLEST + 1), int)
    assert table_height(TALLEST + 1) == table_height(500)


@pytest.mark.parametrize(
    "value",
    [
        "[click me](https://evil.test/x)",
        "**bold** $$x$$ <img src=x onerror=alert(1)>",
        "/" + "very-long-path/" * 20,
        ":material/home: :smile: www.evil.test",
    ],
)
def test_chips_show_values_escaped_and_short(value):
    label = chip_label(Filter("path", "is", (value,)))
    shown = parsed_text(label).replace(WORD_JOINER, "")
    assert shown == f"✕ Page is {shorten(value)}"
    assert len(shorten(value)) <= CHIP_CHARS
    assert shorten(value) == value or shorten(value).endswith("…")


def test_a_country_chip_names_the_country():
    assert "Germany" in parsed_text(chip_label(Filter("country", "is", ("DE",))))


@pytest.mark.parametrize(
    ("item", "text"),
    [
        (Filter("path", "is_not", ("/blog",)), "Page is not /blog"),
        (Filter("path", "contains", ("blog",)), "Page contains blog"),
        (Filter("path", "is", ("/a", "/b")), "Page is /a or /b"),
        (Filter("path", "is", ("/a", "/b", "/c", "/d")), "Page is /a or /b or 2 more"),
        (Filter("props.plan", "is", ("pro",)), "Property plan is pro"),
        (Filter("hostname", "is_not", ("staging.e.com",)), "Hostname is not staging.e.com"),
        (Filter("country", "is_not", ("DE", "FR")), "Country is not 🇩🇪 Germany or 🇫🇷 France"),
    ],
)
def test_chips_say_the_operator_and_every_value(item, text):
    assert filter_text(item) == text
    assert parsed_text(chip_label(item)).replace(WORD_JOINER, "") == f"✕ {text}"


def test_a_property_chip_with_markup_reads_as_text():
    item = Filter("props.**k**", "contains", ("[x](https://evil.test)",))
    shown = parsed_text(chip_label(item)).replace(WORD_JOINER, "")
    assert shown == "✕ Property **k** contains [x](https://evil.test)"


def test_change_time_on_page_and_scroll_depth_read_as_the_cards_write_them():
    table = breakdown(["/a", "/b"], [10, 4]).assign(
        time_on_page=[91.0, float("nan")],
        scroll_depth=[45.4, float("nan")],
        exit_rate=[0.25, 0.0],
        change=pd.Series([12.4, None], dtype=object),
    )
    html = fmt.styled(display_frame(table, "path")).to_html()
    for text in ("1m 31s", "45%", "25.0%", "+12%", "50.0%", "1m 01s"):
        assert text in html, text
    assert html.count(MISSING) == 3  # no time on page, no scroll depth, no baseline
    assert fmt.measure("scroll_depth", 100.0) == "100%"
    assert fmt.measure("change", -3.2) == "-3%"
    assert fmt.measure("time_on_page", None) == MISSING


def plain(sentence: str | None) -> str:
    """The text a reader sees, past the sentence's own bold (data in it is escaped)."""
    return parsed_text(str(sentence).replace("**", "")).replace(WORD_JOINER, "")


def test_the_drop_sentence_says_how_many_and_the_main_reason():
    dropped = pd.Series({"foreign_host": 7, "bot": 2})
    sentence = drop_sentence(dropped)
    assert sentence is not None
    text = plain(sentence)
    assert text.startswith(
        "9 hit(s) arrived in this period and were dropped, most (7) as foreign_host"
    )
    assert DROP_EXPLANATIONS[DropReason.FOREIGN_HOST] in text
    only = plain(drop_sentence(pd.Series({"bot": 3})))
    assert "all as bot" in only
    assert drop_sentence(pd.Series(dtype="int64")) is None
    # An explanation with markup-like text (`<domain>`) reads as itself.
    unknown = drop_sentence(pd.Series({"unknown_site": 1}))
    assert "<domain>" in plain(unknown)
    assert md_escape("unknown_site") in unknown


def test_a_url_with_an_unknown_dimension_or_a_bad_period_falls_back_to_defaults():
    view = view_from_params(
        {
            "period": "forever",
            "from": "2026-02-30",
            "compare": "never",
            "tz": "Mars/Olympus",
            "f.nope": "x",
            "f.entry_page": "/a",  # a table's dimension, not a filter
            "f.path": "",  # no value
            "f.referrer_source": ["Bing", "Google"],  # several values, OR-ed
        },
        "example.com",
    )
    assert view == View(
        site="example.com", filters=(Filter("referrer_source", "is", ("Bing", "Google")),)
    )
    assert view_to_params(view) == {
        "site": "example.com",
        "period": "30d",
        "f.referrer_source": ["Bing", "Google"],
    }


def test_markup_and_long_filter_values_survive_the_url():
    value = "[x](https://evil.test) " + "y" * 500
    view = View(site="example.com").with_filter("utm_campaign", value)
    assert view_from_params(view_to_params(view), "example.com") == view
