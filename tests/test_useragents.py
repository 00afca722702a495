"""User-Agent → browser / OS / device, and bots: table-driven."""

from __future__ import annotations

import pytest

from pipeline.useragents import Client, is_bot, parse_client

UAS = {
    "chrome-windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        Client("Chrome", "131", "Windows", "10", "Desktop"),
    ),
    "safari-mac": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        Client("Safari", "18", "macOS", "10.15", "Desktop"),
    ),
    "firefox-linux": (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        Client("Firefox", "133", "Linux", "", "Desktop"),
    ),
    "edge-windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        Client("Edge", "131", "Windows", "10", "Desktop"),
    ),
    "safari-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        Client("Safari", "18", "iOS", "18.1", "Mobile"),
    ),
    "chrome-android-phone": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        Client("Chrome", "131", "Android", "14", "Mobile"),
    ),
    "chrome-android-tablet": (
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        Client("Chrome", "131", "Android", "13", "Tablet"),
    ),
    "safari-ipad": (
        "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        Client("Safari", "18", "iOS", "18.1", "Tablet"),
    ),
    "samsung-internet": (
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        Client("Samsung Internet", "26", "Android", "14", "Mobile"),
    ),
    "garbage": ("<script>alert(1)</script>", Client("Unknown", "", "Unknown", "", "Unknown")),
}


@pytest.mark.parametrize(("ua", "expected"), list(UAS.values()), ids=list(UAS))
def test_user_agent_parsing(ua, expected):
    assert parse_client(ua) == expected


@pytest.mark.parametrize(
    "ua",
    [
        pytest.param(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            id="googlebot",
        ),
        pytest.param(
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", id="bingbot"
        ),
        pytest.param(
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", id="ahrefs"
        ),
        pytest.param("curl/8.5.0", id="curl"),
        pytest.param("python-requests/2.32.3", id="python-requests"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
    ],
)
def test_bots_are_detected(ua):
    assert is_bot(ua)


@pytest.mark.parametrize(("ua", "_"), list(UAS.values())[:-1], ids=list(UAS)[:-1])
def test_real_browsers_are_not_bots(ua, _):
    assert not is_bot(ua)
