"""Docs as tests: every dashboard page and every top-line metric is described in the README."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.metrics import Summary

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
NAVIGATION = (Path(__file__).resolve().parent.parent / "dashboard" / "navigation.py").read_text()


def test_every_page_is_in_the_readme():
    titles = re.findall(r'title="([^"]+)"', NAVIGATION)
    assert len(titles) == 9
    for title in titles:
        assert f"| {title} |" in README, title


def test_every_metric_is_defined_in_the_readme():
    labels = {
        "visitors": "Unique visitors",
        "visits": "Total visits",
        "pageviews": "Total pageviews",
        "views_per_visit": "Views per visit",
        "bounce_rate": "Bounce rate",
        "visit_duration": "Visit duration",
    }
    assert set(labels) == set(Summary.__dataclass_fields__)
    for label in labels.values():
        assert f"**{label}**" in README, label
