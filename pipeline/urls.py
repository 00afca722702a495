"""Page and referrer URLs reduced to what analytics needs: host and path (plus `utm_*`, and
the query parameters a site chose to keep)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from pipeline.text import clean

MAX_HOST = 253
MAX_PATH = 2000
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_UTM = 300
MAX_KEPT_VALUE = 300


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


def _path(parts, keep_route_fragment: bool) -> str:
    path = unquote(parts.path or "/", errors="replace")
    fragment = parts.fragment
    # Hash routers ("#/pricing") carry the real page in the fragment; anchors don't.
    if keep_route_fragment and fragment.startswith(("/", "!/")):
        # A route's own query ("#/reset?token=…") is as private as the page's.
        route = fragment.split("?", 1)[0]
        path = path + "#" + unquote(route, errors="replace")
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


def bare_host(host: str) -> str:
    """The host without a leading `www.`, for comparing sites and naming sources."""
    return host[4:] if host.startswith("www.") else host
