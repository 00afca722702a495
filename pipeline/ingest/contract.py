"""The ingestion contract: one HTTP request, to `GET /pixel` or to Plausible's `POST /api/event`,
becomes one queue message.

Two producers put messages on the inbound queue and must agree value for value: the API
Gateway request templates (`infra/pixel_request.vtl` and `infra/event_request.vtl`, AWS) and
the local collector (`pipeline.ingest.collector`). Both read only the named parameters,
headers and (event API) body below, so the message is bounded and the same for the same
request.

Message, version 3 (JSON object, ASCII only; non-ASCII is `\\uXXXX`-escaped, so SQS's
character rules always hold):

- `v` (int): contract version: `3` for an event-API message; a pixel message is still
  version `2` (`PIXEL_VERSION`), which is version 3 without `body` (read as `""`), so the
  pixel template and its messages did not change. `1` is still accepted too: see below.
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
  - An event-API message leaves all eight `""`: its values are in `body`.
- `headers` (object): the `FORWARDED_HEADERS` below, lower-case keys, `""` when absent.
- `body` (string), new in version 3: the raw text of a `POST /api/event` request body
  (Plausible's event JSON); absent (`""`) in a pixel message. It is carried as text, never parsed by
  a producer's template, cut to `MAX_BODY_UNITS`; the consumer maps it into the same `query`
  dict a pixel gives (`event_queries`), so enrichment, privacy rules, drops and storage are
  the pixel's. A body that is not a usable event (a cut one, or anything a validator let
  through) becomes the counted drop `bad_body`, never a dead letter.

Versions 1 and 2 (no `body`; version 1 also without `e`/`sd`), still in flight when a newer
producer is deployed, stay valid: `parse_message` reads their missing keys as `""`, as for
any absent parameter.

Every query and header value is cut to `MAX_VALUE_UNITS` UTF-16 code units (Java's string
length, which is what the template measures), each unit at most a six-byte `\\uXXXX` escape:
- a pixel message: 8 query values and 11 headers, 19 values of at most 2,048 units, is
  233,472 bytes plus under 1 KB of keys and punctuation (its `body` is `""`);
- an event message: the body takes the eight query values' place, `MAX_BODY_UNITS` = 16,384
  = 8 x 2,048 units, 98,304 bytes at most, plus 11 headers (135,168 bytes): the same 233,472
  bytes, plus under 1 KB (its query values are `""`).
A message always stays under SQS's 256 KiB (262,144 bytes). A cut that would fall between
the two halves of a surrogate pair (an emoji) falls before it, one unit short, so no value
ends in a lone surrogate. Unknown parameters are ignored. The consumer validates the shape
(`parse_message`) and cleans every value again (lone surrogates included, which a body's
JSON `\\ud83d` escapes can still carry).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pipeline.errors import MalformedMessage

CONTRACT_VERSION = 3
# A pixel message is still rendered as version 2: version 3 only adds `body`, which a pixel
# message leaves out (read as ""), so the pixel's template and its messages are unchanged.
PIXEL_VERSION = 2
# Versions the consumer still reads: messages queued by an older collector or template.
ACCEPTED_VERSIONS = (1, 2, 3)
MAX_VALUE_UNITS = 2048
# An event body takes the place of the eight query values in the size bound (docstring).
MAX_BODY_UNITS = 8 * MAX_VALUE_UNITS
# Plausible sends one event to every domain of a comma-separated `d`; more than this many
# in one request are ignored (each costs an enrichment and a write).
MAX_DOMAINS = 10

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
        "v": PIXEL_VERSION,
        "request_id": request_id,
        "received_at": int(received_at_ms),
        "source_ip": source_ip,
        "query": parse_query(raw_query),
        "headers": pick_headers(headers),
    }


def build_event_message(
    body: str,
    headers: Mapping[str, str],
    source_ip: str,
    received_at_ms: int,
    request_id: str,
) -> dict[str, Any]:
    """The queue message for one `POST /api/event` (what `infra/event_request.vtl` renders):
    the body as text, cut like any value; every query value `""`."""
    return {
        "v": CONTRACT_VERSION,
        "request_id": request_id,
        "received_at": int(received_at_ms),
        "source_ip": source_ip,
        "query": dict.fromkeys(QUERY_KEYS, ""),
        "headers": pick_headers(headers),
        "body": cap_utf16(body, MAX_BODY_UNITS),
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
    body: str = ""  # an event-API body (version 3); "" for a pixel message


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
    body = data.get("body", "")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise MalformedMessage("body is not a string")
    return PixelMessage(
        request_id=request_id,
        received_at_ms=received_at,
        source_ip=source_ip,
        query=_string_map(data.get("query"), QUERY_KEYS, "query"),
        headers=_string_map(data.get("headers"), FORWARDED_HEADERS, "headers"),
        body=body,
    )


# ---- the event API's body → the pixel's query ---------------------------------------------
#
# Plausible reads each field under a short and a long name, the first one set winning
# (`request_body["n"] || request_body["name"]`: JSON null and false count as unset).
NAME_KEYS = ("n", "name")
URL_KEYS = ("u", "url")
DOMAIN_KEYS = ("d", "domain")
REFERRER_KEYS = ("r", "referrer")
PROPS_KEYS = ("m", "meta", "p", "props")  # Plausible's order: the legacy `m` first
HASH_KEYS = ("h", "hashMode")
ENGAGED_KEYS = ("e", "engagement_time")
SCROLL_KEYS = ("sd", "scroll_depth")
WIDTH_KEYS = ("w", "screen_width")


def _first(body: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = body.get(key)
        if value is not None and value is not False:
            return value
    return None


def _number_text(value: Any) -> str:
    """A number as the pixel would carry it (text); anything else is absent."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _prop_kept(key: str, value: Any) -> bool:
    # Plausible's filter_bad_props: no list or object values, no blank key or value.
    if isinstance(value, list | dict) or value is None:
        return False
    text = value if isinstance(value, str) else json.dumps(value)
    return bool(key.lstrip()) and bool(text.lstrip())


def _props_text(value: Any) -> str:
    """Props as the pixel's `p` carries them: JSON text of an object. Plausible also takes
    the text of one (its old script sent `m` as a string), which enrichment parses."""
    if isinstance(value, dict):
        kept = {key: item for key, item in value.items() if _prop_kept(key, item)}
        return json.dumps(kept, separators=(",", ":")) if kept else ""
    return value if isinstance(value, str) else ""


def _bare(host: str) -> str:
    host = host.strip()
    return host[4:] if host.startswith("www.") else host


def _domains(body: Mapping[str, Any], url: str) -> list[str]:
    """Plausible's `map_domains`: a comma-separated `d` names every site the event goes to
    (trimmed, `www.` removed); without one, the page's host. Repeats count once here."""
    raw = _first(body, DOMAIN_KEYS)
    if isinstance(raw, str):
        names = [_bare(name) for name in raw.split(",")]
    else:
        try:
            names = [_bare(urlsplit(url).hostname or "")]
        except ValueError:  # a URL urlsplit refuses (a bad IPv6 literal): no host
            names = [""]
    return list(dict.fromkeys(names))[:MAX_DOMAINS]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python's extension, not JSON


def event_queries(body: str) -> list[dict[str, str]] | None:
    """The pixel queries an event body stands for, one per domain it names; None when the
    body is not a usable event (not JSON, not an object, no name or URL of the right type).

    The producers have validated the body against `event_schema.json` already; this checks
    again by hand (the consumer trusts no message) and is lenient where Plausible is: a
    field of another type is read as absent."""
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    name, url = _first(data, NAME_KEYS), _first(data, URL_KEYS)
    if isinstance(name, int) and not isinstance(name, bool):
        name = str(name)  # Plausible takes integers (404 tracking sends status codes)
    if not isinstance(name, str) or not name or not isinstance(url, str) or not url:
        return None
    if _first(data, HASH_KEYS) not in (1, "1"):
        url = url.split("#", 1)[0]  # Plausible keeps the fragment only in hash mode
    referrer = _first(data, REFERRER_KEYS)
    common = {
        "u": url,
        "r": referrer if isinstance(referrer, str) else "",
        "n": name,
        "p": _props_text(_first(data, PROPS_KEYS)),
        "w": _number_text(_first(data, WIDTH_KEYS)),
        "e": _number_text(_first(data, ENGAGED_KEYS)),
        "sd": _number_text(_first(data, SCROLL_KEYS)),
    }
    return [
        {key: cap_utf16(value) for key, value in {"d": domain, **common}.items()}
        for domain in _domains(data, url)
    ]
