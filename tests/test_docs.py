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


def broken_links(doc: Path) -> list[str]:
    """The relative links of `doc` whose file, or whose anchor in a Markdown file, is missing."""
    broken = []
    for target in relative_links(doc.read_text()):
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        anchored = not anchor or resolved.suffix != ".md"
        if not resolved.exists() or not (anchored or anchor in anchors(resolved.read_text())):
            broken.append(target)
    return broken


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_every_relative_link_resolves(doc: Path):
    assert broken_links(doc) == []


def test_the_link_check_catches_a_missing_file_and_a_missing_anchor(tmp_path: Path):
    (tmp_path / "there.md").write_text("# Real heading\n")
    doc = tmp_path / "x.md"
    doc.write_text(
        "# Title\n\n[gone](nowhere.md) [ok](there.md#real-heading) [bad](there.md#nope) "
        "[self](#title) [web](https://example.com/x.md)\n```\n[in code](ignored.md)\n```\n"
    )
    assert broken_links(doc) == ["nowhere.md", "there.md#nope"]
