"""Chart builders: data in, plotly/pydeck objects out. No Streamlit here."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pycountry
import pydeck as pdk


def time_chart(
    series: pd.DataFrame,
    metric: str,
    previous: pd.DataFrame | None = None,
    flagged: pd.DataFrame | None = None,
) -> go.Figure:
    """`metric` over `series["bucket"]`, the comparison period's line aligned on it, and
    anomaly markers."""
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=series["bucket"], y=series[metric], name=metric.capitalize(), mode="lines+markers"
        )
    )
    if previous is not None and len(previous):
        aligned = previous[metric].to_numpy()[: len(series)]
        figure.add_trace(
            go.Scatter(
                x=series["bucket"][: len(aligned)],
                y=aligned,
                name="Comparison",
                mode="lines",
                line={"dash": "dot", "color": "#999"},
            )
        )
    if flagged is not None and flagged["anomaly"].any():
        marks = flagged[flagged["anomaly"]]
        figure.add_trace(
            go.Scatter(
                x=marks.index, y=marks["value"], name="Unusual", mode="markers",
                marker={"symbol": "diamond", "size": 13, "color": "#d62728"},
                hovertext=[f"usually {b:.0f}" for b in marks["baseline"]],
            )
        )  # fmt: skip
    figure.update_layout(
        margin={"l": 10, "r": 10, "t": 30, "b": 10}, height=340, legend={"orientation": "h"}
    )
    return figure


def _alpha3(code: str) -> str | None:
    found = pycountry.countries.get(alpha_2=code) if code else None
    return found.alpha_3 if found else None


def country_name(code: str) -> str:
    found = pycountry.countries.get(alpha_2=code) if code else None
    return found.name if found else (code or "Unknown")


def world_map(by_country: pd.DataFrame) -> go.Figure:
    """Visitors by country (`value` holds ISO alpha-2 codes) on a world choropleth."""
    table = by_country.assign(
        iso3=by_country["value"].map(_alpha3), name=by_country["value"].map(country_name)
    )
    table = table.dropna(subset=["iso3"])
    figure = go.Figure(
        go.Choropleth(
            locations=table["iso3"],
            z=table["visitors"],
            text=table["name"],
            colorscale="Blues",
            marker_line_width=0.3,
        )
    )
    figure.update_layout(
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        height=380,
        geo={
            "showframe": False,
            "projection_type": "natural earth",
            "projection_rotation": {"lon": 0},
        },
    )
    return figure


def deck_map(points: pd.DataFrame) -> pdk.Deck:
    """Visitor locations as circles; no basemap, so it works offline."""
    layer = pdk.Layer(
        "ScatterplotLayer",
        data=points,
        get_position=["lon", "lat"],
        get_radius="visitors",
        radius_scale=6000,
        radius_min_pixels=3,
        radius_max_pixels=40,
        get_fill_color=[31, 119, 180, 170],
        pickable=True,
    )
    return pdk.Deck(
        layers=[layer],
        initial_view_state=pdk.ViewState(latitude=25, longitude=10, zoom=0.6),
        map_style=None,
        tooltip={"text": "{city}: {visitors} visitors"},
    )
