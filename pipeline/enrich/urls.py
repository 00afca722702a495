"""Page, referrer and link URLs reduced to what analytics needs: host and path (plus `utm_*`,
and the query parameters a site chose to keep).

Secrets ride in URLs in more places than the query: a hash route's own parameters
(`#/callback&access_token=…`), path parameters (`/page;jsessionid=…`) and a `?` sent
percent-encoded (`/path%3Ftoken%3D…`, which decoding would turn into a stored query). Every
URL this module returns has lost all of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from pipeline.enrich.text import clean

MAX_HOST = 253
MAX_PATH = 2000
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_UTM = 300
MAX_KEPT_VALUE = 300
MAX_LINK = 2000  # the enrichment's cap on a prop value
# Props that hold a URL (the link of an outbound click or a file download): stripped like pages.
LINK_PROPS = ("url",)

# A decoded path ends at its first `?` or `#`: one that arrived percent-encoded starts a query or
# fragment the browser never parsed as one, and is as private as a real one.
_PATH_END = re.compile(r"[?#]")
# Path parameters (RFC 3986: `;` to the end of the segment), e.g. `;jsessionid=…`: session ids
# and tokens, never a page of their own.
_PATH_PARAMS = re.compile(r";[^/]*")
# A hash route ends where its parameters start: `?`, `&` (`#/callback&access_token=…`, what an
# OAuth implicit flow answers into a hash router) or a nested `#`. A route named with a literal
# `&` ("#/q&a") is cut short too: a shorter name costs less than a stored token.
_ROUTE_END = re.compile(r"[?&#]")
# A value with an authority (`https://host…`, `//host…`) is parsed as a URL; anything else in a
# link prop (a relative link, `mailto:`) is cut as a bare path.
_HAS_AUTHORITY = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


@dataclass(frozen=True)
class StrippedUrl:
    host: str
    path: str
    utm: dict[str, str] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Scheme-less host + path, plus the `utm_*` and the site's own kept parameters."""
        query = urlencode({**self.utm, **self.kept})
        return f"{self.host}{self.path}" + (f"?{query}" if query else "")


def _split(raw: str):
    raw = raw.strip()
    if "://" not in raw[:16] and not raw.startswith("//"):
        raw = "//" + raw
    try:
        return urlsplit(raw)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None


def _host(parts) -> str:
    try:
        host = parts.hostname or ""
    except ValueError:
        return ""
    return clean(host.rstrip("."), MAX_HOST)


def _bare_path(raw: str) -> str:
    """A percent-encoded path decoded, then cut at a decoded `?`/`#`, without `;` parameters.

    Decoding comes first so that nothing encoded slips past the cuts."""
    path = _PATH_END.split(unquote(raw, errors="replace"), maxsplit=1)[0]
    return _PATH_PARAMS.sub("", path)


def _route(fragment: str) -> str:
    """A hash route ("/settings", "!/pricing") without its parameters."""
    route = _ROUTE_END.split(unquote(fragment, errors="replace"), maxsplit=1)[0]
    segments = _PATH_PARAMS.sub("", route).split("/")
    # Routes name pages; a segment holding `key=value` is data, e.g. `#/access_token=…` (an
    # implicit-flow answer to a router whose root route is "#/"). Cut from that segment on.
    for index, segment in enumerate(segments):
        if "=" in segment:
            kept = "/".join(segments[:index])
            return kept if kept not in ("", "!") else kept + "/"
    return "/".join(segments)


def _path(parts, keep_route_fragment: bool) -> str:
    path = _bare_path(parts.path or "/")
    fragment = parts.fragment
    # Hash routers ("#/pricing") carry the real page in the fragment; anchors don't.
    if keep_route_fragment and fragment.startswith(("/", "!/")):
        # A route's own query ("#/reset?token=…") is as private as the page's.
        path = path + "#" + _route(fragment)
    path = clean(path, MAX_PATH) or "/"
    return path if path.startswith("/") else "/" + path


@lru_cache(maxsize=16384)  # pages and referrers repeat; parsing is a third of enrichment
def strip_url(
    raw: str, keep_route_fragment: bool = True, keep_query: tuple[str, ...] = ()
) -> StrippedUrl | None:
    """Host + path + `utm_*` (+ the parameters named in `keep_query`) of a URL; None when it
    has no host (nothing to attribute). Every other query parameter is dropped."""
    parts = _split(raw)
    if parts is None:
        return None
    host = _host(parts)
    if not host:
        return None
    utm, kept = {}, {}
    for key, value in parse_qsl(parts.query, keep_blank_values=False, errors="replace"):
        if key in UTM_FIELDS and key not in utm:
            utm[key] = clean(value, MAX_UTM)
        elif key in keep_query and key not in kept:
            kept[key] = clean(value, MAX_KEPT_VALUE)
    return StrippedUrl(
        host=host,
        path=_path(parts, keep_route_fragment),
        utm={k: v for k, v in utm.items() if v},
        kept={k: v for k, v in kept.items() if v},
    )


@lru_cache(maxsize=4096)
def strip_link_url(raw: str) -> str:
    """A URL-valued prop (an outbound or download link) stripped like a page URL: scheme, host,
    port and path plus `utm_*`; no credentials, no other query, no fragment, no `;` parameters.

    The script strips links before sending; this holds for old scripts and hand-made hits.
    A value without an authority (a relative link, `mailto:`) keeps its path part only."""
    raw = raw.strip()
    if not _HAS_AUTHORITY.match(raw):
        return clean(_bare_path(raw), MAX_LINK)
    parts = _split(raw)
    stripped = strip_url(raw, keep_route_fragment=False)
    if parts is None or stripped is None:
        return ""
    host = f"[{stripped.host}]" if ":" in stripped.host else stripped.host
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:  # a port out of range or not a number: not part of a real link
        port = ""
    scheme = f"{parts.scheme}://" if parts.scheme else "//"
    query = urlencode(stripped.utm)
    return clean(f"{scheme}{host}{port}{stripped.path}" + (f"?{query}" if query else ""), MAX_LINK)


def strip_link_props(props: Mapping[str, str]) -> dict[str, str]:
    """`props` with every URL-valued prop (`LINK_PROPS`) passed through `strip_link_url`."""
    return {
        key: strip_link_url(value) if key in LINK_PROPS else value for key, value in props.items()
    }


def bare_host(host: str) -> str:
    """The host without a leading `www.`, for comparing sites and naming sources."""
    return host[4:] if host.startswith("www.") else host
