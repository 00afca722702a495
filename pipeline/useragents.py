"""User-Agent → browser, OS and device class, and the bot test.

Parsing uses ua-parser (with its Rust backend, ua-parser-rs) and crawlerdetect, both
maintained rule sets. User-Agents repeat heavily, so results are memoised per string.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import ua_parser
from crawlerdetect import CrawlerDetect

# ua-parser's families are precise; a dashboard groups "Chrome Mobile" with "Chrome".
_BROWSER_NAMES = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome WebView",
    "HeadlessChrome": "Headless Chrome",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
}
_OS_NAMES = {"Mac OS X": "macOS"}
_MOBILE_OS = {"iOS", "Android", "Windows Phone", "KaiOS", "BlackBerry OS", "Firefox OS"}
_DESKTOP_OS = {
    "Windows",
    "macOS",
    "Linux",
    "Ubuntu",
    "Chrome OS",
    "ChromeOS",
    "Fedora",
    "Debian",
    "FreeBSD",
    "OpenBSD",
    "NetBSD",
    "Solaris",
    "Mint",
    "Arch Linux",
}
_TABLET_WORDS = ("ipad", "tablet", "kindle", "silk", "playbook", "tab")

MAX_UA_FOR_BOT_CHECK = 1000
_crawler_detect = CrawlerDetect()


@dataclass(frozen=True)
class Client:
    browser: str
    browser_version: str
    os: str
    os_version: str
    device: str


def _version(*parts: str | None) -> str:
    return ".".join(p for p in parts if p)


def _device_class(ua: str, os_name: str, device_family: str) -> str:
    lowered = f"{ua} {device_family}".lower()
    if os_name == "iOS" and "ipad" in lowered:
        return "Tablet"
    # Android tablets omit "Mobile" from the User-Agent; phones include it.
    if os_name == "Android":
        return "Mobile" if "mobile" in ua.lower() else "Tablet"
    if os_name in _MOBILE_OS:
        return "Tablet" if any(word in lowered for word in _TABLET_WORDS) else "Mobile"
    if os_name in _DESKTOP_OS:
        return "Desktop"
    return "Unknown"


@lru_cache(maxsize=8192)
def parse_client(ua: str) -> Client:
    """Browser, OS (each with a short version) and device class of a User-Agent string."""
    result = ua_parser.parse(ua)
    agent, os_, device = result.user_agent, result.os, result.device
    browser = _BROWSER_NAMES.get(agent.family, agent.family) if agent else "Unknown"
    os_name = _OS_NAMES.get(os_.family, os_.family) if os_ else "Unknown"
    return Client(
        browser=browser if browser != "Other" else "Unknown",
        browser_version=_version(agent.major) if agent else "",
        os=os_name if os_name != "Other" else "Unknown",
        os_version=_version(os_.major, os_.minor) if os_ else "",
        device=_device_class(ua, os_name, device.family if device else ""),
    )


@lru_cache(maxsize=8192)
def is_bot(ua: str) -> bool:
    """True for crawlers, scripts and empty User-Agents (no real browser sends none)."""
    if not ua.strip():
        return True
    return bool(_crawler_detect.isCrawler(ua[:MAX_UA_FOR_BOT_CHECK]))
