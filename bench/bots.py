"""Bot recall and browser retention of `pipeline.enrich.useragents.is_bot` on public corpora.

The corpora are fetched when the benchmark runs (never committed) from maintained packages,
through the registries' own clients, into a cache directory:

- crawlers: every `instances` UA of the npm package `crawler-user-agents` (monperrus'
  community list), and the bot fixtures of Matomo's Device Detector as shipped in the PyPI
  package `device-detector` (tests/fixtures/upstream/bots.yml);
- browsers: the npm package `user-agents` (Intoli's real-traffic sample, UAs seen running JS),
  the PyPI package `fake-useragent` (its browsers.jsonl of current real UAs) and the demo's
  table; plus, reported apart, the browser fixtures of Device Detector: a catalogue of every
  browser Matomo has ever seen (WAP phones, Amiga, TVs), a stress test, not traffic.

No rule in pipeline/enrich/useragents.py is built from these lists (crawlerdetect and ua-parser are
their own projects; the supplement is the families issue 11 names plus generic signals).
Instances of crawler-user-agents that are people's in-app browsers (Instagram, Facebook) are
counted as misses in the raw figure and shown apart: they are kept by design.

    python -m bench.bots [--cache DIR] [--append]   # --append adds a section to RESULTS.md
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from pipeline.enrich import useragents
from pipeline.enrich.useragents import bot_rule
from pipeline.local.demo import BOT_USER_AGENTS, USER_AGENTS

RESULTS = Path(__file__).with_name("RESULTS.md")
SHOW_MISSES = 30
# People in apps' in-app browsers, which crawler-user-agents lists among its instances.
IN_APP_BROWSER = re.compile(r"Instagram|FBAN/|FB_IAB/|MetaIAB")


@dataclass
class Corpus:
    name: str
    source: str
    version: str
    uas: list[str]
    bots: bool  # what every UA in it is


@dataclass
class Score:
    corpus: Corpus
    right: int = 0
    misses: list[str] = field(default_factory=list)
    rules: Counter = field(default_factory=Counter)

    @property
    def share(self) -> float:
        return self.right / len(self.corpus.uas) if self.corpus.uas else 0.0


def _run(*cmd: str, cwd: Path) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def _npm_package(name: str, cache: Path) -> tuple[str, Path]:
    """`npm pack` the latest version into `cache`; its version and unpacked folder."""
    cache.mkdir(parents=True, exist_ok=True)
    packed = json.loads(_run("npm", "pack", name, "--json", "--silent", cwd=cache))[0]
    target = cache / f"{name}-{packed['version']}"
    if not target.exists():
        with tarfile.open(cache / packed["filename"]) as tar:
            tar.extractall(target, filter="data")
    return packed["version"], target / "package"


def _pypi_package(name: str, cache: Path) -> tuple[str, zipfile.ZipFile]:
    """`pip download` the latest wheel into `cache` (no dependencies, nothing installed)."""
    folder = cache / f"pypi-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    pip = (sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:")
    _run(*pip, "-d", str(folder), name, cwd=cache)
    wheel = max(folder.glob(f"{name.replace('-', '_')}-*.whl"), key=lambda p: p.stat().st_mtime)
    return wheel.name.split("-")[1], zipfile.ZipFile(wheel)


def fetch_corpora(cache: Path) -> list[Corpus]:
    version, folder = _npm_package("crawler-user-agents", cache)
    entries = json.loads((folder / "crawler-user-agents.json").read_text())
    crawlers = sorted({ua for entry in entries for ua in entry.get("instances", [])})

    dd_version, wheel = _pypi_package("device-detector", cache)
    fixtures = [n for n in wheel.namelist() if "tests/fixtures/upstream/" in n]
    matomo_bots: set[str] = set()
    matomo_browsers: set[str] = set()
    for name in fixtures:
        if not name.endswith(".yml"):
            continue
        # libyaml's safe loader: the pure-Python one takes a minute over these 17 MB.
        for case in yaml.load(wheel.read(name), Loader=yaml.CSafeLoader) or []:
            if not isinstance(case, dict) or not case.get("user_agent"):
                continue
            if name.endswith("/bots.yml"):
                matomo_bots.add(str(case["user_agent"]))
            elif (case.get("client") or {}).get("type") == "browser":
                matomo_browsers.add(str(case["user_agent"]))

    ua_version, ua_folder = _npm_package("user-agents", cache)
    data = ua_folder / "dist" / "user-agents.json"
    raw = (
        data.read_bytes()
        if data.exists()
        else gzip.decompress((data.with_suffix(".json.gz")).read_bytes())
    )
    intoli = sorted({row["userAgent"] for row in json.loads(raw)})

    fu_version, fu_wheel = _pypi_package("fake-useragent", cache)
    lines = fu_wheel.read("fake_useragent/data/browsers.jsonl").decode().splitlines()
    fake_ua = sorted({json.loads(line)["useragent"] for line in lines if line.strip()})

    demo = sorted({ua for ua, *_ in USER_AGENTS})
    return [
        Corpus("crawler-user-agents instances", "npm crawler-user-agents", version, crawlers, True),
        Corpus(
            "Matomo bot fixtures", "PyPI device-detector", dd_version, sorted(matomo_bots), True
        ),
        Corpus("demo bots", "pipeline/local/demo.py", "-", sorted(set(BOT_USER_AGENTS)), True),
        Corpus("Intoli real traffic", "npm user-agents", ua_version, intoli, False),
        Corpus("fake-useragent browsers", "PyPI fake-useragent", fu_version, fake_ua, False),
        Corpus("demo browsers", "pipeline/local/demo.py", "-", demo, False),
        Corpus(
            "Matomo browser catalogue (stress, not traffic)",
            "PyPI device-detector",
            dd_version,
            sorted(matomo_browsers),
            False,
        ),
    ]


def score(corpus: Corpus) -> Score:
    result = Score(corpus)
    for ua in corpus.uas:
        rule = bot_rule(ua)
        result.rules[rule or "kept"] += 1
        if (rule is not None) == corpus.bots:
            result.right += 1
        else:
            result.misses.append(ua)
    return result


def maintained_only(uas: Iterable[str]) -> float:
    """Recall of the maintained rule sets alone (crawlerdetect, ua-parser's Spider)."""
    uas = list(uas)
    found = 0
    for ua in uas:
        cut = ua[: useragents.MAX_UA_FOR_BOT_CHECK]
        device = useragents._parsed(cut).device
        spider = device is not None and device.family == "Spider"
        found += bool(spider or useragents._crawler_detect.isCrawler(cut))
    return found / len(uas) if uas else 0.0


def uncached_ms_per_ua(uas: list[str]) -> float:
    """Mean cost of one UA the cache has not seen (the caches are cleared first)."""
    useragents.bot_rule.cache_clear()
    useragents._parsed.cache_clear()
    began = time.perf_counter()
    for ua in uas:
        bot_rule(ua)
    return (time.perf_counter() - began) * 1000 / len(uas)


def report(scores: list[Score], extra: dict[str, str]) -> str:
    rows = [
        "| corpus | source, version | UAs | what is right | result | by rule |",
        "|---|---|---|---|---|---|",
    ]
    for s in scores:
        c = s.corpus
        rules = ", ".join(f"{rule} {n}" for rule, n in s.rules.most_common())
        rows.append(
            f"| {c.name} | {c.source} {c.version} | {len(c.uas):,} | "
            f"{'dropped' if c.bots else 'kept'} | **{s.share:.2%}** | {rules} |"
        )
    lines = [*rows, ""]
    lines += [f"- {key}: {value}" for key, value in extra.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bots", description=__doc__)
    parser.add_argument("--cache", type=Path, help="keep the fetched packages here")
    parser.add_argument("--append", action="store_true", help="add a section to RESULTS.md")
    args = parser.parse_args(argv)
    cache = args.cache or Path(tempfile.mkdtemp(prefix="bench-bots-"))
    corpora = fetch_corpora(cache)
    timing_sample = [ua for c in corpora[:2] + corpora[3:5] for ua in c.uas]
    per_ua_ms = uncached_ms_per_ua(timing_sample)
    scores = [score(c) for c in corpora]

    crawlers = scores[0]
    in_app = [ua for ua in crawlers.misses if IN_APP_BROWSER.search(ua)]
    people_excluded = crawlers.right / (len(crawlers.corpus.uas) - len(in_app))
    extra = {
        "crawler-user-agents without its in-app browsers of people "
        f"({len(in_app)} UAs, kept by design)": f"**{people_excluded:.2%}**",
        "crawlerdetect + ua-parser Spider alone, crawler-user-agents / Matomo bots": (
            f"{maintained_only(corpora[0].uas):.2%} / {maintained_only(corpora[1].uas):.2%}"
        ),
        "mean cost of an uncached UA (cached: one dict lookup)": f"{per_ua_ms:.2f} ms",
        "rule sets": (
            f"crawlerdetect {_version('crawlerdetect')}, ua-parser {_version('ua-parser')} "
            f"(+ ua-parser-rs {_version('ua-parser-rs')}), supplement in pipeline/enrich/useragents.py"
        ),
    }
    text = report(scores, extra)
    print(text)
    for s in scores:
        if s.misses:
            print(f"\n{s.corpus.name}: {len(s.misses)} wrong, the first {SHOW_MISSES}:")
            print("\n".join(f"  {ua[:200]}" for ua in s.misses[:SHOW_MISSES]))
    if args.append:
        load = "load average " + ", ".join(f"{n:.2f}" for n in os.getloadavg())  # as uptime
        day = datetime.now(UTC).date().isoformat()
        with RESULTS.open("a") as out:
            out.write(
                f"\n## Bot detection: recall and browser retention (issue 11; targets: ≥ 95 % of "
                f"crawlers dropped, ≥ 99 % of browsers kept)\n\n`python -m bench.bots --append`"
                f", {day}, machine load `{load}`.\n\n{text}\n"
            )
    return 0


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    sys.exit(main())
