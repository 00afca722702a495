"""Docs as tests: every dashboard page and metric is described, and every link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.stats.metrics import Summary

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
DASHBOARD_DOC = (ROOT / "docs" / "dashboard.md").read_text()
NAVIGATION = (ROOT / "dashboard" / "navigation.py").read_text()
# [text](target) outside code spans; images too.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_every_page_is_in_the_dashboard_doc():
    titles = re.findall(r'title="([^"]+)"', NAVIGATION)
    assert len(titles) == 9
    for title in titles:
        assert f"| {title} |" in DASHBOARD_DOC, title


def test_every_metric_is_defined_in_the_dashboard_doc():
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
        assert f"**{label}**" in DASHBOARD_DOC, label


def test_the_readme_is_short_and_links_every_doc():
    text = README.read_text()
    assert len(text.encode()) <= 12 * 1024
    assert "make run" in text and "make test" in text
    for doc in DOCS:
        assert f"](docs/{doc.name})" in text, doc.name


def anchors(markdown: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def relative_links(markdown: str) -> list[str]:
    without_code = re.sub(r"```.*?```", "", markdown, flags=re.S)
    return [t for t in LINK.findall(without_code) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_every_relative_link_resolves(doc: Path):
    text = doc.read_text()
    for target in relative_links(text):
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        assert resolved.exists(), f"{doc.name}: {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved.read_text()), f"{doc.name}: {target}"


def test_the_link_check_catches_a_broken_link(tmp_path: Path):
    doc = tmp_path / "x.md"
    doc.write_text("# Title\n\nSee [missing](nowhere.md) and [ok](#title).\n")
    assert relative_links(doc.read_text()) == ["nowhere.md", "#title"]
    assert not (tmp_path / "nowhere.md").exists()
    assert "title" in anchors(doc.read_text())
