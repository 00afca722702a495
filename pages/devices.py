"""Devices: browsers and OS (with versions), device classes and screen sizes."""

from collections.abc import Callable, Iterable

import streamlit as st

from dashboard.context import load
from dashboard.tables import filterable_table

data = load()
st.title("Devices")


def version_filters(family: str, names: Iterable[str]) -> Callable[[str], dict[str, str]]:
    """A "Chrome 120" row filters by browser Chrome and version 120: a version number alone
    would match every browser with that number. The family's own names ("Chrome Mobile")
    may hold spaces, so the longest name the label starts with is the family."""
    known = sorted((str(name) for name in names if str(name)), key=len, reverse=True)

    def filters(label: str) -> dict[str, str]:
        name = next((n for n in known if label == n or label.startswith(f"{n} ")), label)
        number = label[len(name) :].strip()
        return {family: name} | ({f"{family}_version": number} if number else {})

    return filters


TABS = {
    "Browser": "browser",
    "Browser version": "browser_version",
    "OS": "os",
    "OS version": "os_version",
    "Device": "device",
    "Screen size": "screen",
}
tables = {dimension: data.table(dimension) for dimension in TABS.values()}
to_filters = {
    "browser_version": version_filters("browser", tables["browser"]["value"]),
    "os_version": version_filters("os", tables["os"]["value"]),
}
# markdown-safe: the tab labels are the literal keys of TABS
for tab, dimension in zip(st.tabs(list(TABS)), TABS.values(), strict=True):
    with tab:
        filterable_table(
            tables[dimension],
            dimension,
            f"devices_{dimension}",
            to_filters=to_filters.get(dimension),
        )
