"""Geography: one world map (countries shaded by visitors, located visitors as circles), and the
countries / regions / cities tables."""

import streamlit as st

from dashboard import charts
from dashboard.context import load
from dashboard.tables import filterable_table

data = load()
st.title("Geography")
points = data.cities()
countries = data.table("country")
# One plotly map, offline: plotly draws the country outlines from the world file this app
# serves (static/world_110m.json at /app/static/), not from its CDN, and there is no basemap.
st.plotly_chart(
    charts.world_map(countries[countries["value"] != ""], points),
    width="stretch",
    key="geo_world",
    config={"topojsonURL": "/app/static/", "displaylogo": False},
)
if points.empty:
    st.caption(
        "No located cities in this period (locally, without CloudFront's location headers, locations are unknown)."
    )
tab_countries, tab_regions, tab_cities = st.tabs(["Countries", "Regions", "Cities"])
with tab_countries:
    filterable_table(countries, "country", "geo_countries")
with tab_regions:
    filterable_table(data.table("region"), "region", "geo_regions")
with tab_cities:
    filterable_table(data.table("city"), "city", "geo_cities")
