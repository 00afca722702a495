"""User-Agent → browser / OS / device, and bots: table-driven."""

from __future__ import annotations

import pytest

from pipeline.enrich.useragents import Client, bot_rule, is_bot, parse_client

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


# Real User-Agents, one or more per family, as the agents' owners document or send them.
# crawlerdetect 0.4.2 alone (the code before issue 11) misses the ones marked "missed before".
CRAWLERS = {
    # AI crawlers and agents
    "gptbot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
    "chatgpt-user": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot",
    "oai-searchbot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; OAI-SearchBot/1.0; +https://openai.com/searchbot",
    "claudebot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
    "anthropic-ai (missed before)": "anthropic-ai",
    "perplexitybot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)",
    "perplexity-user (missed before)": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Perplexity-User/1.0; +https://perplexity.ai/perplexity-user)",
    "bytespider": "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
    "ccbot": "CCBot/2.0 (https://commoncrawl.org/faq/)",
    "amazonbot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Amazonbot/0.1; +https://developer.amazon.com/support/amazonbot) Chrome/119.0.6045.214 Safari/537.36",
    "applebot": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
    "meta-externalagent (missed before)": "meta-externalagent/1.1",
    # Monitoring
    "uptimerobot": "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "pingdom": "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
    "statuscake": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 StatusCake",
    "site24x7": "Site24x7",
    "datadog-agent (missed before)": "Datadog Agent/7.69.2",
    "new-relic-synthetics (missed before)": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/100.0.4896.60 Safari/537.36 NewRelicSynthetics/1.0",
    # Link previews
    "slackbot": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "discordbot": "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "telegrambot": "TelegramBot (like TwitterBot)",
    "whatsapp": "WhatsApp/2.23.20.0 A",
    "facebookexternalhit": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "twitterbot": "Twitterbot/1.0",
    "linkedinbot": "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "embedly": "Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)",
    "iframely": "Iframely/1.3.1 (+https://iframely.com/docs/about)",
    "skypeuripreview": "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com",
    # HTTP libraries
    "python-requests": "python-requests/2.32.3",
    "aiohttp": "Python/3.12 aiohttp/3.9.5",
    "httpx": "python-httpx/0.27.0",
    "go-http-client": "Go-http-client/2.0",
    "curl": "curl/8.5.0",
    "wget": "Wget/1.21.4",
    "okhttp": "okhttp/4.12.0",
    "axios": "axios/1.7.2",
    "node-fetch": "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "java": "Java/17.0.2",
    "libwww-perl": "libwww-perl/6.72",
    "scrapy": "Scrapy/2.11.2 (+https://scrapy.org)",
    # Headless and automated browsers
    "headlesschrome": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/125.0.6422.60 Safari/537.36",
    "phantomjs": "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
    "playwright (missed before)": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Playwright/1.40.0",
    # Generic signals: a URL or an e-mail in the UA, `compatible;` without a browser
    "url-in-ua (missed before)": "Mozilla/5.0 (compatible; A360-Search; +https://area360.uk/)",
    "email-in-ua (missed before)": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/110.0.0.0 Safari/537.36 nyt_scraping/scraping@nytimes.com",
    "compatible-without-browser (missed before)": "Mozilla/5.0 (compatible; Qualys)",
    "compatible-inside-engine (missed before)": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko; compatible; Google-Agent)",
    "bare-product-name (missed before)": "Zendesk Webhook",
}


@pytest.mark.parametrize("ua", list(CRAWLERS.values()), ids=list(CRAWLERS))
def test_crawlers_monitors_previews_libraries_and_headless_browsers_are_bots(ua):
    assert is_bot(ua)


# People, in browsers and in apps' in-app browsers: all kept.
BROWSERS = {
    **{name: ua for name, (ua, _) in list(UAS.items())[:-1]},
    "chrome-ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
    "firefox-android": "Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0",
    "opera-windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 OPR/111.0.0.0",
    "android-webview": "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240605.024; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36",
    "instagram-ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 337.0.3.23.54 (iPhone14,5; iOS 17_5; en_US; en; scale=3.00; 1170x2532; 618023787)",
    "instagram-android": "Mozilla/5.0 (Linux; Android 15; CPH2557 Build/AP3A.240617.008; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/142.0.7444.142 Mobile Safari/537.36 Instagram 406.0.0.58.159 Android (35/15; 480dpi; 1080x2400; OPPO; CPH2557; OP573DL1; mt6833; en_MY; 822918295; IABMV/1)",
    "facebook-ios-fban": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/466.0.0.42.106;FBBV/615371204;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/617003416]",
    "facebook-android-iab": "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.113 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/460.0.0.48.109;]",
    "tiktok-android": "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 trill_330804 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/trill app_version/33.8.4 ByteLocale/en ByteFullLocale/en Region/GB AppId/1180 Spark/1.5.0.2-bugfix AppVersion/33.8.4 BytedanceWebview/d8a21c6",
}


@pytest.mark.parametrize("ua", list(BROWSERS.values()), ids=list(BROWSERS))
def test_real_browsers_and_in_app_browsers_are_not_bots(ua):
    assert bot_rule(ua) is None


def test_the_rule_that_matched_is_named_and_the_answer_is_cached():
    assert bot_rule("anthropic-ai") == "named agent"
    assert (
        bot_rule("Mozilla/5.0 (compatible; A360-Search; +https://area360.uk/)") == "URL or e-mail"
    )
    assert bot_rule("Zendesk Webhook") == "no browser"
    before = bot_rule.cache_info().hits
    assert is_bot("Zendesk Webhook") and bot_rule.cache_info().hits == before + 1


def test_a_user_agent_cut_inside_a_surrogate_pair_is_judged_not_raised():
    chrome = BROWSERS["chrome-windows"]
    assert not is_bot(chrome + " \ud83d")
    assert parse_client(chrome + " \ud83d").browser == "Chrome"
