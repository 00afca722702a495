"""`md_escape`: text from events and the URL reads as itself through Markdown, and every
dashboard call that renders Markdown passes data only through it (a static check)."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from dashboard.format import WORD_JOINER, md_escape

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    ROOT / "streamlit_app.py",
    *sorted((ROOT / "dashboard").glob("*.py")),
    *sorted((ROOT / "pages").glob("*.py")),
]
COMMONMARK = MarkdownIt("commonmark").enable(["table", "strikethrough"])

# Patterns that Streamlit's plugins look for in parsed text, after escapes are resolved: GFM's
# transform-time autolinks (mdast-util-gfm-autolink-literal), remark-emoji's shortcodes,
# `:streamlit:`, `:material/…:` and Streamlit's typography (` -> ` to an arrow).
LATE_PATTERNS = {
    "url autolink": re.compile(r"(https?://|www(?=\.))[\w-]*\.", re.IGNORECASE),
    "email autolink": re.compile(r"[\w+\-.]+@[\w-]+(\.[\w-]+)+"),
    "shortcode": re.compile(r":[\w+\-/]+:"),
    "material icon": re.compile(r":material/"),
    "typography": re.compile(r"(^|\s)(<->|->|<-|--|>=|<=|~=)(\s|$)"),
}
HOSTILE = [
    "/![x](http://127.0.0.1:8000/leak.png)",
    "Your account expired: [log in again](https://evil.test/login)",
    "**bold** $$x$$ $y$ ~~s~~ `code` <b>html</b> <https://evil.test>",
    ":smile: :red[red] :material/home: :streamlit: :help[tip]",
    "www.evil.test evil@evil.test https://evil.test x -> y",
    "# heading\n> quote\n- item\n1. item\n    code\n| a | b |",
    "[ref]\n\n[ref]: https://evil.test",
    "&lt;b&gt; &#42;x&#42; \\*",
]
# Punctuation, markup words and spaces, so that generated text often looks like markup.
MARKUPISH = st.lists(
    st.sampled_from(
        [*string.punctuation, *" \t\n", "a", "b", "1", "www", "http", "ü", "🙂", "\u2060"]
    ),
    max_size=40,
).map("".join)


def shown(text: str) -> str:
    """What a reader sees of `text` in HTML: whitespace runs as one space, none at the ends."""
    return re.sub(r"[\x00-\x20\x7f\u2028\u2029]+", " ", text).strip(" ")


def parsed_text(markdown: str) -> str:
    """The text of `markdown` parsed as CommonMark (+ tables, strikethrough); fails the test if
    it parses to anything but one paragraph of plain text."""
    tokens = COMMONMARK.parse(markdown)
    if not tokens:
        return ""
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"], tokens
    children = tokens[1].children or []
    assert {child.type for child in children} <= {"text", "text_special"}, children
    return "".join(child.content for child in children)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_parses_to_itself(text):
    assert parsed_text(md_escape(text)).replace(WORD_JOINER, "") == shown(text)


@given(MARKUPISH)
def test_any_text_parses_to_one_paragraph_reading_as_itself(text):
    escaped = md_escape(text)
    assert parsed_text(escaped).replace(WORD_JOINER, "") == shown(text).replace(WORD_JOINER, "")
    # Nothing Streamlit rewrites after parsing survives.
    for name, pattern in LATE_PATTERNS.items():
        assert not pattern.search(parsed_text(escaped)), name


def test_values_that_are_not_text_are_shown_as_str():
    assert md_escape(1234) == "1234"
    assert parsed_text(md_escape(ValueError("no [table](x)"))) == "no [table](x)"


# The static check: Streamlit calls whose arguments render as Markdown (label or body, the
# metric's value and delta, radio options, tab labels, help texts).
MARKDOWN_ARGUMENTS: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    **{
        name: ((0,), ("body",))
        for name in ("markdown", "caption", "title", "header", "subheader", "info", "warning", "error", "success", "toast", "write")
    },
    **{
        name: ((0,), ("label",))
        for name in ("button", "download_button", "link_button", "form_submit_button", "popover", "expander", "checkbox", "toggle", "text_input", "text_area", "number_input", "date_input", "time_input", "selectbox", "multiselect", "slider", "select_slider", "color_picker", "file_uploader", "pills", "segmented_control", "chat_input")
    },
    "metric": ((0, 1, 2), ("label", "value", "delta")),
    "radio": ((0, 1), ("label", "options", "captions")),
    "tabs": ((0,), ("tabs",)),
    "page_link": ((1,), ("label",)),
    "Page": ((), ("title",)),
}  # fmt: skip
FORMATTERS = {"md_escape", "len", "number", "percent", "duration", "change"}
PRAGMA = "# markdown-safe:"
NUMERIC_SPEC = re.compile(r"[+\- ]?0?\d*[,_]?(\.\d+)?[dfgeF%]?")


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _numeric_spec(spec: ast.JoinedStr) -> bool:
    """A format spec that only numbers and dates take: `,`, `.2f`, `+.0f`, `%d %b %Y`."""
    text = "".join(v.value for v in spec.values if isinstance(v, ast.Constant))
    if len(text) != len(spec.values) and any(not isinstance(v, ast.Constant) for v in spec.values):
        return False
    return "%" in text or bool(NUMERIC_SPEC.fullmatch(text) and re.search(r"[,_dfgeF%]", text))


def safe(node: ast.expr) -> bool:
    """Literal text, `md_escape(…)`, a number formatter, or f-strings and lists of those."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.JoinedStr):
        return all(
            isinstance(part, ast.Constant)
            or (part.conversion == -1 and part.format_spec is not None and _numeric_spec(part.format_spec))
            or (part.conversion == -1 and part.format_spec is None and safe(part.value))
            for part in node.values
        )  # fmt: skip
    if isinstance(node, ast.Call):
        return _name(node.func) in FORMATTERS
    if isinstance(node, (ast.List, ast.Tuple)):
        return all(safe(element) for element in node.elts)
    if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
        return safe(node.elt)
    if isinstance(node, ast.IfExp):
        return safe(node.body) and safe(node.orelse)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return safe(node.left) and safe(node.right)
    return False


def unsafe_calls(source: str) -> tuple[list[str], int]:
    """(`line: call` for each Markdown argument that may carry raw data, calls checked)."""
    lines = source.splitlines()
    found, checked = [], 0
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name = node.func.attr
        if name not in MARKDOWN_ARGUMENTS or "log" in ast.unparse(node.func.value).lower():
            continue
        checked += 1
        if node.lineno >= 2 and lines[node.lineno - 2].strip().startswith(PRAGMA):
            continue
        positions, keywords = MARKDOWN_ARGUMENTS[name]
        arguments = [node.args[i] for i in positions if i < len(node.args)]
        arguments += [k.value for k in node.keywords if k.arg in (*keywords, "help")]
        if any(not safe(argument) for argument in arguments):
            found.append(f"{node.lineno}: {ast.unparse(node)[:120]}")
    return found, checked


@pytest.mark.parametrize(
    "call",
    [
        'st.markdown(f"- {line}")',
        "st.title(view.site)",
        'st.info("No events for " + view.site)',
        'st.caption(f"{view.site:>20}")',
        'st.error(f"{md_escape(a)} {b!r}")',
        "column.metric(label, value)",
        'st.metric("Visitors", 3, delta=change)',
        'st.button("ok", help=value)',
        "st.tabs(list(tabs))",
        "st.radio('Chart', options)",
        "st.error(str(exc))",
    ],
)
def test_the_check_catches_raw_data_in_markdown(call):
    found, checked = unsafe_calls(call)
    assert checked == 1 and len(found) == 1


@pytest.mark.parametrize(
    "call",
    [
        'st.markdown(f"- {md_escape(line)}")',
        'st.title(f"{md_escape(site)} · {first:%d %b %Y}")',
        'st.caption(f"{len(frame):,} events, {share:.0%}")',
        'column.metric("Visitors", fmt.number(n), fmt.change(c))',
        "st.tabs([md_escape(label) for label in tabs])",
        'st.selectbox("Site", sites)',  # options of a selectbox are plain text
        'logger.error("%s", value)',
        "# markdown-safe: literals\ncolumn.metric(label, value)",
    ],
)
def test_the_check_passes_escaped_or_literal_text(call):
    found, _ = unsafe_calls(call)
    assert found == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_markdown_call_of_the_dashboard_escapes_its_data(path):
    found, _ = unsafe_calls(path.read_text())
    assert found == [], f"{path.name}: use md_escape() for data in Markdown:\n" + "\n".join(found)


def test_the_check_sees_the_dashboards_markdown_calls():
    checked = sum(unsafe_calls(path.read_text())[1] for path in SOURCES)
    assert checked >= 40
