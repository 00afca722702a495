"""Referrer host → source name ("Google", "Hacker News", ...), Plausible-style.

No maintained Python package carries a current referrer database (the Snowplow
referer-parser port is unmaintained), so the well-known sources live in this table;
unknown hosts are reported by their own name, as Plausible does.
"""

from __future__ import annotations

import re

DIRECT = "Direct / None"

_BY_HOST = {
    "bing.com": "Bing",
    "duckduckgo.com": "DuckDuckGo",
    "ecosia.org": "Ecosia",
    "search.brave.com": "Brave",
    "startpage.com": "Startpage",
    "kagi.com": "Kagi",
    "baidu.com": "Baidu",
    "naver.com": "Naver",
    "t.co": "Twitter",
    "twitter.com": "Twitter",
    "x.com": "Twitter",
    "facebook.com": "Facebook",
    "fb.com": "Facebook",
    "instagram.com": "Instagram",
    "reddit.com": "Reddit",
    "news.ycombinator.com": "Hacker News",
    "github.com": "GitHub",
    "linkedin.com": "LinkedIn",
    "lnkd.in": "LinkedIn",
    "youtube.com": "YouTube",
    "youtu.be": "YouTube",
    "bsky.app": "Bluesky",
    "mastodon.social": "Mastodon",
    "lobste.rs": "Lobsters",
    "stackoverflow.com": "Stack Overflow",
    "medium.com": "Medium",
    "dev.to": "DEV",
    "producthunt.com": "Product Hunt",
    "pinterest.com": "Pinterest",
    "tiktok.com": "TikTok",
    "wikipedia.org": "Wikipedia",
    "chatgpt.com": "ChatGPT",
    "perplexity.ai": "Perplexity",
    "t.me": "Telegram",
    "discord.com": "Discord",
    "slack.com": "Slack",
    "mail.google.com": "Gmail",
}
# Brands with a domain per country (google.co.uk, yandex.ru, ...).
_BY_PATTERN = (
    (re.compile(r"(^|\.)google\.[a-z]{2,3}(\.[a-z]{2})?$"), "Google"),
    (re.compile(r"(^|\.)yandex\.[a-z]{2,3}(\.[a-z]{2})?$"), "Yandex"),
    (re.compile(r"(^|\.)yahoo\.[a-z]{2,3}(\.[a-z]{2})?$"), "Yahoo!"),
    (re.compile(r"(^|\.)amazon\.[a-z]{2,3}(\.[a-z]{2})?$"), "Amazon"),
)
_UTM_ALIASES = {
    "google": "Google",
    "bing": "Bing",
    "twitter": "Twitter",
    "x": "Twitter",
    "facebook": "Facebook",
    "fb": "Facebook",
    "hn": "Hacker News",
    "hackernews": "Hacker News",
    "reddit": "Reddit",
    "linkedin": "LinkedIn",
    "github": "GitHub",
    "youtube": "YouTube",
    "duckduckgo": "DuckDuckGo",
}


def source_for_host(host: str) -> str:
    """The source name of an external referrer host (already lower-case, `www.` removed)."""
    labels = host.split(".")
    # Most specific first: "mail.google.com" before "google.com", "l.facebook.com" → "facebook.com".
    for start in range(len(labels) - 1):
        name = _BY_HOST.get(".".join(labels[start:]))
        if name:
            return name
    for pattern, name in _BY_PATTERN:
        if pattern.search(host):
            return name
    return host


def source_for_utm(utm_source: str) -> str:
    """A source name for a `utm_source` value, used when there is no external referrer."""
    return _UTM_ALIASES.get(utm_source.strip().lower(), utm_source)
