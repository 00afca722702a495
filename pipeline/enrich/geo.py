"""Location and client address from CloudFront's viewer headers.

On AWS, CloudFront adds `CloudFront-Viewer-*` headers computed from the viewer's IP. The
local collector forwards the same headers when a request carries them (tests, or a proxy
that sets them); without them the location is unknown (empty), which the dashboard shows
as "Unknown". No IP database is shipped: that keeps the local mode free of licensed data.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

from pipeline.enrich.text import clean

# One decimal place is ~11 km of latitude: a city, never a street.
COORDINATE_DECIMALS = 1
MAX_CITY = 100
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_REGION = re.compile(r"^[A-Z0-9]{1,3}$")


@dataclass(frozen=True)
class Location:
    country: str = ""
    region: str = ""
    city: str = ""
    lat: float | None = None
    lon: float | None = None


def _coordinate(raw: str, limit: float) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    if not -limit <= value <= limit:  # also rejects nan
        return None
    return round(value, COORDINATE_DECIMALS)


def location_from_headers(headers: Mapping[str, str]) -> Location:
    """The viewer's rounded location; fields that are absent or malformed stay empty."""
    get = headers.get  # five lookups by name: cheaper than unpacking a generator of them
    return _location(
        get("cloudfront-viewer-country", ""),
        get("cloudfront-viewer-country-region", ""),
        get("cloudfront-viewer-city", ""),
        get("cloudfront-viewer-latitude", ""),
        get("cloudfront-viewer-longitude", ""),
    )


@lru_cache(maxsize=8192)  # visitors of one city share the same header values
def _location(country: str, region: str, city: str, lat_raw: str, lon_raw: str) -> Location:
    country = country.strip().upper()
    country = country if _COUNTRY.match(country) else ""
    region = region.strip().upper()
    # Region codes are ISO 3166-2 subdivisions; prefix the country so "CA" stays unambiguous.
    region = f"{country}-{region}" if country and _REGION.match(region) else ""
    # CloudFront percent-encodes non-ASCII city names.
    city = clean(unquote(city, errors="replace"), MAX_CITY)
    lat = _coordinate(lat_raw, 90.0)
    lon = _coordinate(lon_raw, 180.0)
    if lat is None or lon is None:
        lat = lon = None
    return Location(country=country, region=region, city=city, lat=lat, lon=lon)


# A dotted quad already in the form `ipaddress` writes (0-255, no leading zero): itself.
_CANONICAL_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}"
                             r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])")  # fmt: skip


def _valid_ip(text: str) -> str:
    """The address in `text` as `ipaddress` writes it, or "" when it is none."""
    text = text.strip().strip("[]")
    # Most addresses are IPv4 already written so: a regex check is ~6x cheaper than parsing
    # and writing it back, and gives the same text.
    if _CANONICAL_IPV4.fullmatch(text):
        return text
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def client_ip(headers: Mapping[str, str], source_ip: str) -> str:
    """The viewer's IP: from `CloudFront-Viewer-Address` ("ip:port"), else the TCP peer.

    Behind CloudFront, API Gateway's source IP can be the edge's address, so the header wins.
    IPv6 addresses contain colons: the port is after the last one.
    """
    address = headers.get("cloudfront-viewer-address", "")
    if address:
        ip = _valid_ip(address.rsplit(":", 1)[0]) or _valid_ip(address)
        if ip:
            return ip
    return _valid_ip(source_ip)
