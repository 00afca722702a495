"""Consumer throughput on realistic input, the boto3 client counted: events per CPU second.

Input: thousands of distinct real User-Agents, fetched when the benchmark runs (never
committed) from maintained public corpora through the registries' clients — browsers from
the npm packages `user-agents` (Intoli's real-traffic sample) and `top-user-agents`, and
PyPI's `fake-useragent`; crawlers (5 % of hits) from npm's `crawler-user-agents` — each hit
drawing one uniformly, so the long tail of UAs is parsed (a new Lambda instance: the parse
caches are emptied after the warm-up batch). Pages, query strings (UTM tags, ids, secrets to
strip), referrers (search, social, blogs, internal, none), countries, screens, engagement and
custom events vary too.

Output: the real `Consumer` with a real boto3 client writing to moto's HTTP server, which runs
in its own process: botocore's serialisation, signing, HTTP round trips and response parsing
are all in the figure, moto's work is not (`time.process_time` of this process alone, which is
single-threaded: one core). Salts are fixed and the clock frozen, so the stored table is a
function of the input and the code: `--digest` prints a hash of every stored item, equal
before and after a speed change that keeps results identical.

    python -m bench.enrich_throughput [EVENTS] [--cache DIR] [--digest] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import random
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pipeline import aws
from pipeline.config import Settings
from pipeline.consume.consumer import Consumer
from pipeline.enrich import useragents
from pipeline.enrich.salts import SaltStore
from pipeline.enrich.sites import new_site, site_item
from pipeline.ingest.contract import build_message, encode_message
from pipeline.local.emulator import free_port
from pipeline.resources import create_resources

BATCH = 100  # the Lambda event source mapping's batch
SITE = "bench.example"
BOT_SHARE = 0.05
# A fixed moment (clock and salts fixed too): the stored items depend on the code alone.
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)

SECTIONS = ("blog", "docs", "pricing", "products", "guides", "changelog", "careers", "help")
SEARCH = ("www.google.com", "www.bing.com", "duckduckgo.com", "search.brave.com", "www.ecosia.org")
SOCIAL = ("t.co", "www.reddit.com", "news.ycombinator.com", "www.linkedin.com", "l.facebook.com")
COUNTRIES = (("US", "CA", "San Jose"), ("DE", "BE", "Berlin"), ("FR", "IDF", "Paris"),
             ("GB", "ENG", "London"), ("IN", "MH", "Mumbai"), ("BR", "SP", "Sao Paulo"),
             ("JP", "13", "Tokyo"), ("NL", "NH", "Amsterdam"))  # fmt: skip
SCREENS = (390, 412, 375, 768, 820, 1280, 1366, 1440, 1536, 1920, 2560)


def _npm_package(name: str, cache: Path) -> tuple[str, Path]:
    """`npm pack` the latest version into `cache`: its version and unpacked folder."""
    cache.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        ["npm", "pack", name, "--json", "--silent"], cwd=cache, check=True, capture_output=True
    ).stdout
    packed = json.loads(out)[0]
    target = cache / f"{name}-{packed['version']}"
    if not target.exists():
        with tarfile.open(cache / packed["filename"]) as tar:
            tar.extractall(target, filter="data")
    return packed["version"], target / "package"


def _pypi_package(name: str, cache: Path) -> tuple[str, zipfile.ZipFile]:
    """`pip download` the latest wheel into `cache` (no dependencies, nothing installed)."""
    folder = cache / f"pypi-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    subprocess.run([*pip, "-d", str(folder), name], check=True, capture_output=True)
    wheel = max(folder.glob(f"{name.replace('-', '_')}-*.whl"), key=lambda p: p.stat().st_mtime)
    return wheel.name.split("-")[1], zipfile.ZipFile(wheel)


def fetch_user_agents(cache: Path) -> tuple[list[str], list[str], dict[str, str]]:
    """Distinct real browser and crawler UAs, and the corpus versions they came from."""
    ua_version, intoli = _npm_package("user-agents", cache)
    rows = json.loads((intoli / "dist" / "user-agents.json").read_text())
    top_version, top = _npm_package("top-user-agents", cache)
    fu_version, wheel = _pypi_package("fake-useragent", cache)
    lines = wheel.read("fake_useragent/data/browsers.jsonl").decode().splitlines()
    cua_version, crawlers = _npm_package("crawler-user-agents", cache)
    entries = json.loads((crawlers / "crawler-user-agents.json").read_text())
    browsers = {row["userAgent"] for row in rows}
    browsers |= set(json.loads((top / "src" / "index.json").read_text()))
    browsers |= {json.loads(line)["useragent"] for line in lines if line.strip()}
    bots = {ua for entry in entries for ua in entry.get("instances", [])}
    versions = {
        "npm user-agents": ua_version,
        "npm top-user-agents": top_version,
        "PyPI fake-useragent": fu_version,
        "npm crawler-user-agents": cua_version,
    }
    return sorted(browsers), sorted(bots - browsers), versions


def _page(rng: random.Random) -> str:
    section = rng.choice(SECTIONS)
    path = f"/{section}/{rng.randrange(400)}-{rng.choice(('intro', 'setup', 'faq', 'notes'))}"
    query: dict[str, str] = {}
    roll = rng.random()
    if roll < 0.10:
        query = {"utm_source": rng.choice(("newsletter", "twitter", "partner")),
                 "utm_medium": rng.choice(("email", "social", "cpc")), "utm_campaign": "q4"}  # fmt: skip
    elif roll < 0.15:
        query = {"gclid": f"Cj0K{rng.getrandbits(64):x}"}  # a click id: stripped
    elif roll < 0.20:
        query = {"id": str(rng.randrange(10_000)), "token": f"{rng.getrandbits(96):x}"}
    url = f"https://{SITE}{path}" + (f"?{urlencode(query)}" if query else "")
    return url + (f"#{rng.choice(('top', 'install', 'pricing'))}" if rng.random() < 0.05 else "")


def _referrer(rng: random.Random, page: str) -> str:
    roll = rng.random()
    if roll < 0.35:
        return ""
    if roll < 0.60:
        return f"https://{rng.choice(SEARCH)}/"
    if roll < 0.75:
        return f"https://{rng.choice(SOCIAL)}/{rng.getrandbits(32):x}"
    if roll < 0.90:  # another page of the site: internal, no source
        return page.split("?")[0].rsplit("/", 1)[0] + "/"
    return f"https://blog{rng.randrange(300)}.example.org/posts/{rng.randrange(1000)}?ref=x"


def _query(rng: random.Random, page: str, width: int) -> dict[str, str]:
    query = {"d": SITE, "u": page, "r": _referrer(rng, page), "w": str(width)}
    roll = rng.random()
    if roll < 0.12:  # Plausible's engagement event when the page is left
        query |= {"n": "engagement", "e": str(rng.randrange(200, 600_000)),
                  "sd": str(rng.randrange(101))}  # fmt: skip
    elif roll < 0.15:
        props = {"plan": rng.choice(("free", "pro")), "seats": rng.randrange(1, 50)}
        query |= {"n": rng.choice(("Signup", "Download", "Outbound Link: Click")),
                  "p": json.dumps(props)}  # fmt: skip
    return query


def messages(
    events: int, browsers: list[str], bots: list[str], seed: int = 16
) -> list[tuple[int, str]]:
    """`events` (received_at_ms, body) pairs over the hour before NOW, in time order."""
    rng = random.Random(seed)
    start = NOW - timedelta(hours=1)
    out = []
    for n in range(events):
        received = start + timedelta(milliseconds=n * 3_600_000 // events)
        ua = rng.choice(bots) if rng.random() < BOT_SHARE else rng.choice(browsers)
        country, region, city = rng.choice(COUNTRIES)
        headers = {
            "User-Agent": ua,
            "CloudFront-Viewer-Country": country,
            "CloudFront-Viewer-Country-Region": region,
            "CloudFront-Viewer-City": city,
        }
        ip = f"{rng.randint(11, 199)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        query = _query(rng, _page(rng), rng.choice(SCREENS))
        ms = int(received.timestamp() * 1000)
        body = encode_message(build_message(urlencode(query), headers, ip, ms, f"bench-{n:08d}"))
        out.append((ms, body))
    return out


KEEP_ALIVE_MOTO = """
import asyncio, sys
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from tornado.httpserver import HTTPServer
from tornado.wsgi import WSGIContainer

async def serve():
    app = WSGIContainer(DomainDispatcherApplication(create_backend_app))
    HTTPServer(app).listen(int(sys.argv[1]), "127.0.0.1")
    await asyncio.Event().wait()

asyncio.run(serve())
"""


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's HTTP server in its own process (its CPU is not ours); always stopped."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # moto's app under tornado's HTTP/1.1 server, so the client keeps its connection open as
    # it does with DynamoDB (werkzeug's server, `python -m moto.server`, closes it after every
    # response: a TCP connect per request would be counted against us).
    command = [sys.executable, "-c", KEEP_ALIVE_MOTO, str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
                break
            except Exception:  # any failure while it starts: try again until the deadline
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def table_digest(dynamodb: Any, table: str) -> tuple[int, str]:
    """How many items `table` holds and a hash of them all, in key order."""
    items, kwargs = [], {"TableName": table}
    while True:
        page = dynamodb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    items.sort(key=lambda item: (item["pk"]["S"], item["sk"]["S"]))
    text = json.dumps(items, sort_keys=True, default=str)
    return len(items), hashlib.sha256(text.encode()).hexdigest()[:16]


def measure(
    endpoint: str,
    bodies: list[tuple[int, str]],
    digest: bool = False,
    profile: Path | None = None,
) -> dict[str, Any]:
    settings = Settings.for_prefix(f"bench{random.randrange(10**6)}", endpoint_url=endpoint)
    create_resources(settings)
    dynamodb = aws.client("dynamodb", settings)
    dynamodb.put_item(TableName=settings.sites_table, Item=site_item(new_site(SITE)))
    consumer = Consumer(settings, clock=NOW.timestamp)
    consumer.salts = SaltStore(consumer._dynamodb, settings.salts_table, random_bytes=bytes)
    batches = [
        [
            {"messageId": f"m{i + j}", "body": body}
            for j, (_, body) in enumerate(bodies[i : i + BATCH])
        ]
        for i in range(0, len(bodies), BATCH)
    ]
    consumer.process(batches[0], now=NOW)  # a warm instance: salts read, imports done
    for cache in (useragents.bot_rule, useragents._parsed, useragents.parse_client):
        cache.cache_clear()  # ... that has parsed no User-Agent yet
    profiler = cProfile.Profile() if profile else None
    stored = dropped = failed = 0
    started_cpu, started_wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for records in batches[1:]:
        outcome = consumer.process(records, now=NOW)
        stored += outcome.stored
        dropped += sum(outcome.dropped.values())
        failed += len(outcome.failures)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started_wall
    events = len(bodies) - len(batches[0])
    result: dict[str, Any] = {
        "events": events,
        "stored": stored,
        "dropped": dropped,
        "failed": failed,
        "cpu_s": cpu,
        "events_per_cpu_s": events / cpu,
        "us_per_event": cpu / events * 1e6,
        "wall_s": wall,
        "dynamodb_requests": consumer.writer.requests,
    }
    if digest:
        result["events_table"] = "{} items, sha256 {}".format(
            *table_digest(dynamodb, settings.events_table)
        )
    return result


def run(
    events: int = 50_000,
    cache: Path | None = None,
    digest: bool = False,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Fetch the corpora, build the input, start moto's server and measure the consumer."""
    browsers, bots, versions = fetch_user_agents(
        cache or Path(tempfile.mkdtemp(prefix="bench-uas-"))
    )
    bodies = messages(events + BATCH, browsers, bots)
    uas = {json.loads(body)["headers"]["user-agent"] for _, body in bodies}
    with moto_server() as endpoint:
        result = measure(endpoint, bodies, digest, profile)
    corpora = ", ".join(f"{name} {version}" for name, version in versions.items())
    return {
        "corpora": corpora,
        "browser_uas": len(browsers),
        "crawler_uas": len(bots),
        "distinct_uas_in_input": len(uas),
        **result,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.enrich_throughput")
    parser.add_argument("events", type=int, nargs="?", default=50_000)
    parser.add_argument("--cache", type=Path, help="keep the fetched corpora here")
    parser.add_argument("--digest", action="store_true", help="hash the stored table after")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the timed run here")
    args = parser.parse_args(argv)
    # A stopped run (SIGTERM) unwinds like an interrupted one, so moto's process is stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    result = run(args.events, args.cache, args.digest, args.profile)
    for key, value in result.items():
        if isinstance(value, float):
            value = f"{value:,.4g}"
        elif isinstance(value, int):
            value = f"{value:,}"
        print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
