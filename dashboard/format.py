"""How numbers read on the dashboard."""

from __future__ import annotations


def number(value: float) -> str:
    return f"{value:,.0f}"


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def duration(seconds: float) -> str:
    seconds = round(seconds)
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{rest}s"


def change(value: float | None) -> str | None:
    """A percent change for `st.metric`'s delta; None (no delta) from a missing baseline."""
    return None if value is None else f"{value:+.0f}%"
