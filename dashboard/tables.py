"""The breakdown tables every page shows, the filter chips, and what a page says when there is
nothing to show.

A row click filters the whole dashboard. Streamlit keeps a dataframe's selection in its widget
state and offers no way to clear it, so a table that re-read its selection on every run would
re-add the filter forever (and index a now shorter table). Instead the selection is read once,
in the widget's callback, and every table's key carries a generation that the callback bumps:
the next run draws fresh tables with nothing selected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial

import pandas as pd
import streamlit as st
from botocore.exceptions import BotoCoreError, ClientError

from dashboard import format as fmt
from dashboard.context import current_view, set_view, today
from dashboard.format import md_escape
from dashboard.navigation import offers_operator_pages, pages
from dashboard.view import (
    OPERATOR_WORDS,
    PROPS,
    View,
    dimension_label,
    is_filterable,
    period_dates,
    utc_bounds,
)
from pipeline.errors import PipelineError
from pipeline.stats import metrics
from pipeline.stats.metrics import Filter

TOP_ROWS = 10  # rows a table shows until "Show all" is on
TALLEST = 25  # rows a table grows to before it scrolls inside
CHIP_CHARS = 40  # a chip shows at most this many characters of a value
CHIP_VALUES = 2  # a chip names this many values of a filter, then "or N more"
GENERATION = "table_generation"
SHARE = "visitor_share"  # percent of the table's visitors (not a fraction: see display_frame)
# Human headers (Plausible's words); a column not named here keeps its own name.
HEADERS = {
    "visitors": "Visitors",
    "visits": "Visits",
    "entrances": "Entrances",
    "exits": "Exits",
    "pageviews": "Pageviews",
    "events": "Events",
    "bounce_rate": "Bounce rate",
    "visit_duration": "Visit duration",
    "conversion_rate": "Conversion rate",
    "time_on_page": "Time on page",
    "scroll_depth": "Scroll depth",
    "exit_rate": "Exit rate",
    "change": "Change",
}
HELP = {
    "change": "Visitors against the comparison period (— when it had none)",
    "time_on_page": "Average engaged time on the page (— without data)",
    "scroll_depth": "Average of the visitors' deepest scroll on the page (— without data)",
    "exit_rate": "Exits from the page, as a part of its pageviews",
}
# What `visits` counts where it is not "visits": metrics.breakdown counts each visit once, for
# its first (entry) or last (exit) page. A page's own `visits` (dimension "path") are the visits
# that viewed it, as Plausible counts them.
VISITS_ARE = {"entry_page": "entrances", "exit_page": "exits"}
# Tables of a dimension the view cannot filter by, and what a row click filters instead: an
# entry or exit page filters by that page.
FILTER_AS = {"entry_page": "path", "exit_page": "path"}


def value_label(dimension: str, value: str) -> str:
    """How a value of `dimension` reads in a table or chip: countries by name with a flag."""
    if dimension == "country":
        return fmt.country_label(value)
    return value if value != "" else "(none)"


def filter_text(item: Filter, limit: int = CHIP_CHARS) -> str:
    """A filter as a reader says it, not escaped: "Page is not /blog", "Page is /a or /b",
    "Property plan contains pro"; each value cut to `limit` characters, and beyond CHIP_VALUES
    values "or N more"."""
    values = [shorten(value_label(item.dimension, v), limit) for v in item.values]
    named = " or ".join(values[:CHIP_VALUES])
    if len(values) > CHIP_VALUES:
        named += f" or {len(values) - CHIP_VALUES} more"
    word = OPERATOR_WORDS.get(item.operator, item.operator)
    return f"{dimension_label(item.dimension)} {word} {named}"


def shorten(text: str, limit: int = CHIP_CHARS) -> str:
    """`text` cut to `limit` characters with an ellipsis, so a long value keeps a chip small."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def chip_label(item: Filter) -> str:
    """The remove-button text of a filter: escaped, so a value with markup reads as text."""
    return f"✕ {md_escape(filter_text(item))}"


def display_frame(table: pd.DataFrame, dimension: str, total: float | None = None) -> pd.DataFrame:
    """`table` (a `metrics.breakdown`-like frame, `value` first) as a table shows it: values
    labelled, `visits` renamed to what it counts, and the percent of visitors (SHARE) when the
    table has visitors; `total` is what the share is of (the table's visitors by default)."""
    shown = table.assign(value=[value_label(dimension, str(v)) for v in table["value"]])
    if dimension in VISITS_ARE:
        shown = shown.rename(columns={"visits": VISITS_ARE[dimension]})
    if "visitors" in shown and "conversion_rate" not in shown:
        whole = float(total if total is not None else table["visitors"].sum())
        # In percent: a progress column shows its own printf format, not the Styler's text.
        share = shown["visitors"].astype(float) * 100 / whole if whole else 0.0
        at = list(shown.columns).index("visitors") + 1
        shown.insert(at, SHARE, share)
    return shown


def table_height(rows: int) -> int | str:
    """Every row visible and no blank space up to TALLEST rows; an inner scroll beyond."""
    return "content" if rows <= TALLEST else (TALLEST + 1) * 35 + 3


def column_config(columns: list[str], label: str) -> dict[str, object]:
    config: dict[str, object] = {"value": st.column_config.TextColumn(label)}
    for column in columns:
        if column == SHARE:
            config[column] = st.column_config.ProgressColumn(
                "Share",
                help="This row's visitors, as a part of all visitors in the table",
                format="%.1f%%",  # as dashboard.format.percent writes a rate: one decimal
                min_value=0.0,
                max_value=100.0,
            )
        elif column in HEADERS:
            config[column] = fmt.measure_column(column, HEADERS[column], HELP.get(column))
    return config


def filters_of(dimension: str, value: str) -> dict[str, str]:
    """What a click on the row of `value` filters by."""
    return {FILTER_AS.get(dimension, dimension): value}


def _on_select(
    widget: str, values: list[str], to_filters: Callable[[str], Mapping[str, str]]
) -> None:
    """Runs once per click, before the rerun: the clicked row's value becomes a filter, and the
    tables of the next run are new widgets with no selection."""
    rows = st.session_state[widget].selection.rows
    st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1
    # An empty value ("(none)") is no filter the URL can carry (`f.x=` is ignored on load).
    if not rows or not 0 <= rows[0] < len(values) or values[rows[0]] == "":
        return
    view = current_view()
    for dimension, value in to_filters(values[rows[0]]).items():
        view = view.with_filter(dimension, value)
    set_view(view)


def filterable_table(
    table: pd.DataFrame,
    dimension: str,
    key: str,
    label: str | None = None,
    *,
    to_filters: Callable[[str], Mapping[str, str]] | None = None,
    total: float | None = None,
) -> None:
    """A breakdown table (`value` and measures); a row click filters the whole dashboard by
    that row's value (or by `to_filters(value)`). Shows the top TOP_ROWS rows, with a "Show
    all" toggle below when there are more."""
    everything = st.session_state.get(f"{key}_all", False)
    rows = table if everything else table.head(TOP_ROWS)
    if total is None and "visitors" in table:
        total = float(table["visitors"].sum())  # of the whole table, not only the rows shown
    shown = display_frame(rows, dimension, total=total)
    clickable = to_filters is not None or is_filterable(FILTER_AS.get(dimension, dimension))
    widget = f"{key}.{st.session_state.get(GENERATION, 0)}"
    name = label or dimension_label(dimension)
    st.dataframe(
        fmt.styled(shown),
        key=widget,
        hide_index=True,
        width="stretch",
        height=table_height(len(shown)),
        on_select=partial(
            _on_select,
            widget,
            rows["value"].astype(str).tolist(),  # row i of what is shown
            to_filters or partial(filters_of, dimension),
        )
        if clickable
        else "ignore",
        selection_mode="single-row",
        column_config=column_config(list(shown.columns), name),
    )
    if len(table) > TOP_ROWS:
        st.toggle(f"Show all ({len(table):,})", key=f"{key}_all")


def chip_key(item: Filter) -> str:
    return f"chip-{item.operator}-{item.dimension}"


def filter_chips(view: View, remove: Callable[[str, str], None]) -> None:
    """One button per filter; clicking it removes that filter."""
    if not view.filters:
        return
    chips = st.columns(len(view.filters) + 1)
    for column, item in zip(chips, view.filters, strict=False):
        # markdown-safe: chip_label and filter_text's text pass through md_escape
        column.button(
            chip_label(item),
            key=chip_key(item),
            on_click=remove,
            args=(item.dimension, item.operator),
            help=f"Remove this filter ({md_escape(filter_text(item, 200))})",
        )


def _clear_filters() -> None:
    set_view(replace(current_view(), filters=()))


def _health_page() -> st.Page:
    return next(page for page in pages() if page.title == "Pipeline health")


def drop_sentence(dropped: pd.Series) -> str | None:
    """How many hits were dropped and the main reason, in one Markdown-safe sentence; None when
    nothing was dropped."""
    from pipeline.enrich.steps import DROP_EXPLANATIONS

    total = int(dropped.sum()) if len(dropped) else 0
    if not total:
        return None
    reason = str(dropped.idxmax())
    share = int(dropped.max())
    why = DROP_EXPLANATIONS.get(reason, "")
    return (
        f"**{total:,}** hit(s) arrived in this period and were dropped, "
        f"{'all' if share == total else f'most ({share:,})'} as **{md_escape(reason)}**"
        + (f": {md_escape(why)}." if why else ".")
    )


def empty_state(view: View, filtered: bool) -> None:
    """What a page shows instead of numbers when the view has no events."""
    if filtered:
        described = " and ".join(f"**{md_escape(filter_text(item))}**" for item in view.filters)
        # markdown-safe: `described` is made of md_escape()d names and values
        st.info(
            f"No events match {described} in this period. Remove a filter with the ✕ on its "
            "chip above, or widen the dates."
        )
        st.button("Remove all filters", key="empty_clear_filters", on_click=_clear_filters)
        return
    try:
        dropped = _dropped(view)
    except (PipelineError, ClientError, BotoCoreError):
        dropped = pd.Series(dtype="int64")  # the sentence below is still right
    sentence = drop_sentence(dropped)
    if sentence:
        # markdown-safe: drop_sentence escapes the reason and its explanation
        st.warning(
            f"No events for **{md_escape(view.site)}** in this period, but {sentence}",
            icon="⚠️",
        )
        if offers_operator_pages():  # a link to a page not offered would fail
            st.page_link(_health_page(), label="Dropped hits by reason: Pipeline health", icon="🩺")
        return
    st.info(
        f"No events for **{md_escape(view.site)}** in this period yet. Add the script to your pages "
        '(`<script defer data-domain="…" src="https://<collector>/script.js"></script>`, see the '
        "README's *Install on your site*), or pick a wider date range."
    )


def _dropped(view: View) -> pd.Series:
    from dashboard.data import drops  # the backend's module; imported when a page is empty

    first, last = period_dates(view, today(view))
    return drops(view.site, *utc_bounds(first, last, view.tz))


def dimension_values(view: View, dimension: str) -> list[str]:
    """The values `dimension` (a column or "props.<key>") takes in the view (its filters on
    other dimensions applied), most visitors first: what the "Add a filter" box offers. Read
    from the cached events of the period, only when someone opens the box and picks a
    dimension."""
    frame = metrics.filter_events(
        period_events(view), tuple(f for f in view.filters if f.dimension != dimension)
    )
    frame = frame[frame["name"] != metrics.ENGAGEMENT]  # carries no value a filter could pick
    if dimension.startswith(PROPS):
        key = dimension[len(PROPS) :]
        column = frame["props"].map(lambda p: str(p.get(key, "")) if isinstance(p, dict) else "")
    elif dimension in frame:
        column = frame[dimension].astype(str)
    else:
        return []
    if frame.empty:
        return []
    counts = frame.groupby(column.rename("value"), observed=True)["visitor"].nunique()
    ranked = counts.reset_index().sort_values(["visitor", "value"], ascending=[False, True])
    return [value for value in ranked["value"] if value != ""]


def period_events(view: View) -> pd.DataFrame:
    """The raw events of the view's period, unfiltered (from the cache every page shares)."""
    from dashboard.data import events

    first, last = period_dates(view, today(view))
    return events(view.site, *utc_bounds(first, last, view.tz))


def property_keys(view: View) -> list[str]:
    """Every custom property key of the period's events, most events first (for the filter
    box's dimensions and the Goals page's property breakdown)."""
    return metrics.property_keys(period_events(view))
