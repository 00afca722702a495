"""Chart builders: data in, plotly figures out. No Streamlit here."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pycountry

from dashboard import format as fmt

METRIC_LABELS = {"visitors": "Visitors", "visits": "Visits", "pageviews": "Pageviews"}
PARTIAL_COLOR = "#1f77b4"


def _step(buckets: pd.Series) -> pd.Timedelta:
    """The series' bucket length (a day when it has a single bucket)."""
    steps = buckets.diff().dropna()
    return steps.min() if len(steps) else pd.Timedelta(days=1)


def settled(series: pd.DataFrame, now: pd.Timestamp | None = None) -> pd.DataFrame:
    """`series` without buckets after `now`, with a boolean `partial` column: True for the
    bucket that contains `now` (it is still filling). The pipeline's own `partial` column wins
    when the frame has one."""
    table = series.sort_values("bucket").reset_index(drop=True)
    if now is not None and len(table):
        table = table[table["bucket"] <= pd.Timestamp(now)].reset_index(drop=True)
    if "partial" in table.columns:
        return table.assign(partial=table["partial"].astype(bool))
    partial = pd.Series(False, index=table.index)
    if now is not None and len(table):
        # The last bucket is partial when the next one would start after now.
        partial.iloc[-1] = bool(_next(table["bucket"]) > pd.Timestamp(now))
    return table.assign(partial=partial)


def _next(buckets: pd.Series) -> pd.Timestamp:
    """The start of the bucket after the last one, on the calendar of the buckets' zone: a
    month is 28-31 days and a local day 23-25 hours, so steps longer than an hour are counted
    in calendar units, not as a fixed length."""
    last, step = buckets.iloc[-1], _step(buckets)
    if step < pd.Timedelta(hours=20):
        return last + step
    if step >= pd.Timedelta(days=28):
        return last + pd.DateOffset(months=1)
    return last + pd.DateOffset(days=round(step / pd.Timedelta(days=1)))


def _hover_format(buckets: pd.Series) -> str:
    return "%a %d %b %Y, %H:%M" if _step(buckets) < pd.Timedelta(days=1) else "%a %d %b %Y"


def time_chart(
    series: pd.DataFrame,
    metric: str,
    previous: pd.DataFrame | None = None,
    flagged: pd.DataFrame | None = None,
    now: pd.Timestamp | None = None,
) -> go.Figure:
    """`metric` over `series["bucket"]`: full buckets as a solid line, the bucket still filling
    (see `settled`) as a dotted segment to a hollow marker, the comparison period's line
    aligned on it, and anomaly markers. Nothing is drawn after `now`."""
    label = METRIC_LABELS.get(metric, metric.replace("_", " ").capitalize())
    table = settled(series, now)
    when = _hover_format(table["bucket"]) if len(table) else "%a %d %b %Y"
    full, partial = table[~table["partial"]], table[table["partial"]]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=full["bucket"], y=full[metric], name=label, mode="lines+markers",
            line={"color": PARTIAL_COLOR}, customdata=[fmt.number(v) for v in full[metric]],
            hovertemplate=f"%{{x|{when}}}<br>{label}: %{{customdata}}<extra></extra>",
        )
    )  # fmt: skip
    if len(partial):
        joined = pd.concat([full.tail(1), partial])
        figure.add_trace(
            go.Scatter(
                x=joined["bucket"], y=joined[metric], name=f"{label} (so far)",
                mode="lines+markers", line={"dash": "dot", "color": PARTIAL_COLOR},
                marker={"symbol": ["circle"] * (len(joined) - len(partial)) + ["circle-open"] * len(partial), "size": 9},
                customdata=[fmt.number(v) for v in joined[metric]],
                hovertemplate=f"%{{x|{when}}}<br>{label}: %{{customdata}} (partial, still counting)<extra></extra>",
            )
        )  # fmt: skip
    if previous is not None and len(previous):
        aligned = previous[metric].to_numpy()[: len(table)]
        figure.add_trace(
            go.Scatter(
                x=table["bucket"][: len(aligned)], y=aligned, name="Previous period",
                mode="lines", line={"dash": "dot", "color": "#999"},
                customdata=[fmt.number(v) for v in aligned],
                hovertemplate="Previous period: %{customdata}<extra></extra>",
            )
        )  # fmt: skip
    # A bucket still filling is never unusual: only marks on full buckets are drawn.
    marks = flagged[flagged["anomaly"]] if flagged is not None else None
    marks = marks[marks.index.isin(full["bucket"])] if marks is not None else None
    if marks is not None and len(marks):
        figure.add_trace(
            go.Scatter(
                x=marks.index, y=marks["value"], name="Unusual", mode="markers",
                marker={"symbol": "diamond", "size": 13, "color": "#d62728"},
                customdata=[[fmt.number(v), fmt.number(b)] for v, b in zip(marks["value"], marks["baseline"], strict=True)],
                hovertemplate=f"%{{x|{when}}}<br>{label}: %{{customdata[0]}}, usually %{{customdata[1]}}<extra>Unusual</extra>",
            )
        )  # fmt: skip
    figure.update_layout(
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        height=340,
        legend={"orientation": "h"},
        yaxis={"title": {"text": label}, "rangemode": "tozero"},
    )
    return figure


def _alpha3(code: str) -> str | None:
    found = pycountry.countries.get(alpha_2=code) if code else None
    return found.alpha_3 if found else None


def world_map(by_country: pd.DataFrame, points: pd.DataFrame | None = None) -> go.Figure:
    """One offline world map: visitors by country (`value` holds ISO alpha-2 codes) as a
    choropleth over plotly's own country outlines, and located visitors (`points`: city, lat,
    lon, visitors) as circles on top. Plotly reads the outlines from `topojsonURL` (the app's
    `static/`), so nothing comes from a CDN."""
    table = by_country.assign(
        iso3=by_country["value"].map(_alpha3), label=by_country["value"].map(fmt.country_label)
    ).dropna(subset=["iso3"])
    figure = go.Figure(
        go.Choropleth(
            locations=table["iso3"], z=table["visitors"], name="Countries",
            customdata=[[label, fmt.number(v)] for label, v in zip(table["label"], table["visitors"], strict=True)],
            hovertemplate="%{customdata[0]}<br>Visitors: %{customdata[1]}<extra></extra>",
            colorscale="Blues", marker_line_width=0.3, marker_line_color="#888",
            colorbar={"title": {"text": "Visitors"}, "thickness": 12},
        )
    )  # fmt: skip
    if points is not None and len(points):
        biggest = max(float(points["visitors"].max()), 1.0)
        figure.add_trace(
            go.Scattergeo(
                lon=points["lon"], lat=points["lat"], name="Cities", mode="markers",
                marker={"size": 4 + 26 * (points["visitors"] / biggest) ** 0.5, "color": "rgba(214,39,40,0.65)", "line": {"width": 0.5, "color": "white"}},
                customdata=[[str(city) or "Unknown", fmt.number(v)] for city, v in zip(points["city"], points["visitors"], strict=True)],
                hovertemplate="%{customdata[0]}<br>Visitors: %{customdata[1]}<extra></extra>",
            )
        )  # fmt: skip
    figure.update_layout(
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        height=420,
        showlegend=False,
        geo={
            "showframe": False,
            "showcountries": True,
            "countrycolor": "#bbb",
            "showland": True,
            "landcolor": "#f3f3f3",
            "projection_type": "natural earth",
            "projection_rotation": {"lon": 0},
        },
    )
    return figure
