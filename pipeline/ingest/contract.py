"""The pixel contract: one HTTP request to `GET /pixel` becomes one queue message.

Two producers put messages on the inbound queue and must agree value for value: the API
Gateway request template (`infra/pixel_request.vtl`, AWS) and the local collector
(`pipeline.ingest.collector`). Both read only the named parameters and headers below, so the
message is bounded and the same for the same request.

Message, version 2 (JSON object, ASCII only; non-ASCII is `\\uXXXX`-escaped, so SQS's
character rules always hold):

- `v` (int): contract version, `2` (`1` is still accepted: see below).
- `request_id` (string): the request's id (`$context.requestId`; a UUID locally), 1-64 of
  `[A-Za-z0-9-]`; the event's idempotency key.
- `received_at` (int): epoch milliseconds when the request arrived.
- `source_ip` (string): the TCP peer (`$context.identity.sourceIp`); used only when
  `cloudfront-viewer-address` is empty.
- `query` (object), always all eight keys, `""` when absent:
  - `d` site, `u` page URL, `r` referrer, `n` event name, `p` props (JSON text), `w` screen
    width (version 1's six keys);
  - `e` engaged time in milliseconds (integer text) and `sd` maximum scroll depth in percent
    (integer text, 0-100): new in version 2, sent by the script only with `n=engagement`.
    They travel as the text that arrived; enrichment judges them (`add_engagement`), so a
    bad value can never make a message invalid.
- `headers` (object): the `FORWARDED_HEADERS` below, lower-case keys, `""` when absent.

Version 1 messages (six query keys, no `e`/`sd`), still in flight when a version-2 producer
is deployed, stay valid: `parse_message` reads their missing keys as `""`, as for any
absent parameter.

Every query and header value is cut to `MAX_VALUE_UNITS` UTF-16 code units (Java's string
length, which is what the template measures): 8 query values and 11 headers, 19 values of at
most 2,048 units, each unit at most a six-byte `\\uXXXX` escape, is 233,472 bytes plus under
1 KB of keys and punctuation, so a message always stays under SQS's 256 KiB (262,144 bytes).
A cut that would fall between the two halves of a surrogate pair (an emoji) falls before it,
one unit short, so no value ends in a lone surrogate. Unknown parameters are ignored. The
consumer validates the shape (`parse_message`) and cleans every value again (lone surrogates
included, which a body's JSON `\\ud83d` escapes can still carry).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from pipeline.errors import MalformedMessage

CONTRACT_VERSION = 2
# Versions the consumer still reads: messages queued by an older collector or template.
ACCEPTED_VERSIONS = (1, 2)
MAX_VALUE_UNITS = 2048

QUERY_KEYS = ("d", "u", "r", "n", "p", "w", "e", "sd")
FORWARDED_HEADERS = (
    "user-agent",
    "referer",
    "cloudfront-viewer-address",
    "cloudfront-viewer-country",
    "cloudfront-viewer-country-region",
    "cloudfront-viewer-city",
    "cloudfront-viewer-latitude",
    "cloudfront-viewer-longitude",
    "cloudfront-viewer-time-zone",
    "dnt",
    "sec-gpc",
)

# A 1x1 transparent GIF, 43 bytes.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
PIXEL_HEADERS = {
    "Content-Type": "image/gif",
    "Content-Length": str(len(PIXEL_GIF)),
    "Cache-Control": "no-cache, no-store, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
    "Access-Control-Allow-Origin": "*",
    "X-Content-Type-Options": "nosniff",
}

_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_HIGH_SURROGATES = (0xD800, 0xDBFF)


def cap_utf16(text: str, units: int = MAX_VALUE_UNITS) -> str:
    """Cut `text` to at most `units` UTF-16 code units (Java's string length), as the template
    does: `substring(0, units)`, one unit shorter when that would end in a high surrogate, so
    a surrogate pair is never split (its lone half would make parsers downstream raise)."""
    if len(text) <= units // 2:
        return text
    encoded = text.encode("utf-16-le", "surrogatepass")
    if len(encoded) <= 2 * units:
        return text
    cut = encoded[: 2 * units]
    if _HIGH_SURROGATES[0] <= int.from_bytes(cut[-2:], "little") <= _HIGH_SURROGATES[1]:
        cut = cut[:-2]
    return cut.decode("utf-16-le", "surrogatepass")


def parse_query(raw_query: str) -> dict[str, str]:
    """The named pixel parameters of a raw query string; the last of repeated keys wins."""
    pairs = parse_qsl(raw_query, keep_blank_values=True, errors="replace")
    found = {key: value for key, value in pairs if key in QUERY_KEYS}
    return {key: cap_utf16(found.get(key, "")) for key in QUERY_KEYS}


def pick_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The forwarded headers, looked up case-insensitively; `""` when absent."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return {name: cap_utf16(lowered.get(name) or "") for name in FORWARDED_HEADERS}


def build_message(
    raw_query: str,
    headers: Mapping[str, str],
    source_ip: str,
    received_at_ms: int,
    request_id: str,
) -> dict[str, Any]:
    """The queue message for one pixel request (what the VTL template renders on AWS)."""
    return {
        "v": CONTRACT_VERSION,
        "request_id": request_id,
        "received_at": int(received_at_ms),
        "source_ip": source_ip,
        "query": parse_query(raw_query),
        "headers": pick_headers(headers),
    }


def encode_message(message: Mapping[str, Any]) -> str:
    """The message body as sent to SQS: compact, ASCII-only JSON."""
    return json.dumps(message, ensure_ascii=True, separators=(",", ":"))


@dataclass(frozen=True)
class PixelMessage:
    """A validated queue message."""

    request_id: str
    received_at_ms: int
    source_ip: str
    query: Mapping[str, str]
    headers: Mapping[str, str]


def _string_map(value: Any, keys: tuple[str, ...], field: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise MalformedMessage(f"{field} is not an object")
    out = {}
    for key in keys:
        item = value.get(key, "")
        if item is None:
            item = ""
        if not isinstance(item, str):
            raise MalformedMessage(f"{field}.{key} is not a string")
        out[key] = item
    return out


def parse_message(body: str) -> PixelMessage:
    """Validate a queue message body; raise `MalformedMessage` for anything off-contract."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise MalformedMessage(f"body is not JSON: {exc}") from exc
    except RecursionError as exc:  # no contract message nests more than two levels
        raise MalformedMessage("body is JSON nested too deeply") from exc
    if not isinstance(data, dict):
        raise MalformedMessage("body is not a JSON object")
    version = data.get("v")
    if isinstance(version, bool) or version not in ACCEPTED_VERSIONS:
        # Only a number is echoed: these reasons are logged, and a string could carry anything.
        shown = version if isinstance(version, int) else f"of type {type(version).__name__}"
        raise MalformedMessage(f"unsupported contract version {shown}")
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
        raise MalformedMessage("request_id is missing or not [A-Za-z0-9-]{1,64}")
    received_at = data.get("received_at")
    if not isinstance(received_at, int) or isinstance(received_at, bool) or received_at <= 0:
        raise MalformedMessage("received_at is not a positive integer")
    source_ip = data.get("source_ip", "")
    if not isinstance(source_ip, str):
        raise MalformedMessage("source_ip is not a string")
    return PixelMessage(
        request_id=request_id,
        received_at_ms=received_at,
        source_ip=source_ip,
        query=_string_map(data.get("query"), QUERY_KEYS, "query"),
        headers=_string_map(data.get("headers"), FORWARDED_HEADERS, "headers"),
    )
