"""The bot test on RE2 gives the verdicts of the same patterns on Python's `re`.

Over the public corpora the benchmark fetches (real browsers and crawlers, through npm and
PyPI), and over variants of them that take the other path (non-ASCII, control characters,
changed case, cut short). Without the registries the corpus test is skipped, the crafted
cases still run.
"""

from __future__ import annotations

import random
import re
import subprocess
import time
from pathlib import Path

import pytest
from crawlerdetect import CrawlerDetect

from pipeline.enrich import useragents
from pipeline.enrich.useragents import (
    _CRAWLERS,
    _NAMED_AGENTS,
    _SELF_NAMED,
    BotPattern,
    same_in_both_engines,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    from bench.enrich_throughput import fetch_user_agents

    try:
        browsers, crawlers, _ = fetch_user_agents(Path(tmp_path_factory.mktemp("uas")))
    except (subprocess.CalledProcessError, FileNotFoundError, OSError) as exc:
        pytest.skip(f"the UA corpora could not be fetched from npm/PyPI: {type(exc).__name__}")
    return browsers + crawlers


def variants(ua: str, rng: random.Random) -> list[str]:
    """The UA, and versions of it that exercise both engines' edges."""
    cut = rng.randrange(1, max(2, len(ua)))
    return [
        ua,
        ua.upper(),
        ua.lower(),
        ua[:cut],
        f"  {ua}\t",
        ua.replace(" ", "\u00e9", 1),  # a non-ASCII letter: `\b` and `\w` differ between engines
        ua.replace("/", "\n", 1),  # a newline: `$` and `.` differ
        ua.replace("k", "\u212a"),  # KELVIN SIGN: `re` folds it to "k", RE2 (on ASCII) never
    ]


def reference_crawler(ua: str) -> bool:
    return CrawlerDetect().is_crawler(ua)


def test_verdicts_equal_on_the_corpora(corpus: list[str]):
    rng = random.Random(16)
    assert len(corpus) > 3000  # thousands of distinct real UAs, browsers and crawlers
    crawlers = 0
    compared = 0
    for ua in corpus:
        for text in variants(ua, rng):
            expected = reference_crawler(text)
            assert _CRAWLERS.is_crawler(text) == expected, text
            for pattern in (_NAMED_AGENTS, _SELF_NAMED):
                assert pattern.search(text) == bool(pattern.backtracking.search(text)), text
            crawlers += expected
            compared += 1
    # Both verdicts occur often: the comparison is not over one kind of UA only.
    assert 0.2 < crawlers / compared < 0.8


def test_the_ascii_corpus_takes_the_linear_engine(corpus: list[str]):
    # Real UAs are printable ASCII: the bench's speed is RE2's, not the fallback's.
    share = sum(map(same_in_both_engines, corpus)) / len(corpus)
    assert share > 0.99


def test_bot_rule_on_the_corpora_is_the_libraries_verdict(corpus: list[str]):
    """bot_rule's crawlerdetect step equals the library's own `CrawlerDetect`."""
    useragents.bot_rule.cache_clear()
    for ua in corpus[::7]:
        rule = useragents.bot_rule(ua)
        if rule == "crawlerdetect":
            assert reference_crawler(ua[: useragents.MAX_UA_FOR_BOT_CHECK])
        elif rule is None:
            assert not reference_crawler(ua[: useragents.MAX_UA_FOR_BOT_CHECK])


def test_text_the_engines_read_differently_goes_to_re():
    # RE2 reads `\b` over ASCII only: "é" is no word character for it, so it would see a
    # boundary before "curl/" that `re` does not.
    ua = "\u00e9curl/8.0"
    assert _NAMED_AGENTS.linear.search(ua) is not None
    assert _NAMED_AGENTS.backtracking.search(ua) is None
    assert _NAMED_AGENTS.search(ua) is False
    assert _NAMED_AGENTS.search("curl/8.0") is True


def test_a_pattern_re2_cannot_express_is_still_applied():
    # crawlerdetect's `Yandex(?!Search)` has a lookahead: it runs on `re`, apart.
    assert _CRAWLERS.rest is not None
    for ua in ("Mozilla/5.0 (compatible; Yandex/1.0)", "YandexSearch/1.0", "Yandex"):
        assert _CRAWLERS.is_crawler(ua) == reference_crawler(ua)


def test_empty_and_excluded_only_uas_are_not_crawlers():
    for ua in ("", "   ", "Mozilla/5.0", "Mozilla/5.0 (X11; Linux x86_64)"):
        assert _CRAWLERS.is_crawler(ua) == reference_crawler(ua) is False


def test_a_pathological_ua_costs_linear_time():
    # Nested quantifiers: `re` backtracks 2**26 ways (seconds to minutes), RE2 answers at once.
    pattern = BotPattern.of(r"(a+)+b")
    started = time.perf_counter()
    assert pattern.search("a" * 26 + "c") is False
    assert time.perf_counter() - started < 0.5


def test_no_crawlerdetect_pattern_matches_nothing():
    # crawlerdetect calls a UA a crawler when its match is not empty; ours, when there is a
    # match: the same while no pattern can match the empty string (checked at a word's edges).
    from crawlerdetect.providers import crawlers

    for pattern in crawlers.data:
        compiled = re.compile(pattern, re.IGNORECASE)
        for text in ("", "a", " ", "a b", "/1.0"):
            match = compiled.search(text)
            assert match is None or match.group(), pattern
