"""User-Agent → browser, OS and device class, and the bot test.

Parsing uses ua-parser (with its Rust backend, ua-parser-rs) and crawlerdetect, both
maintained rule sets. The bot test asks both, plus a short commented supplement for what
they miss: crawlers that name themselves (a URL or an e-mail address in the UA), the AI,
monitoring, link-preview, HTTP-library and headless-browser agents named below, and any UA
that neither ua-parser nor a layout-engine token says is a browser. In-app browsers
(Instagram, Facebook's FBAN/FB_IAB, WebViews with `wv`) are people and are kept.
`bench/bots.py` measures it on public corpora that none of these rules were built from.
User-Agents repeat heavily, so results are memoised per string.

The bot patterns (crawlerdetect's ~1,500 and ours) run on RE2, a linear-time engine: Python's
backtracking `re` took ~1 ms per new UA over crawlerdetect's alternation, RE2 a few µs, and no
crafted UA can make it backtrack. Verdicts are the same as with `re` (tests/enrich/
test_useragents_re2.py compares them over the public corpora): RE2 reads `\\w`, `\\d`, `\\b` and
case as ASCII, `re` as Unicode, so a UA with a non-ASCII or control character (rare, and never
from a browser) goes to `re`, as does crawlerdetect's one pattern RE2 cannot express.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import re2
import ua_parser
from crawlerdetect import CrawlerDetect
from crawlerdetect.providers import crawlers as crawlerdetect_crawlers
from crawlerdetect.providers import exclusions as crawlerdetect_exclusions

from pipeline.enrich.text import without_lone_surrogates

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

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.case_sensitive = False
_RE2_OPTIONS.never_capture = True  # whether and where a pattern matches: no groups needed
_RE2_OPTIONS.log_errors = False  # a pattern it cannot express goes to `re`, no stderr line


@dataclass(frozen=True)
class BotPattern:
    """One case-insensitive pattern, in RE2 for the text both engines read alike and in `re`
    for the rest. `search` is all a bot test asks of it: whether it matches anywhere."""

    backtracking: re.Pattern
    linear: re2._Regexp

    @classmethod
    def of(cls, pattern: str) -> BotPattern:
        return cls(re.compile(pattern, re.IGNORECASE), re2.compile(pattern, _RE2_OPTIONS))

    def search(self, ua: str) -> bool:
        if same_in_both_engines(ua):
            # RE2 on the bytes: for ASCII they are the characters, and the wrapper skips its
            # mapping of byte offsets back to character offsets (a third of a search).
            return self.linear.search(ua.encode()) is not None
        return self.backtracking.search(ua) is not None


def same_in_both_engines(text: str) -> bool:
    """Whether RE2 reads `text` as `re` does: printable ASCII only (no Unicode classes or
    case folding, no newline for `$` or `.` to treat differently)."""
    return text.isascii() and text.isprintable()


# The agent families issue 11 names, each token spelled as its vendor documents it. Several are
# in crawlerdetect too; these are not (anthropic-ai, a bare meta-externalagent, Datadog Agent,
# New Relic, Playwright), and one regex here costs microseconds.
_NAMED_AGENTS = BotPattern.of(
    "|".join(
        (
            # AI crawlers and agents (OpenAI, Anthropic, Perplexity, ByteDance, Common Crawl,
            # Amazon, Apple, Meta)
            r"gptbot|chatgpt-user|oai-searchbot|claudebot|claude-(?:web|user|searchbot)",
            r"anthropic-ai|perplexity(?:bot|-user)|bytespider|ccbot|amazonbot|applebot",
            r"meta-external(?:agent|fetcher)",
            # Uptime and synthetic monitoring
            r"uptimerobot|pingdom|statuscake|site24x7|datadog|newrelic|new relic",
            # Link previews of chat and social apps (their in-app browsers say otherwise)
            r"slackbot|slack-imgproxy|discordbot|telegrambot|whatsapp/|facebookexternalhit",
            r"twitterbot|linkedinbot|embedly|iframely|skypeuripreview",
            # HTTP libraries and scraping frameworks
            r"python-requests|python-urllib|aiohttp|python-httpx|go-http-client|\bcurl/",
            r"\bwget/|okhttp|axios/|node-fetch|\bjava/\d|libwww-perl|scrapy",
            # Headless and automated browsers
            r"headlesschrome|phantomjs|puppeteer|playwright",
        )
    )
)
# Crawlers sign their UA so a site owner can reach them: a URL (`+http://…`, `+example.com`,
# `www.example.com`) or an e-mail address. No browser puts either in its User-Agent.
_SELF_NAMED = BotPattern.of(
    r"https?://|\+(?:https?:|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,})"
    r"|\bwww\.[a-z0-9-]+\.[a-z]{2,}"
    r"|[a-z0-9._%+-]+(?:@|\[at\])[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}"
)
# `AppleWebKit/… (KHTML, like Gecko; compatible; Agent/1.0)`: browsers never put a
# `compatible;` product inside the engine's comment; agents that pose as Chrome do.
_COMPATIBLE_IN_ENGINE = re.compile(r"\(KHTML, like Gecko;\s*compatible;", re.IGNORECASE)
# A layout engine's token: a UA with one is treated as a browser even when ua-parser does not
# know its brand (new Android browsers, TVs).
_ENGINE = re.compile(r"AppleWebKit|Gecko/|Trident/|Presto/|Goanna/|KHTML|MSIE ", re.IGNORECASE)


class CrawlerPatterns:
    """crawlerdetect's test (`CrawlerDetect.is_crawler`) with its own pattern lists: strip the
    UA, delete every browser token its exclusions name, then look for a crawler pattern in what
    is left. The patterns RE2 cannot express (a lookahead) are searched with `re` apart: the
    test only asks whether any pattern matches, which the union and its parts answer alike."""

    def __init__(self, crawlers: list[str], exclusions: list[str]) -> None:
        linear, rest = [], []
        for pattern in crawlers:
            (linear if _re2_compiles(pattern) else rest).append(pattern)
        self.exclusions = BotPattern.of(f"({'|'.join(exclusions)})")
        self.crawlers = BotPattern.of(f"({'|'.join(linear)})")
        self.rest = re.compile(f"({'|'.join(rest)})", re.IGNORECASE) if rest else None

    def is_crawler(self, ua: str) -> bool:
        ua = ua.strip()
        if not ua:
            return False
        if same_in_both_engines(ua):
            # On the bytes, with a function for the replacement: the wrapper's `sub` on text
            # maps every match's offsets back to characters and parses "" as a template, which
            # cost twice the matching. For ASCII, bytes and characters are the same.
            agent = self.exclusions.linear.sub(_no_text, ua.encode()).decode()
        else:
            agent = self.exclusions.backtracking.sub("", ua)
        if not agent:
            return False
        # crawlerdetect reads its match's groups; no pattern of it matches the empty string,
        # so a match is a crawler.
        if self.crawlers.search(agent):
            return True
        return bool(self.rest and self.rest.search(agent))


def _no_text(match: object) -> bytes:
    return b""


def _re2_compiles(pattern: str) -> bool:
    try:
        re2.compile(pattern, _RE2_OPTIONS)
    except re2.error:
        return False
    return True


_CRAWLERS = CrawlerPatterns(crawlerdetect_crawlers.data, crawlerdetect_exclusions.data)
# The library's own test, on `re`: the reference the RE2 one is compared with (tests, bench/bots).
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
def _parsed(ua: str) -> ua_parser.Result:
    # Shared by the bot test and parse_client: a kept hit's UA is parsed once, not twice.
    # ua-parser's Rust backend raises on a lone surrogate (a UA cut inside a pair).
    return ua_parser.parse(without_lone_surrogates(ua))


@lru_cache(maxsize=8192)
def parse_client(ua: str) -> Client:
    """Browser, OS (each with a short version) and device class of a User-Agent string."""
    result = _parsed(ua)
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
def bot_rule(ua: str) -> str | None:
    """The first rule that calls `ua` a bot, or None for a browser. Cheapest rules first:
    crawlerdetect (about 2 ms a UA) runs only when the others found nothing."""
    ua = ua[:MAX_UA_FOR_BOT_CHECK]
    if not ua.strip():
        return "empty"  # no real browser sends none
    if _NAMED_AGENTS.search(ua):
        return "named agent"
    if _SELF_NAMED.search(ua):
        return "URL or e-mail"
    if _COMPATIBLE_IN_ENGINE.search(ua):
        return "compatible; in engine"
    parsed = _parsed(ua)
    if parsed.device is not None and parsed.device.family == "Spider":
        return "ua-parser Spider"
    if parsed.user_agent is None and not _ENGINE.search(ua):
        return "no browser"  # ua-parser knows no client in it, and no layout engine is named
    if _CRAWLERS.is_crawler(ua):
        return "crawlerdetect"
    return None


def is_bot(ua: str) -> bool:
    """True for crawlers, monitors, previews, scripts, headless browsers and empty UAs."""
    return bot_rule(ua) is not None
