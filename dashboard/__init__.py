"""The Streamlit app layer: caching and backend selection. The maths stays in `pipeline`."""
