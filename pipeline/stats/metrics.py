"""Metric maths on the events frame: pure pandas, shared by the dashboard and notebooks.

Definitions follow Plausible's (its session cache and stats queries), so a site owner moving
from Plausible sees the same numbers for the same traffic:

- **Visit**: one visitor's events, each at most 30 minutes after the visit's previous event
  (timestamps truncated to the second, as Plausible stores them). Plausible's session cache
  keeps a visit for 30 minutes after its last event (`global_ttl`, expired every 10 s) and
  its lookup also asks for at most 30 whole minutes: live, a gap of up to 30:00 continues and
  one past it starts a new visit (between 30:00 and 30:10 Plausible itself varies; we end it).
- **Visits across the UTC salt change**: the visitor hash's salt rotates at UTC midnight. For
  a hit in the first 31 minutes of a UTC day (30 and a margin) the consumer also stores
  `prev_visitor`, the same person's hash under the previous day's salt; the visit of that hash
  continues when the gap rule holds (Plausible looks its session up under both ids). Unique
  visitors stay distinct hashes (Plausible counts `uniq(user_id)`), so that person is one
  visit and two visitors.
- **Engagement events** (`engagement`, sent by the tracker when a page is hidden or left, with
  engaged time and scroll depth) keep a visit alive (they count for the gap rule) but are not
  pageviews or custom events, never un-bounce a visit, never extend its duration, never start
  one (an engagement with no visit around it is ignored, as Plausible drops it).
- **Unique visitors**: distinct visitor hashes of the (non-engagement) events. One person on two
  days is two hashes by design, so over several days unique visitors are the sum of each day's.
- **Bounce rate**: visits with exactly one event (pageview or custom event), over visits. With a
  page filter: over the visits that *entered* on a matching page.
- **Visit duration**: the visit's last event time minus its first (engagement excluded), averaged
  over visits. With a page filter: over the visits that contain a matching page.
- **Views per visit**: pageviews / visits (with a page filter: the page's pageviews over the
  visits that contain it; Plausible does not show this number under a page filter).
- **Exit rate** of a page: visits that ended there / pageviews of the page.
- **Time on page**: engaged seconds on the page / the number of (visit, page) pairs with
  engagement on it. A page without any engagement in the range gets Plausible's legacy figure:
  in each visit, the time from an event on the page to the visit's next event, summed per page,
  over the number of distinct (visit, page, next page) transitions to another page.
- **Scroll depth** of a page: the maximum depth (0-100) per (visit, page) among its engagement
  events, averaged over those pairs.
- **Current visitors**: distinct visitors with an event in the last 5 minutes.
- **Filters** (`Filter`): is / is not / contains (case-insensitive), several values OR-ed,
  filters AND-ed. A filter on a visit dimension (source, UTM, place, device, entry/exit page)
  keeps whole visits by their first event's value, as Plausible's session filters do. A filter
  on an event dimension (page, hostname, event name, `props.<key>`) keeps the matching events,
  and the visits that contain one (measured whole: duration, bounce).
- **Goals**: a custom event name, or a page path starting with "/"; `*` matches within one
  path segment and `**` across segments (in event names `*` matches anything).

Edge cases, written down once: every metric of an empty frame is 0 (rates too, never NaN),
except time on page and scroll depth, which are NaN ("—") without data; a percent change from a
zero or missing baseline is `None` (shown as "—"), except 0 → 0, which is 0 %.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

PAGEVIEW = "pageview"
ENGAGEMENT = "engagement"
# A new visit starts after a gap of more than this (Plausible's session cache lifetime).
VISIT_GAP = pd.Timedelta(minutes=30)
CURRENT_WINDOW = pd.Timedelta(minutes=5)
MAX_SCROLL_DEPTH = 100
NONE_VALUE = "(none)"  # a property breakdown's value for events without the key
# Dimensions that describe a whole visit: a visit counts for the value its first event has.
VISIT_DIMENSIONS = (
    "referrer_source", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_term",
    "utm_content", "country", "region", "city", "browser", "browser_version", "os",
    "os_version", "device", "screen",
)  # fmt: skip
# Visit dimensions a filter can name besides those: where the visit entered and left.
VISIT_PAGES = ("entry_page", "exit_page")
# Dimensions of single events (Plausible's event:*): a filter keeps the matching events.
EVENT_DIMENSIONS = ("path", "hostname", "name")
PROPS_PREFIX = "props."
OPERATORS = ("is", "is_not", "contains")


@dataclass(frozen=True)
class Summary:
    visitors: int
    visits: int
    pageviews: int
    views_per_visit: float
    bounce_rate: float  # 0..1
    visit_duration: float  # seconds

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / denominator if denominator else 0.0


# --- Filters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """One filter: `dimension` (a frame column or "props.<key>"), an operator, OR-ed values."""

    dimension: str
    operator: str = "is"
    values: tuple[str, ...] = ()

    @property
    def on_visit(self) -> bool:
        return self.dimension in VISIT_DIMENSIONS or self.dimension in VISIT_PAGES


def is_property(dimension: str) -> bool:
    return dimension.startswith(PROPS_PREFIX) and len(dimension) > len(PROPS_PREFIX)


def known_dimension(dimension: str) -> bool:
    return (
        dimension in VISIT_DIMENSIONS
        or dimension in VISIT_PAGES
        or dimension in EVENT_DIMENSIONS
        or is_property(dimension)
    )


def filter_from(dimension: str, operator: str = "is", values: str | Iterable[str] = ()) -> Filter:
    """A validated filter; a ValueError's message is a sentence to show as it is."""
    if operator not in OPERATORS:
        raise ValueError(f"Unknown filter operator {operator!r}: use is, is_not or contains.")
    if not known_dimension(dimension):
        raise ValueError(f"Unknown filter dimension {dimension!r}.")
    found = (values,) if isinstance(values, str) else tuple(str(v) for v in values)
    if not found:
        raise ValueError(f"The filter on {dimension!r} has no value.")
    return Filter(dimension, operator, found)


FilterLike = Filter | Mapping[str, str] | Iterable[Filter | tuple[str, str]] | None


def as_filters(filters: FilterLike) -> tuple[Filter, ...]:
    """Filters from a `Filter`, several, legacy (dimension, value) pairs or a {dimension: value}
    dict (equality, as before operators existed)."""
    if not filters:
        return ()
    if isinstance(filters, Filter):
        return (filters,)
    if isinstance(filters, Mapping):
        return tuple(filter_from(d, "is", (str(v),)) for d, v in filters.items())
    found = []
    for item in filters:
        if isinstance(item, Filter):
            found.append(item)
        else:
            dimension, value = item
            found.append(filter_from(dimension, "is", (str(value),)))
    return tuple(found)


def property_values(events: pd.DataFrame, key: str) -> pd.Series:
    """Every event's value of custom property `key`, "(none)" where it has none."""
    if "props" not in events or events.empty:
        return pd.Series(NONE_VALUE, index=events.index, dtype=object)
    return events["props"].map(
        lambda props: str(props[key]) if isinstance(props, dict) and key in props else NONE_VALUE
    )


def column_of(events: pd.DataFrame, dimension: str) -> pd.Series:
    """The values a filter or breakdown on `dimension` reads."""
    if is_property(dimension):
        return property_values(events, dimension[len(PROPS_PREFIX) :])
    if dimension not in events:
        return pd.Series("", index=events.index, dtype=object)
    return events[dimension]


@lru_cache(maxsize=256)
def _contains_pattern(values: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(v) for v in values), re.IGNORECASE)


def _value_matches(values: np.ndarray, flt: Filter) -> np.ndarray:
    """Whether each distinct value (as text) passes `flt`."""
    text = np.array(["" if pd.isna(v) else str(v) for v in values], dtype=object)
    if flt.operator == "contains":
        pattern = _contains_pattern(flt.values)
        return np.array([bool(pattern.search(v)) for v in text], dtype=bool)
    inside = np.isin(text, np.array(flt.values, dtype=object))
    return ~inside if flt.operator == "is_not" else inside


def matches(values: pd.Series, flt: Filter) -> np.ndarray:
    """Row mask of `values` passing `flt`, evaluated once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    if len(uniques) == 0:
        return np.zeros(len(values), dtype=bool)
    return _value_matches(np.asarray(uniques, dtype=object), flt)[codes]


# --- Visits ------------------------------------------------------------------------------


def _micros(events: pd.DataFrame) -> np.ndarray:
    return events["ts"].dt.tz_localize(None).to_numpy().astype("datetime64[us]").astype("int64")


def people(events: pd.DataFrame) -> np.ndarray:
    """A code per row such that the hashes of one person across a salt change share it: a
    hash whose `prev_visitor` is among the frame's hashes takes that hash's code."""
    codes, uniques = pd.factorize(events["visitor"])
    if "prev_visitor" not in events:
        return codes
    previous = events["prev_visitor"]
    linked = (previous.notna() & (previous.astype(str) != "")).to_numpy()
    if not linked.any():
        return codes
    found = pd.Index(np.asarray(uniques, dtype=object)).get_indexer(
        previous[linked].astype(str).to_numpy()
    )
    known = found >= 0
    link = np.arange(len(uniques))
    link[codes[linked][known]] = found[known]
    # Chains: a hash may continue yesterday's, which continued the day before's.
    for _ in range(64):
        followed = link[link]
        if np.array_equal(followed, link):
            break
        link = followed
    return link[codes]


@dataclass(frozen=True, eq=False)
class _Sessions:
    order: np.ndarray  # row positions by person, then time
    visit_sorted: np.ndarray  # visit number of each row in that order
    visit_of: np.ndarray  # visit number of each row in frame order


def _sessionize(events: pd.DataFrame) -> _Sessions:
    persons, micros = people(events), _micros(events)
    order = np.lexsort((micros, persons))
    sorted_persons, seconds = persons[order], micros[order] // 1_000_000
    gap_s = VISIT_GAP // pd.Timedelta(seconds=1)
    starts = np.ones(len(order), dtype=bool)
    # In whole seconds, as Plausible stores times: 30:00.9 after 10:00:00.1 is 30:00.
    starts[1:] = (sorted_persons[1:] != sorted_persons[:-1]) | (np.diff(seconds) > gap_s)
    visit_sorted = np.cumsum(starts) - 1
    visit_of = np.empty(len(order), dtype="int64")
    visit_of[order] = visit_sorted
    return _Sessions(order, visit_sorted, visit_of)


def shares_a_visit(before: pd.DataFrame, after: pd.DataFrame) -> bool:
    """Whether one visit holds events of both frames (of consecutive time ranges)."""
    if before.empty or after.empty:
        return False
    visit_of = _sessionize(pd.concat([before, after], ignore_index=True)).visit_of
    return bool(np.intersect1d(visit_of[: len(before)], visit_of[len(before) :]).size)


def _members(ids: np.ndarray, size: int) -> np.ndarray:
    """A lookup of visit numbers (0 .. size - 1): `found[n]` is whether n is in `ids`.
    Faster than np.isin at a million rows (no sort)."""
    found = np.zeros(size, dtype=bool)
    found[np.asarray(ids, dtype="int64")] = True
    return found


def _is(events: pd.DataFrame, name: str) -> np.ndarray:
    return (events["name"] == name).to_numpy()


VISIT_COLUMNS = [
    "visit", "visitor", "start", "end", "duration", "pageviews", "custom_events", "bounce",
    "entry_page", "exit_page",
]  # fmt: skip
# Where a visit entered and left, by host: only a hostname filter needs them (entry and exit
# pages under it), so only then are they computed.
HOST_COLUMNS = ["entry_hostname", "exit_hostname"]


def _table(events: pd.DataFrame, sessions: _Sessions, hosts: bool = False) -> pd.DataFrame:
    """One row per visit with at least one event that is not engagement (with `hosts`, also
    the hosts it entered and left on)."""
    dimensions = [c for c in VISIT_DIMENSIONS if c in events]
    columns = VISIT_COLUMNS + (HOST_COLUMNS if hosts else []) + dimensions
    core = ~_is(events, ENGAGEMENT)[sessions.order]
    rows, visit = sessions.order[core], sessions.visit_sorted[core]
    if not len(rows):
        return pd.DataFrame(columns=columns)
    firsts = np.flatnonzero(np.r_[True, visit[1:] != visit[:-1]])
    lasts = np.r_[firsts[1:], len(rows)] - 1
    is_pageview = _is(events, PAGEVIEW)[rows]
    views = np.add.reduceat(is_pageview.astype("int64"), firsts)
    counts = lasts - firsts + 1
    # Entry and exit pages: the first and last pageview of each visit.
    positions = np.flatnonzero(is_pageview)
    marks = np.zeros(len(rows), dtype="int64")
    marks[firsts] = 1
    number = np.cumsum(marks) - 1  # the visit's index in the table, per row
    pv_visits = number[positions]
    # Rows are in visit order: a visit's first and last pageview are where the number changes.
    first_pv = np.flatnonzero(np.r_[True, pv_visits[1:] != pv_visits[:-1]][: len(pv_visits)])
    last_pv = (np.r_[first_pv[1:], len(pv_visits)] - 1)[: len(first_pv)]

    def page_at(picks: np.ndarray, column: str = "path") -> np.ndarray:
        # NaN for a visit without a pageview (custom events only).
        found = np.full(len(firsts), np.nan, dtype=object)
        if column in events:
            found[pv_visits[picks]] = (
                events[column].iloc[rows[positions[picks]]].to_numpy(dtype=object)
            )
        return found

    seconds = _micros(events) // 1_000_000
    start = events["ts"].iloc[rows[firsts]].reset_index(drop=True)
    table = pd.DataFrame(
        {
            "visit": visit[firsts],
            "visitor": events["visitor"].iloc[rows[firsts]].reset_index(drop=True),
            "start": start,
            "end": events["ts"].iloc[rows[lasts]].reset_index(drop=True),
            # Whole seconds between the first and last event, as Plausible counts them.
            "duration": (seconds[rows[lasts]] - seconds[rows[firsts]]).astype("float64"),
            "pageviews": views,
            "custom_events": counts - views,
            "bounce": counts == 1,
            "entry_page": page_at(first_pv),
            "exit_page": page_at(last_pv),
        }
    )
    if hosts:
        table["entry_hostname"] = page_at(first_pv, "hostname")
        table["exit_hostname"] = page_at(last_pv, "hostname")
    for column in dimensions:
        table[column] = events[column].iloc[rows[firsts]].reset_index(drop=True)
    return table[columns]


def visits(events: pd.DataFrame) -> pd.DataFrame:
    """One row per visit: visit number, visitor (its first hash), start, end, duration (s),
    pageviews, custom events, bounce, entry and exit page, and the visit's first value of every
    visit dimension. Pass it to `summary`, `breakdown` and `timeseries` (`table=`) to compute
    it once."""
    if events.empty:
        dimensions = [c for c in VISIT_DIMENSIONS if c in events]
        return pd.DataFrame(columns=VISIT_COLUMNS + dimensions)
    return _table(events, _sessionize(events))


def with_visits(events: pd.DataFrame) -> pd.DataFrame:
    """The events ordered by visitor and time, with a `visit` number per visit."""
    if events.empty:
        return events.assign(visit=pd.Series(dtype="int64"))
    sessions = _sessionize(events)
    return events.iloc[sessions.order].assign(visit=sessions.visit_sorted)


# --- Selections --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Selection:
    """What a set of filters selects from a range's events, computed once and shared by every
    metric: the matching events (with their visit numbers) and the visits that count."""

    events: pd.DataFrame  # the matching events; engagement kept where the filters allow
    visit_of: np.ndarray  # the visit number of each of `events`
    visits: pd.DataFrame  # the visits that pass the visit filters and hold a matching event
    page_filter: Filter | None = None  # bounce rate: only visits that entered on such a page
    source: pd.DataFrame | None = None  # every event of the range (the legacy time on page)
    source_visit_of: np.ndarray | None = None
    filters: tuple[Filter, ...] = field(default_factory=tuple)
    # Arrays every visit-dimension breakdown of this selection shares (see `_event_codes`).
    cache: dict[str, Any] = field(default_factory=dict, repr=False)


def select(events: pd.DataFrame, filters: FilterLike = ()) -> Selection:
    """The selection of `filters` (AND-ed) in `events`; see the module docstring."""
    chosen_filters = as_filters(filters)
    if events.empty:
        none = np.zeros(0, dtype="int64")
        return Selection(events, none, visits(events), None, events, none, chosen_filters)
    sessions = _sessionize(events)
    table = _table(events, sessions, any(f.dimension == "hostname" for f in chosen_filters))
    engagement = _is(events, ENGAGEMENT)
    count = int(sessions.visit_of.max()) + 1  # visit numbers are 0 .. count - 1
    keep = np.ones(len(table), dtype=bool)
    matched = np.ones(len(events), dtype=bool)
    for flt in chosen_filters:
        if flt.on_visit:
            keep &= matches(table[flt.dimension], flt)
        elif flt.dimension == "name":
            matched &= matches(events["name"], flt) & ~engagement
        else:
            matched &= matches(column_of(events, flt.dimension), flt)
    if not all(f.on_visit for f in chosen_filters):
        holding = _members(sessions.visit_of[matched & ~engagement], count)
        keep &= holding[table["visit"].to_numpy()]
    chosen = table[keep].reset_index(drop=True)
    rows = matched & _members(chosen["visit"].to_numpy(), count)[sessions.visit_of]
    picked = events if rows.all() else events[rows]
    page = next((f for f in chosen_filters if f.dimension == "path"), None)
    return Selection(
        picked, sessions.visit_of[rows], chosen, page, events, sessions.visit_of, chosen_filters
    )


def _selection(events: pd.DataFrame | Selection, table: pd.DataFrame | None = None) -> Selection:
    """A Selection as is; a frame (already filtered, the old way) as every one of its events."""
    if isinstance(events, Selection):
        return events
    if table is None or events.empty:
        return select(events)
    sessions = _sessionize(events)
    return Selection(events, sessions.visit_of, table, None, events, sessions.visit_of)


def filter_events(events: pd.DataFrame, filters: FilterLike) -> pd.DataFrame:
    """The events that match every filter: an event filter keeps the matching events, a visit
    filter the whole visits whose first event matches (as Plausible's session filters do)."""
    return select(events, filters).events


# --- Numbers -----------------------------------------------------------------------------


def _core(selection: Selection) -> tuple[pd.DataFrame, np.ndarray]:
    """The selection's events that are not engagement, and their visit numbers (computed once
    per selection: every measure reads them)."""
    if "core" not in selection.cache:
        events = selection.events
        keep = ~_is(events, ENGAGEMENT)
        if keep.all():
            selection.cache["core"] = (events, selection.visit_of)
        else:
            # Only the columns the measures read: a million-row copy of every column costs
            # more than the measures themselves.
            read = [c for c in CORE_COLUMNS if c in events]
            selection.cache["core"] = (events.loc[keep, read], selection.visit_of[keep])
    return selection.cache["core"]


CORE_COLUMNS = ("ts", "name", "path", "hostname", "visitor", "props")


def pageviews(events: pd.DataFrame) -> int:
    return int((events["name"] == PAGEVIEW).sum())


def unique_visitors(events: pd.DataFrame) -> int:
    """Distinct visitor hashes of events other than engagement (= the sum of daily uniques)."""
    return int(events.loc[~_is(events, ENGAGEMENT), "visitor"].nunique())


def _bounce_rate(table: pd.DataFrame, page_filter: Filter | None) -> float:
    if page_filter is not None and len(table):
        table = table[matches(table["entry_page"], page_filter)]
    return float(table["bounce"].mean()) if len(table) else 0.0


def summary(events: pd.DataFrame | Selection, table: pd.DataFrame | None = None) -> Summary:
    """The six top-line numbers of a selection (or of every event of a frame)."""
    selection = _selection(events, table)
    core, _ = _core(selection)
    chosen = selection.visits
    count = len(chosen)
    views = pageviews(core)
    return Summary(
        visitors=int(core["visitor"].nunique()),
        visits=count,
        pageviews=views,
        views_per_visit=_ratio(views, count),
        bounce_rate=_bounce_rate(chosen, selection.page_filter),
        visit_duration=float(chosen["duration"].mean()) if count else 0.0,
    )


def duration_text(seconds: float) -> str:
    """ "45s", "1m 31s", "1h 02m": an hour or more drops the seconds, as Plausible writes a
    duration (the dashboard and the e-mail reports both show it so)."""
    total = max(round(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def percent_change(current: float, previous: float | None) -> float | None:
    """Change in percent; None from a missing or zero baseline (except 0 → 0, which is 0)."""
    if previous is None or pd.isna(previous):
        return None
    if previous == 0:
        return 0.0 if current == 0 else None
    return (current - previous) / previous * 100


# --- Engagement: time on page and scroll depth --------------------------------------------


def _engaged_pages(selection: Selection) -> pd.DataFrame:
    """Per page: engaged ms and the (visit, page) pairs with engaged time, the deepest valid
    scroll summed over the pairs with one and their count. Only pages the visit viewed count
    (engagement on a page never viewed in its visit is ignored). Counted with numpy."""
    events, visit_of = selection.events, selection.visit_of
    columns = ["engaged_ms", "engaged_pairs", "depth_sum", "depth_pairs"]
    engagement = _is(events, ENGAGEMENT)
    if not engagement.any() or "engagement_ms" not in events:
        return pd.DataFrame(columns=columns, dtype="float64")
    codes, paths = pd.factorize(events["path"].astype(str), use_na_sentinel=False)
    width = int(visit_of.max(initial=0)) + 1
    keys = codes.astype("int64") * width + visit_of
    viewed = _is(events, PAGEVIEW)
    counted = engagement & pd.Series(keys).isin(pd.unique(keys[viewed])).to_numpy()
    pair_of, pair_keys = pd.factorize(keys[counted])
    engaged = events["engagement_ms"].to_numpy(dtype="float64")[counted]
    depth = events["scroll_depth"].to_numpy(dtype="float64")[counted]
    depth = np.where((depth >= 0) & (depth <= MAX_SCROLL_DEPTH), depth, np.nan)
    timed = np.bincount(pair_of, weights=~np.isnan(engaged), minlength=len(pair_keys)) > 0
    total = np.bincount(pair_of, weights=np.nan_to_num(engaged), minlength=len(pair_keys))
    deepest = np.full(len(pair_keys), -1.0)
    np.maximum.at(deepest, pair_of, np.nan_to_num(depth, nan=-1.0))
    deep = deepest >= 0
    page_of = pair_keys // width
    size = len(paths)
    return pd.DataFrame(
        {
            "engaged_ms": np.bincount(page_of, weights=np.where(timed, total, 0), minlength=size),
            "engaged_pairs": np.bincount(page_of, weights=timed, minlength=size),
            "depth_sum": np.bincount(page_of, weights=np.where(deep, deepest, 0), minlength=size),
            "depth_pairs": np.bincount(page_of, weights=deep, minlength=size),
        },
        index=pd.Index(np.asarray(paths, dtype=object)),
    )


def orphan_engagement(events: pd.DataFrame) -> int:
    """Engagement events no page counts: their visit holds no pageview of their page (a page
    without the script's pageview, or a visit cut by the range's start). Time on page and
    scroll depth leave them out; the health page says how many."""
    engagement = _is(events, ENGAGEMENT)
    if not engagement.any():
        return 0
    visit_of = _sessionize(events).visit_of
    path = events["path"].astype(str).to_numpy()
    viewed = _is(events, PAGEVIEW)
    seen = pd.MultiIndex.from_arrays([visit_of[viewed], path[viewed]])
    found = pd.MultiIndex.from_arrays([visit_of[engagement], path[engagement]])
    return int((~found.isin(seen)).sum())


def _legacy_moves(selection: Selection) -> pd.DataFrame:
    """Plausible's transition-based time per page: `seconds` from an event on the page to the
    visit's next event (summed), and `moves`, the distinct (page, next page, visit) moves to
    another page. Read from every event of the selected visits; counted with numpy."""
    source = selection.source if selection.source is not None else selection.events
    visit_of = selection.source_visit_of if selection.source is not None else selection.visit_of
    chosen = _members(selection.visits["visit"].to_numpy(), int(visit_of.max(initial=0)) + 1)
    keep = ~_is(source, ENGAGEMENT) & chosen[visit_of]
    if not keep.any():
        return pd.DataFrame(columns=["seconds", "moves"], dtype="float64")
    micros, visit = _micros(source)[keep], visit_of[keep]
    codes, paths = pd.factorize(source["path"].astype(str).to_numpy()[keep])
    order = np.lexsort((micros, visit))
    micros, visit, codes = micros[order], visit[order], codes[order].astype("int64")
    same = visit[1:] == visit[:-1]  # a step to the visit's next event
    took = (micros[1:] // 1_000_000 - micros[:-1] // 1_000_000)[same].astype("float64")
    here, there, where = codes[:-1][same], codes[1:][same], visit[:-1][same]
    size, visits = len(paths), int(visit.max(initial=0)) + 1
    # Distinct (page, next page, visit) triples, their seconds summed (Plausible's GROUP BY).
    triple_of, triples = pd.factorize((here * size + there) * visits + where)
    seconds = np.bincount(triple_of, weights=took, minlength=len(triples))
    page, following = triples // visits // size, triples // visits % size
    return pd.DataFrame(
        {
            "seconds": np.bincount(page, weights=seconds, minlength=size),
            "moves": np.bincount(page, weights=page != following, minlength=size),
        },
        index=pd.Index(np.asarray(paths, dtype=object)),
    )


# Additive measures: every breakdown row is a sum of these, so days add up (the rollups store
# them) and the rates are computed last, in `finish`.
TOTALS = [
    "visitors", "visits", "pageviews", "events", "bounces", "bounce_base", "duration",
    "duration_base", "engaged_ms", "engaged_pairs", "depth_sum", "depth_pairs",
    "legacy_seconds", "legacy_moves", "page_pageviews",
]  # fmt: skip
BREAKDOWN_COLUMNS = ["value", "visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]
EXTRA_COLUMNS = {"path": ["time_on_page", "scroll_depth"], "exit_page": ["exit_rate"]}


def breakdown_columns(dimension: str) -> list[str]:
    """The columns `breakdown` returns for `dimension`."""
    extra = ["events"] if dimension == "name" or is_property(dimension) else []
    return BREAKDOWN_COLUMNS + EXTRA_COLUMNS.get(dimension, extra)


def page_totals(selection: Selection) -> pd.DataFrame:
    """Engaged time, scroll depth and legacy moves per page (TOTALS' engagement columns)."""
    legacy = _legacy_moves(selection).rename(
        columns={"seconds": "legacy_seconds", "moves": "legacy_moves"}
    )
    return _engaged_pages(selection).join(legacy, how="outer").fillna(0.0)


def _visit_totals(table: pd.DataFrame, key: str) -> pd.DataFrame:
    grouped = table.groupby(key, observed=True, sort=False)
    visits_per_value = grouped.size()
    return pd.DataFrame(
        {
            "visitors": grouped["visitor"].nunique(),
            "visits": visits_per_value,
            "pageviews": grouped["pageviews"].sum(),
            "bounces": grouped["bounce"].sum(),
            "bounce_base": visits_per_value,
            "duration": grouped["duration"].sum(),
            "duration_base": visits_per_value,
        }
    )


def _distinct_per_code(codes: np.ndarray, other: np.ndarray, size: int) -> np.ndarray:
    """For each code, how many distinct `other` values occur with it."""
    width = int(other.max(initial=0)) + 1
    return np.bincount(pd.unique(codes * width + other) // width, minlength=size)


def _event_totals(
    selection: Selection, values: pd.Series
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Visitors, visits, pageviews and events of the selection's events, per value (the
    values of the non-engagement events, in their order), counted with numpy."""
    shared = _event_codes(selection)
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    size = len(uniques)
    found = {
        "visitors": _distinct_per_code(codes, shared["visitor"], size),
        "visits": _distinct_per_code(codes, shared["position"] + 1, size),
        "pageviews": np.bincount(codes, weights=shared["pageview"], minlength=size),
        "events": np.bincount(codes, minlength=size),
    }
    return np.asarray(uniques, dtype=object), found


def _event_codes(selection: Selection) -> dict[str, np.ndarray]:
    """For the selection's non-engagement events: the row of `visits` each belongs to, a code
    per visitor hash, and whether it is a pageview. Computed once per selection: the rollups
    break a day down by some twenty dimensions."""
    if "position" not in selection.cache:
        core, visit_of = _core(selection)
        visitor_codes, _ = pd.factorize(core["visitor"], use_na_sentinel=False)
        selection.cache.update(
            position=pd.Index(selection.visits["visit"].to_numpy()).get_indexer(visit_of),
            visitor=visitor_codes.astype("int64"),
            pageview=_is(core, PAGEVIEW).astype("float64"),
        )
    return selection.cache


def _value_totals(selection: Selection, dimension: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A visit dimension: visits, bounces and duration of the visits with each value; visitors
    and pageviews of the selected events in those visits. Counted with numpy (bincount on
    value codes): pandas' per-call overhead times twenty dimensions is most of a day's work."""
    table = selection.visits
    codes, uniques = pd.factorize(table[dimension], use_na_sentinel=False)
    size = len(uniques)
    shared = _event_codes(selection)
    inside = shared["position"] >= 0
    event_codes = codes[shared["position"][inside]]
    visitors = shared["visitor"][inside]
    # Distinct (value, visitor) pairs, counted per value.
    pairs = pd.unique(event_codes * (int(visitors.max(initial=0)) + 1) + visitors)
    per_visit = {
        "visits": np.bincount(codes, minlength=size),
        "bounces": np.bincount(codes, weights=table["bounce"].to_numpy(float), minlength=size),
        "duration": np.bincount(codes, weights=table["duration"].to_numpy(float), minlength=size),
    }
    found = {
        **per_visit,
        "bounce_base": per_visit["visits"],
        "duration_base": per_visit["visits"],
        "visitors": np.bincount(pairs // (int(visitors.max(initial=0)) + 1), minlength=size),
        "pageviews": np.bincount(event_codes, weights=shared["pageview"][inside], minlength=size),
    }
    return np.asarray(uniques, dtype=object), found


def _page_totals(selection: Selection) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per page: its visitors, pageviews and the visits holding it (their whole duration),
    the bounces of the visits that entered there, engagement and legacy moves."""
    core, _ = _core(selection)
    shared = _event_codes(selection)
    paths, found = _event_totals(selection, core["path"].astype(str))
    codes = pd.Index(paths).get_indexer(core["path"].astype(str).to_numpy())
    # The visits holding each page (distinct code-visit pairs), with their whole duration.
    width = len(selection.visits) + 1
    pairs = pd.unique(codes * width + shared["position"] + 1)
    held, at = pairs // width, pairs % width - 1
    durations = selection.visits["duration"].to_numpy(dtype="float64")
    found["duration"] = np.bincount(held, weights=durations[at], minlength=len(paths))
    found["duration_base"] = np.bincount(held, minlength=len(paths))
    entry = pd.Index(paths).get_indexer(selection.visits["entry_page"].astype(str).to_numpy())
    entered = entry >= 0
    bounces = selection.visits["bounce"].to_numpy(dtype="float64")[entered]
    found["bounces"] = np.bincount(entry[entered], weights=bounces, minlength=len(paths))
    found["bounce_base"] = np.bincount(entry[entered], minlength=len(paths))
    engaged = page_totals(selection).reindex(pd.Index(paths, dtype=object))
    found.update({column: engaged[column].to_numpy(dtype="float64") for column in engaged})
    return paths, found


def breakdown_totals(events: pd.DataFrame | Selection, dimension: str) -> pd.DataFrame:
    """The additive measures (TOTALS) of every value of `dimension`, indexed by value."""
    selection = _selection(events)
    if selection.events.empty or selection.visits.empty:
        return pd.DataFrame(columns=TOTALS, index=pd.Index([], name="value", dtype=object))
    if dimension == "path":
        return _as_totals(*_page_totals(selection))
    if dimension == "name" or is_property(dimension):
        core, _ = _core(selection)
        values = core["name"].astype(str) if dimension == "name" else column_of(core, dimension)
        return _as_totals(*_event_totals(selection, values))
    if dimension in VISIT_PAGES:
        # A hostname filter picks the visits that entered (left) on that host, as Plausible's.
        table = selection.visits
        where = "entry_hostname" if dimension == "entry_page" else "exit_hostname"
        for flt in selection.filters:
            if flt.dimension == "hostname":
                table = table[matches(table[where], flt)]
        stats = _visit_totals(table, dimension)
        if dimension == "exit_page":
            core, _ = _core(selection)
            views = core.loc[_is(core, PAGEVIEW), "path"].astype(str).value_counts()
            stats["page_pageviews"] = views.reindex(stats.index.astype(str)).to_numpy()
    else:
        return _as_totals(*_value_totals(selection, dimension))
    return _as_totals(
        stats.index.to_numpy(dtype=object),
        {column: stats[column].to_numpy(dtype="float64") for column in stats.columns},
    )


TOTAL_AT = {column: position for position, column in enumerate(TOTALS)}  # a column's place


def _as_totals(values: np.ndarray, columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The TOTALS frame of `columns` (0 where absent or NaN), indexed by the values as text.
    Built as one float matrix: a day's rollup breaks some twenty dimensions down, and pandas'
    per-operation overhead on small frames would be most of the work."""
    matrix = np.zeros((len(values), len(TOTALS)))
    for column, numbers in columns.items():
        if column in TOTAL_AT:
            matrix[:, TOTAL_AT[column]] = np.nan_to_num(numbers)
    index = pd.Index(["nan" if pd.isna(v) else str(v) for v in values], dtype=object, name="value")
    return pd.DataFrame(matrix, index=index, columns=TOTALS)


def _divide(numerator: pd.Series, denominator: pd.Series, empty: float) -> pd.Series:
    return (numerator / denominator.where(denominator > 0)).fillna(empty)


def finish(totals: pd.DataFrame, dimension: str, limit: int | None = None) -> pd.DataFrame:
    """Breakdown rows from additive measures: rates computed, most visitors first."""
    columns = breakdown_columns(dimension)
    if totals.empty:
        return pd.DataFrame(columns=columns)
    t = totals.reset_index()
    table = pd.DataFrame(
        {
            "value": t["value"].astype(str),
            "visitors": t["visitors"].round().astype("int64"),
            "visits": t["visits"].round().astype("int64"),
            "pageviews": t["pageviews"].round().astype("int64"),
            "bounce_rate": _divide(t["bounces"], t["bounce_base"], 0.0),
            "visit_duration": _divide(t["duration"], t["duration_base"], 0.0),
            "events": t["events"].round().astype("int64"),
        }
    )
    if dimension == "name" or is_property(dimension):
        table["pageviews"] = table["events"]  # the tables show an event count there
    if dimension == "path":
        legacy = _divide(t["legacy_seconds"], t["legacy_moves"], np.nan)
        engaged = _divide(t["engaged_ms"] / 1000, t["engaged_pairs"], np.nan)
        table["time_on_page"] = engaged.where(t["engaged_pairs"] > 0, legacy)
        table["scroll_depth"] = _divide(t["depth_sum"], t["depth_pairs"], np.nan)
    if dimension == "exit_page":
        table["exit_rate"] = _divide(t["visits"], t["page_pageviews"], 0.0).clip(upper=1.0)
    table = table[(table["visitors"] > 0) | (table["pageviews"] > 0) | (table["visits"] > 0)]
    table = table.sort_values(
        ["visitors", "pageviews", "value"], ascending=[False, False, True], kind="stable"
    )
    table = table[columns].reset_index(drop=True)
    return table.head(limit) if limit else table


def breakdown(
    events: pd.DataFrame | Selection,
    dimension: str,
    limit: int | None = None,
    table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Top values of `dimension`, most visitors first.

    Always: value, visitors, visits, pageviews, bounce_rate, visit_duration.
    - `path` (Plausible's Pages): visits = visits holding the page, bounce rate of the visits
      that entered there, duration of the visits holding it; adds time_on_page, scroll_depth
      (NaN without data). A row equals `summary` under the filter "page is <value>".
    - `entry_page`: visits = entrances; `exit_page`: visits = exits, adds exit_rate (exits /
      pageviews of the page).
    - `name` and `props.<key>`: adds events (`pageviews` holds the events count too, as
      before); `props.<key>` counts every event, "(none)" for those without the key.
    - a visit dimension: each visit counts once, for its first event's value.
    """
    return finish(breakdown_totals(_selection(events, table), dimension), dimension, limit)


def page_engagement(selection: Selection) -> dict[str, float]:
    """Time on page (s) and scroll depth (%) over the selection's pages (with a page filter:
    the matching ones), NaN without data: what the top numbers show under a page filter."""
    found = page_totals(selection)
    if selection.page_filter is not None and len(found):
        found = found[matches(pd.Series(found.index), selection.page_filter)]
    sums = found.sum()
    engaged = sums.get("engaged_pairs", 0)
    moves = sums.get("legacy_moves", 0)
    if engaged:
        time_on_page = float(sums["engaged_ms"] / 1000 / engaged)
    else:
        time_on_page = float(sums["legacy_seconds"] / moves) if moves else float("nan")
    depth = sums.get("depth_pairs", 0)
    return {
        "time_on_page": time_on_page,
        "scroll_depth": float(sums["depth_sum"] / depth) if depth else float("nan"),
    }


def with_change(
    current: pd.DataFrame,
    previous: pd.DataFrame | None,
    key: str = "value",
    column: str = "visitors",
) -> pd.DataFrame:
    """`current` with a "change" column: each row's percent change of `column` against the
    same `key` in `previous` (a row absent there had 0); None without a comparison."""
    if previous is None:
        return current.assign(change=None)
    before = previous.set_index(key)[column] if len(previous) else pd.Series(dtype="float64")
    baseline = before.reindex(current[key]).fillna(0).to_numpy()
    changes = [
        percent_change(now, then) for now, then in zip(current[column], baseline, strict=True)
    ]
    return current.assign(change=pd.Series(changes, index=current.index, dtype=object))


def property_keys(events: pd.DataFrame | Selection) -> list[str]:
    """Every custom property key of the events, the most used first."""
    frame = events.events if isinstance(events, Selection) else events
    if "props" not in frame or frame.empty:
        return []
    counts: dict[str, int] = {}
    for props in frame["props"]:
        if isinstance(props, dict):
            for key in props:
                counts[key] = counts.get(key, 0) + 1
    return sorted(counts, key=lambda k: (-counts[k], k))


# --- Time series -------------------------------------------------------------------------


def timeseries(
    events: pd.DataFrame | Selection,
    interval: str = "day",
    tz: str = "UTC",
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Visitors, visits and pageviews per hour/day/week/month in time zone `tz`.

    Every bucket from `start` to `end` (exclusive; default: the first and last event) is
    there, 0 where nothing happened. A visit counts in the bucket where it starts.
    """
    columns = ["bucket", "visitors", "visits", "pageviews"]
    selection = _selection(events, table)
    core, _ = _core(selection)
    buckets = _floor(core["ts"].dt.tz_convert(tz), interval)
    stats = pd.DataFrame(
        {
            "visitors": core["visitor"].groupby(buckets).nunique(),
            "pageviews": (core["name"] == PAGEVIEW).groupby(buckets).sum(),
        }
    )
    chosen = selection.visits
    starts = _floor(chosen["start"].dt.tz_convert(tz), interval) if len(chosen) else None
    stats["visits"] = starts.value_counts() if starts is not None else 0
    first = _bucket_of(start, tz, interval) if start is not None else stats.index.min()
    last = (
        _bucket_of(pd.Timestamp(end) - pd.Timedelta(microseconds=1), tz, interval)
        if end is not None
        else stats.index.max()
    )
    if pd.isna(first) or pd.isna(last):
        return pd.DataFrame(columns=columns)
    full = pd.DatetimeIndex(_bucket_range(first, last, interval), name="bucket")
    stats = stats.reindex(full).fillna(0).astype("int64")
    return stats.reset_index()[columns]


def _bucket_of(moment: pd.Timestamp, tz: str, interval: str) -> pd.Timestamp:
    return _floor(pd.Series([pd.Timestamp(moment).tz_convert(tz)]), interval).iloc[0]


def _bucket_range(first: pd.Timestamp, last: pd.Timestamp, interval: str) -> list[pd.Timestamp]:
    """Every bucket from `first` to `last` (both bucket starts), built at once: hours step in
    absolute time, longer buckets on the calendar's wall time, then floored like the events."""
    if interval == "hour":
        hours = pd.date_range(first.tz_convert("UTC"), last.tz_convert("UTC"), freq="h")
        starts = pd.Series(hours.tz_convert(first.tz))
    else:
        step = {"day": "D", "week": "7D", "month": "MS"}[interval]
        wall = pd.date_range(first.tz_localize(None), last.tz_localize(None), freq=step)
        local = wall.tz_localize(first.tz, ambiguous=True, nonexistent="shift_forward")
        starts = pd.Series(local)
    return list(_floor(starts, interval).drop_duplicates())


def _floor(local: pd.Series, interval: str) -> pd.Series:
    if interval == "hour":
        # Back to the start of the local hour in absolute time, not by wall-clock rounding:
        # the hour repeated when clocks go back is two buckets (its two offsets), never NaT.
        into_hour = local.dt.minute * 60 + local.dt.second
        return (
            local
            - pd.to_timedelta(into_hour, unit="s")
            - pd.to_timedelta(local.dt.microsecond * 1000 + local.dt.nanosecond, unit="ns")
        )
    # On wall time, then back to the zone: subtracting days of 24 h from an aware time would
    # land at 23:00 or 01:00 across a daylight-saving change, and where clocks change at
    # midnight (America/Santiago) a day starts at the first moment that exists.
    wall = local.dt.tz_localize(None).dt.normalize()
    if interval != "day":
        back = wall.dt.day_of_week if interval == "week" else wall.dt.day - 1
        wall = wall - pd.to_timedelta(back, unit="D")
    return wall.dt.tz_localize(local.dt.tz, ambiguous=True, nonexistent="shift_forward")


def current_visitors(events: pd.DataFrame, now: pd.Timestamp) -> int:
    now = pd.Timestamp(now)
    recent = events[
        (events["ts"] > now - CURRENT_WINDOW) & (events["ts"] <= now) & ~_is(events, ENGAGEMENT)
    ]
    return int(recent["visitor"].nunique())


def _pattern(goal: str) -> re.Pattern[str]:
    """A goal as a regular expression: in a path `**` matches anything and `*` anything but
    "/"; in an event name `*` matches anything."""
    if goal.startswith("/"):
        parts = [re.escape(p).replace(r"\*", "[^/]*") for p in goal.split("**")]
        return re.compile(".*".join(parts))
    return re.compile(".*".join(re.escape(p) for p in goal.split("*")))


@lru_cache(maxsize=512)
def _compiled(goal: str) -> re.Pattern[str]:
    return _pattern(goal)


def goal_mask(events: pd.DataFrame, goal: str) -> np.ndarray:
    """The events that complete `goal`: a pageview whose path matches, or a custom event whose
    name matches (never an engagement event)."""
    pattern = _compiled(goal)
    if goal.startswith("/"):
        column, wanted = events["path"], _is(events, PAGEVIEW)
    else:
        column, wanted = events["name"], ~_is(events, ENGAGEMENT) & ~_is(events, PAGEVIEW)
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    if not len(uniques):
        return np.zeros(len(events), dtype=bool)
    hits = np.array([bool(pattern.fullmatch(str(u))) for u in uniques], dtype=bool)
    return hits[codes] & wanted


def goal_conversions(events: pd.DataFrame | Selection, goals: Sequence[str]) -> pd.DataFrame:
    """Per goal (a custom event name, or a page path starting with "/"; `*`/`**` wildcards):
    the visitors who completed it, how often, and the conversion rate (those visitors / all
    visitors of the selection)."""
    selection = _selection(events)
    core, _ = _core(selection)
    total = int(core["visitor"].nunique())
    rows = []
    for goal in goals:
        done = goal_mask(core, goal)
        uniques = int(core.loc[done, "visitor"].nunique())
        rows.append(
            {
                "goal": goal,
                "visitors": uniques,
                "events": int(done.sum()),
                "conversion_rate": _ratio(uniques, total),
            }
        )
    return pd.DataFrame(rows, columns=["goal", "visitors", "events", "conversion_rate"])


def funnel(events: pd.DataFrame, steps: Sequence[str]) -> pd.DataFrame:
    """An ordered funnel within visits: how many visits reached each step after the previous
    ones (a step is a goal: an event name, or a page path starting with "/", wildcards too)."""
    columns = ["step", "visits", "conversion_rate", "drop_off"]
    if not steps:
        return pd.DataFrame(columns=columns)
    ordered = with_visits(events)
    ordered = ordered[~_is(ordered, ENGAGEMENT)]
    # For every visit, the time at which it completed the funnel so far.
    reached = pd.Series(
        pd.Timestamp.min.tz_localize("UTC"), index=pd.Index(ordered["visit"].unique())
    )
    counts = []
    for step in steps:
        hits = ordered[goal_mask(ordered, step)]
        hits = hits[hits["ts"].to_numpy() >= reached.reindex(hits["visit"]).to_numpy()]
        reached = hits.groupby("visit")["ts"].min()
        counts.append(len(reached))
    start = counts[0]
    rows = [
        {
            "step": step,
            "visits": n,
            "conversion_rate": _ratio(n, start),
            "drop_off": (_ratio(prev - n, prev) if i else 0.0),
        }
        for i, (step, n, prev) in enumerate(zip(steps, counts, [start, *counts[:-1]], strict=True))
    ]
    return pd.DataFrame(rows, columns=columns)
