"""The Stats API's 30-day aggregate on the demo, from rollups (issue 15's target: ≤ 300 ms
server time).

Loads the embedded demo (`pipeline.local.demo.load_demo`, 31 days, closed days rolled up as
the compactor stores them) into moto's HTTP server, makes a key with `pipeline.api.keys`, and
asks `POST /api/v2/query` for the six top-line metrics over `"30d"`:

- **server time**: the wall time of `pipeline.api.app.handle(request, settings)`, everything
  the Lambda or the collector's API thread does for one request (key check, rate-limit
  counter, rollup reads from DynamoDB, the query), without the HTTP transport;
- **end to end**: the same request over HTTP to the local collector serving the API (`api=`),
  client `requests`, connection kept alive.

The first request of each is reported apart (cold: the key and the site's time zone are read,
code paths warm up); the figures are the median (and the slowest) of the `--runs` that follow.
moto runs in its own process by default, as DynamoDB is remote on AWS (`--in-process` puts it
in a thread of this process, as `make run`'s embedded demo does; its work then shares this
process's GIL with the timed code). The answer is checked against the rollups' own summary,
so the figure is of a right answer, and the server time is split into the wait on DynamoDB
(each call's round trip, by operation) and the API's own work. Not a timed test: run it on a
quiet machine and copy its output into bench/RESULTS.md with the load it prints (`uptime`'s).

Run: `python -m bench.stats_api [--runs 30] [--in-process]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any
from unittest.mock import patch

import requests
from botocore.endpoint import Endpoint

from pipeline.api.app import handle
from pipeline.api.http import ApiRequest
from pipeline.api.keys import create_key
from pipeline.config import Settings
from pipeline.ingest.collector import start_collector
from pipeline.local.demo import DEMO_SITE, load_demo
from pipeline.local.emulator import EmbeddedAWS, free_port
from pipeline.resources import create_resources
from pipeline.store import rollups
from pipeline.store.query import load_rollups

TARGET_MS = 300.0
# The demo's first day is today - days + 1: 31 fills every day of the "30d" window (the 30
# closed days before today, as Plausible counts it), all of them rolled up.
DEMO_DAYS = 31
METRICS = ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"]
START_TIMEOUT_S = 60


def load() -> str:
    """The clock and the load averages (1, 5, 15 min), the figures `uptime` prints."""
    one, five, fifteen = os.getloadavg()
    return f"{datetime.now(UTC):%H:%M:%S} UTC, load average: {one:.2f}, {five:.2f}, {fifteen:.2f}"


@contextmanager
def moto(in_process: bool) -> Iterator[str]:
    """moto's HTTP server until the block ends; its endpoint URL."""
    if in_process:
        with EmbeddedAWS() as aws:
            yield aws.endpoint_url
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                requests.get(f"{url}/moto-api/", timeout=2)
                break
            except requests.RequestException:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def query_body() -> bytes:
    return json.dumps({"site_id": DEMO_SITE, "metrics": METRICS, "date_range": "30d"}).encode()


class StoreClock:
    """Time spent waiting on DynamoDB (moto here): botocore's `Endpoint._send`, the HTTP round
    trip of every call, timed while `watching`. Measurement only: calls pass through as they
    are. What remains of the server time is the API's own work (parsing, the query, JSON)."""

    def __init__(self) -> None:
        self.ms = 0.0
        self.calls: dict[str, list[float]] = {}  # operation → ms of each call

    @staticmethod
    def operation(request: Any) -> str:
        """The DynamoDB operation of a request ("Query"), from its X-Amz-Target header."""
        target = request.headers.get("X-Amz-Target", b"?")
        target = target.decode() if isinstance(target, bytes) else str(target)
        return target.rpartition(".")[2]

    def key(self, endpoint: Endpoint, request: Any) -> str:
        """What a call is counted under: its operation."""
        return self.operation(request)

    @contextmanager
    def watching(self) -> Iterator[None]:
        original = Endpoint._send

        def send(endpoint: Endpoint, request: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(endpoint, request)
            finally:
                spent = (time.perf_counter() - started) * 1000
                self.ms += spent
                self.calls.setdefault(self.key(endpoint, request), []).append(spent)

        with patch.object(Endpoint, "_send", send):
            yield


def timed(
    call: Callable[[], Any], runs: int, clock: StoreClock | None = None
) -> tuple[float, list[float], list[float], Any]:
    """(the first call's ms, the next `runs` calls' ms, the DynamoDB ms of each of those,
    the last answer)."""
    clock = clock or StoreClock()
    started = time.perf_counter()
    answer = call()
    first = (time.perf_counter() - started) * 1000
    times, store = [], []
    for _ in range(runs):
        clock.ms = 0.0
        started = time.perf_counter()
        answer = call()
        times.append((time.perf_counter() - started) * 1000)
        store.append(clock.ms)
    return first, times, store, answer


def expected_totals(settings: Settings, answer: dict[str, Any]) -> dict[str, float]:
    """The rollups' summary of the days the answer says it covered (what the dashboard shows)."""
    first, last = (date.fromisoformat(d[:10]) for d in answer["query"]["date_range"])
    days = load_rollups(DEMO_SITE, first, last, settings=settings)
    return rollups.summary(days).as_dict()


def check(answer: dict[str, Any], expected: dict[str, float]) -> list[str]:
    """The metrics whose answer is not the rollups' (rates in percent, Plausible's rounding)."""
    got = dict(zip(METRICS, answer["results"][0]["metrics"], strict=True))
    scale = {"bounce_rate": 100.0}
    wrong = []
    for name in METRICS:
        want = expected[name] * scale.get(name, 1.0)
        if abs(float(got[name]) - want) > (
            0.5 if name in ("bounce_rate", "visit_duration") else 0.01
        ):
            wrong.append(f"{name}: {got[name]} (rollups: {want:.2f})")
    return wrong


def row(name: str, first: float, times: list[float]) -> str:
    median = statistics.median(times)
    verdict = "met" if median <= TARGET_MS else "MISSED"
    return (
        f"| {name} | {first:.0f} ms | {median:.1f} ms | {max(times):.1f} ms | "
        f"{verdict} (≤ {TARGET_MS:.0f} ms) |"
    )


def run(runs: int = 30, in_process: bool = False) -> str:
    lines = [f"before: {load()}"]
    with moto(in_process) as endpoint:
        settings = Settings.for_prefix(f"bapi{uuid.uuid4().hex[:6]}", endpoint_url=endpoint)
        create_resources(settings)
        started = time.perf_counter()
        demo = load_demo(
            settings, now=datetime.now(UTC), days=DEMO_DAYS, progress=False, roll_up=True
        )
        lines.append(
            f"demo: {demo.stored} events stored, {len(demo.rolled_up)} days rolled up "
            f"in {time.perf_counter() - started:.1f} s"
        )
        key = create_key(settings, DEMO_SITE, "bench")
        body = query_body()
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        request = ApiRequest("POST", "/api/v2/query", "", headers, body)

        def server() -> Any:
            return handle(request, settings)

        clock = StoreClock()
        with clock.watching():
            first_s, server_times, store_times, response = timed(server, runs, clock)
        if response.status != 200:
            raise RuntimeError(f"the API answered {response.status}: {response.body[:200]!r}")
        answer = json.loads(response.body)
        wrong = check(answer, expected_totals(settings, answer))

        collector = start_collector(settings, api=lambda r: handle(r, settings))
        session = requests.Session()
        url = f"{collector.url}/api/v2/query"
        try:

            def http() -> Any:
                reply = session.post(url, data=body, headers=headers, timeout=30)
                reply.raise_for_status()
                return reply.json()

            first_h, http_times, _, over_http = timed(http, runs)
        finally:
            session.close()
            collector.shutdown()
    per_call = ", ".join(
        f"{name} {len(spent) / (runs + 1):.1f}× {statistics.median(spent):.1f} ms"
        for name, spent in sorted(clock.calls.items())
    )
    own = [total - store for total, store in zip(server_times, store_times, strict=True)]
    lines += [
        f"query: {json.dumps(answer['query'], separators=(',', ':'))}",
        f"answer: {dict(zip(METRICS, answer['results'][0]['metrics'], strict=True))}",
        "rollups agree" if not wrong else "DIFFERS from the rollups: " + "; ".join(wrong),
        "same answer over HTTP" if over_http == answer else "DIFFERENT answer over HTTP",
        "",
        f"| v2 aggregate, 30d, {len(METRICS)} metrics | first | median of {runs} | slowest | target |",
        "|---|---|---|---|---|",
        row("server time (`handle`)", first_s, server_times),
        row("end to end (HTTP, keep-alive)", first_h, http_times),
        "",
        f"of the server time, waiting on DynamoDB (moto): median {statistics.median(store_times):.1f} ms;"
        f" the API's own work: median {statistics.median(own):.1f} ms",
        f"DynamoDB calls per request (median ms each): {per_call}",
        "",
        *footer(in_process),
    ]
    return "\n".join(lines)


def footer(in_process: bool) -> list[str]:
    """The lines a bench report ends with: where moto ran, and the load after the runs."""
    return [
        f"moto: {'in this process (thread)' if in_process else 'its own process'}",
        f"after: {load()}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=30, help="timed requests after the first (≥ 20)"
    )
    parser.add_argument(
        "--in-process", action="store_true", help="moto in a thread of this process"
    )
    args = parser.parse_args()
    print(run(max(args.runs, 20), args.in_process))


if __name__ == "__main__":
    main()
