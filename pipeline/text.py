"""Cleaning of untrusted text before it is stored."""

from __future__ import annotations

import re

# Control characters and lone surrogates: the first garble tables, the second can't be UTF-8.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def clean(text: str, cap: int) -> str:
    """`text` without control characters or lone surrogates, trimmed, at most `cap` characters."""
    if not text:
        return ""
    return _UNSAFE.sub("", text).strip()[:cap].strip()
