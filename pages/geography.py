"""Geography: visitor locations on a map, countries on a world map, and the tables."""

import streamlit as st

from dashboard import charts
from dashboard.context import load
from dashboard.tables import filterable_table

data = load()
st.title("Geography")
points = data.cities()
if points.empty:
    st.caption(
        "No located visitors in this period (locally, without CloudFront's location headers, locations are unknown)."
    )
else:
    st.pydeck_chart(charts.deck_map(points), key="geo_map")
countries = data.breakdown("country")
# The world's outline is served by this app (static/), not fetched from plotly's CDN: offline-safe.
st.plotly_chart(
    charts.world_map(countries[countries["value"] != ""]),
    width="stretch",
    key="geo_world",
    config={"topojsonURL": "/app/static/"},
)
tab_countries, tab_regions, tab_cities = st.tabs(["Countries", "Regions", "Cities"])
with tab_countries:
    filterable_table(
        countries.assign(name=countries["value"].map(charts.country_name)),
        "country",
        "geo_countries",
    )
with tab_regions:
    filterable_table(data.breakdown("region"), "region", "geo_regions")
with tab_cities:
    filterable_table(data.breakdown("city"), "city", "geo_cities")
