"""Cleaning of untrusted text before it is stored, or parsed."""

from __future__ import annotations

import re

# Control characters and lone surrogates: the first garble tables, the second can't be UTF-8.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# A Python string holds an astral character as one code point, so any surrogate code point in
# it is a lone half: what a cut through a pair, or a JSON "\ud83d" escape, leaves behind.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean(text: str, cap: int) -> str:
    """`text` without control characters or lone surrogates, trimmed, at most `cap` characters."""
    if not text:
        return ""
    return _UNSAFE.sub("", text).strip()[:cap].strip()


def without_lone_surrogates(text: str) -> str:
    """`text` without lone surrogates, which parsers that encode to UTF-8 raise on."""
    # Most values are ASCII, and CPython knows that of a string without looking at it again.
    return text if text.isascii() else _SURROGATE.sub("", text)
