"""API Gateway's mapping-template environment, for rendering our VTL with airspeed-ext.

airspeed-ext (LocalStack's fork of airspeed) is the Velocity engine; this module supplies
what API Gateway puts around it, following its documentation: `$input.params()`,
`$context`, and `$util` with Java's semantics (commons-lang `escapeJavaScript`,
`java.net.URLEncoder`, `String.length()`/`substring()`/`codePointAt()` in UTF-16 units).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from airspeed import Template, operators

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "pixel_request.vtl"
EVENT_TEMPLATE = TEMPLATE.with_name("event_request.vtl")
_URL_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*_")


def _units(text: str) -> bytes:
    return text.encode("utf-16-le", "surrogatepass")


def java_length(text: str) -> int:
    return len(_units(text)) // 2


def java_substring(text: str, start: int, end: int | None = None) -> str:
    return _units(text)[2 * start : None if end is None else 2 * end].decode(
        "utf-16-le", "surrogatepass"
    )


def java_code_point_at(text: str, index: int) -> int:
    """`String.codePointAt(index)`: the code point starting at UTF-16 unit `index`; a high
    surrogate with no low one after it (a lone half) is returned as its own unit."""
    units = _units(text)
    if not 0 <= index < len(units) // 2:
        raise IndexError(f"index {index} out of range")  # Java: StringIndexOutOfBoundsException
    unit = int.from_bytes(units[2 * index : 2 * index + 2], "little")
    following = int.from_bytes(units[2 * index + 2 : 2 * index + 4], "little")
    if 0xD800 <= unit <= 0xDBFF and 0xDC00 <= following <= 0xDFFF:
        return 0x10000 + ((unit - 0xD800) << 10) + (following - 0xDC00)
    return unit


# Java strings count UTF-16 units; airspeed's defaults count code points.
operators.__additional_methods__[str].update(
    {
        "length": java_length,
        "substring": java_substring,
        "codePointAt": java_code_point_at,
        "toLowerCase": str.lower,
    }
)


def escape_javascript(text: str) -> str:
    """commons-lang 2 `StringEscapeUtils.escapeJavaScript`, which API Gateway uses."""
    out = []
    for index in range(0, len(_units(text)), 2):
        unit = int.from_bytes(_units(text)[index : index + 2], "little")
        if unit > 0x7F:
            out.append(f"\\u{unit:04X}")
        elif unit < 32:
            named = {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}
            out.append(named.get(unit, f"\\u{unit:04X}"))
        else:
            char = chr(unit)
            out.append({"'": "\\'", '"': '\\"', "\\": "\\\\", "/": "\\/"}.get(char, char))
    return "".join(out)


def url_encode(text: str) -> str:
    """`java.net.URLEncoder.encode(text, "UTF-8")`: space → "+", lone surrogates → "?"."""
    out = []
    for byte in text.encode("utf-8", "replace"):
        if byte in _URL_SAFE:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


class Util:
    def escapeJavaScript(self, text: str) -> str:  # noqa: N802 (API Gateway's name)
        return escape_javascript(text)

    def urlEncode(self, text: str) -> str:  # noqa: N802
        return url_encode(text)

    def base64Encode(self, text: str) -> str:  # noqa: N802
        return base64.b64encode(text.encode()).decode()

    def base64Decode(self, text: str) -> str:  # noqa: N802
        return base64.b64decode(text).decode()


class Input:
    def __init__(self, raw_query: str, headers: Mapping[str, str], body: str = "") -> None:
        # `$input.body`: the raw payload as a string (API Gateway's documented variable).
        self.body = body
        # API Gateway hands the template decoded values; for a repeated key, the last one.
        self._params = {
            "path": {},
            "querystring": dict(parse_qsl(raw_query, keep_blank_values=True, errors="replace")),
            "header": dict(headers),
        }

    def params(self) -> dict[str, Any]:
        return self._params


def render(
    raw_query: str, headers: Mapping[str, str], source_ip: str, epoch_ms: int, request_id: str
) -> str:
    """The integration request body API Gateway would send to SQS for this request."""
    context = {
        "requestId": request_id,
        "requestTimeEpoch": epoch_ms,
        "identity": {"sourceIp": source_ip},
    }
    return Template(TEMPLATE.read_text()).merge(
        {"input": Input(raw_query, headers), "context": context, "util": Util()}
    )


def render_event(
    body: str, headers: Mapping[str, str], source_ip: str, epoch_ms: int, request_id: str
) -> str:
    """The integration request body API Gateway would send to SQS for a `POST /api/event`."""
    context = {
        "requestId": request_id,
        "requestTimeEpoch": epoch_ms,
        "identity": {"sourceIp": source_ip},
    }
    return Template(EVENT_TEMPLATE.read_text()).merge(
        {"input": Input("", headers, body), "context": context, "util": Util()}
    )
