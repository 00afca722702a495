"""A filtered view's rows before pandas sees them: only the people who could match.

Plausible's filters are about visits: a page filter keeps the whole visits that viewed the
page, a source filter the visits that entered from it (`pipeline.stats.metrics.select`). So a
filtered view cannot drop rows by the filter alone, but it can drop people: every visit lies
inside one person's events (a visitor hash, chained across a salt change by `prev_visitor`,
as `metrics.people` links them), and a visit that passes a filter holds an event whose own
value passes it (its first event, for a visit dimension; its first or last pageview's path,
for an entry or exit page). So the people with, for every filter, an event passing that
filter's row test are a superset of those `select` keeps, and `select` over their events
alone gives what it gives over the whole range. A filtered 30-day view of a busy site then
turns a few thousand people's events into a frame, not a million rows.

The one filter that cannot narrow: an entry or exit page filter that passes the empty value
("is not /x", "contains" nothing), since a visit without a pageview has no entry page.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.stats import metrics
from pipeline.store import archive

PEOPLE = ("visitor", "prev_visitor")


def _dimension_column(flt: metrics.Filter) -> str:
    if metrics.is_property(flt.dimension):
        return "props"
    return "path" if flt.dimension in metrics.VISIT_PAGES else flt.dimension


def narrowing(filters: metrics.FilterLike) -> tuple[metrics.Filter, ...]:
    """The filters that can narrow a read to people (see the module docstring)."""
    return tuple(
        flt
        for flt in metrics.as_filters(filters)
        if not (flt.dimension in metrics.VISIT_PAGES and metrics.matches(pd.Series([""]), flt)[0])
    )


def columns_for(filters: metrics.FilterLike) -> list[str]:
    """The columns `people_mask` reads for `filters` (none when no filter narrows)."""
    chosen = narrowing(filters)
    if not chosen:
        return []
    pages = any(flt.dimension in metrics.VISIT_PAGES for flt in chosen)
    return [*PEOPLE, *{_dimension_column(flt) for flt in chosen}, *(["name"] if pages else [])]


def _row_values(table: pa.Table, flt: metrics.Filter) -> pd.Series:
    """What `flt`'s row test reads, per row; a property as `metrics.property_values` gives it,
    each distinct JSON text parsed once."""
    column = table[_dimension_column(flt)]
    if not metrics.is_property(flt.dimension):
        return column.to_pandas()
    texts = column.cast(archive.read_field("props").type).to_pandas()
    parsed = pd.DataFrame({"props": [archive.parse_props(t) for t in texts.cat.categories]})
    values = metrics.property_values(parsed, flt.dimension[len(metrics.PROPS_PREFIX) :])
    found = np.append(values.to_numpy(dtype=object), metrics.NONE_VALUE)  # code -1: no props
    return pd.Series(found[texts.cat.codes.to_numpy()], dtype=object)


def people_mask(table: pa.Table, filters: metrics.FilterLike) -> np.ndarray | None:
    """Rows of `table` (a read's, before the frame is made) of the people who have, for every
    narrowing filter, an event passing its row test; None when no filter narrows."""
    chosen = narrowing(filters)
    if not chosen:
        return None
    who = pd.DataFrame({name: table[name].to_pandas() for name in PEOPLE})
    persons = metrics.people(who)
    size = int(persons.max(initial=-1)) + 1
    keep = np.ones(size, dtype=bool)
    for flt in chosen:
        passing = metrics.matches(_row_values(table, flt), flt)
        if flt.dimension in metrics.VISIT_PAGES:
            passing &= (table["name"].to_pandas() == metrics.PAGEVIEW).to_numpy()
        found = np.zeros(size, dtype=bool)
        found[persons[passing]] = True
        keep &= found
    return keep[persons]
