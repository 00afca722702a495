"""A filtered 30-day view, Parquet on S3 vs raw DynamoDB items, on moto's HTTP server (issue 16).

The same 30 UTC days of synthetic events (`bench.metrics_scale.synthetic`, made into the
records the consumer stores) are written twice into one moto server in its own process:
as DynamoDB items (`storage.event_item`, BatchWriteItem through boto3, timed) and as one
Parquet file per day (`archive.write_day` into moto's S3). Then a filtered view (a page
filter and a country filter) is computed with `load_events` + `metrics.select`/`summary`,
each run in a fresh child process (its peak RSS is the view's memory), from either source:

- parquet: the archive bucket holds the days, so `load_events` reads them from S3;
- dynamodb: the same settings with an empty archive bucket, so every day is a Query.

Both sides read as the dashboard does, `load_events(people_matching=filters)`: the people
who could pass the filters are found from a few columns, then only their events are made
into a frame (pipeline/store/narrow.py). The Parquet side also runs without that, every row
and column of the range, what a notebook's plain `load_events` costs.

Rows read is the frame's length; bytes read are HTTP response bytes counted by a small
reverse proxy between the child and moto (S3 bodies and headers vs DynamoDB responses),
plus DynamoDB's read units computed from the items by its billing rule (per Query page,
item bytes rounded up to 4 KB, half a unit each, eventually consistent). Wall times come
from runs without the proxy; client CPU is the child's user + system time for the view, the
figure least distorted by a busy machine (moto's own time is not in it).

moto's Query sorts every item of the table for each page it returns, so the DynamoDB side
slows with the table's size, not only with what it reads: `--dynamodb-events` keeps that
side smaller than the Parquet side and the report says how its figures scale.

Run: `python -m bench.archive_scale [events] [--dynamodb-events N [N ...]] [--runs 3]`
(as recorded: `python -m bench.archive_scale 1000000 --dynamodb-events 20000 50000`).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import requests

SITE = "example.com"
START = "2026-10-01"
END = "2026-10-31"  # exclusive: the 30 days `synthetic` spreads its events over
PAGE, COUNTRY = "/page/3", "DE"
RETENTION_DAYS = 400
START_TIMEOUT_S = 90
WRITE_THREADS = 4


def load() -> str:
    """The clock and the load averages (1, 5, 15 min), the figures `uptime` prints."""
    one, five, fifteen = os.getloadavg()
    return f"{datetime.now(UTC):%H:%M:%S} UTC, load average: {one:.2f}, {five:.2f}, {fifteen:.2f}"


# ---- the data set --------------------------------------------------------------------------

_CITIES = {"US": ("CA", "San Francisco"), "DE": ("BE", "Berlin"), "GB": ("ENG", "London")}
_OS = {"Desktop": ("Windows", "10"), "Mobile": ("Android", "14"), "Tablet": ("iOS", "17.5")}
_WIDTH = {"Desktop": 1920, "Mobile": 390, "Tablet": 820}
_SCREEN = {"Desktop": "Desktop", "Mobile": "Mobile", "Tablet": "Tablet"}
_REFERRERS = {
    "Direct / None": "",
    "Google": "www.google.com/",
    "Hacker News": "news.ycombinator.com/item",
    "Twitter": "t.co/x1y2z3",
    "Reddit": "www.reddit.com/r/programming/comments/abc",
    "GitHub": "github.com/someone/project",
}


def records(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """`n` records shaped as the consumer stores them (`storage.event_from_item` plus
    `request_id`), from `metrics_scale.synthetic`'s frame: its 30 days, Zipf-like pages and
    sources, a visitor per ~2.6 events a day, engagement events with time and scroll."""
    from bench.metrics_scale import synthetic

    frame = synthetic(n, seed)
    rng = np.random.default_rng(seed + 1)
    ts = (
        frame["ts"]
        .dt.tz_localize(None)
        .to_numpy()
        .astype("datetime64[ms]")
        .astype("int64")
        .tolist()
    )
    request_ids = [f"{a:016x}-{b:019x}" for a, b in rng.integers(0, 2**62, (n, 2)).tolist()]
    custom = rng.random(n) < 0.5
    # Stored visitor ids are 16 hex digits of a keyed hash: as random as that, not the
    # synthetic frame's counters (which compress far better than real ids would).
    hashed: dict[str, str] = {}
    visitors = [
        hashed.setdefault(v, hashlib.blake2b(v.encode(), digest_size=8).hexdigest())
        for v in frame["visitor"].astype(str).tolist()
    ]
    found = []
    columns = zip(
        ts,
        request_ids,
        frame["name"].astype(str).tolist(),
        frame["path"].tolist(),
        frame["referrer_source"].astype(str).tolist(),
        frame["country"].astype(str).tolist(),
        frame["device"].astype(str).tolist(),
        frame["browser"].astype(str).tolist(),
        visitors,
        frame["engagement_ms"].tolist(),
        frame["scroll_depth"].tolist(),
        custom.tolist(),
        strict=True,
    )
    for (
        stamp,
        rid,
        name,
        path,
        source,
        country,
        device,
        browser,
        visitor,
        ms,
        depth,
        pro,
    ) in columns:
        region, city = _CITIES.get(country, ("", ""))
        os_name, os_version = _OS[device]
        record = {
            "site": SITE,
            "ts": stamp,
            "request_id": rid,
            "hostname": SITE,
            "path": path,
            "url": f"https://{SITE}{path}",
            "utm_source": "",
            "utm_medium": "",
            "utm_campaign": "",
            "utm_term": "",
            "utm_content": "",
            "referrer": _REFERRERS.get(source, f"{source}/blog/post"),
            "referrer_source": source,
            "name": name,
            "props": {"plan": "pro" if pro else "free"} if name in ("Signup", "Download") else {},
            "browser": browser,
            "browser_version": "131.0",
            "os": os_name,
            "os_version": os_version,
            "device": device,
            "screen_width": _WIDTH[device],
            "screen": _SCREEN[device],
            "country": country,
            "region": region,
            "city": city,
            "lat": 52.5 if city else None,
            "lon": 13.4 if city else None,
            "visitor": visitor,
        }
        if name == "engagement":
            record["engagement_ms"] = int(ms)
            record["scroll_depth"] = int(depth)
        found.append(record)
    return found


def by_day(found: list[dict[str, Any]]) -> dict[date, list[dict[str, Any]]]:
    from pipeline.store.storage import day_of

    days: dict[date, list[dict[str, Any]]] = {}
    for record in found:
        days.setdefault(day_of(record["ts"]), []).append(record)
    return days


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it: names plus values (strings as UTF-8, numbers
    about one byte per two digits plus one)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        kind, raw = next(iter(value.items()))
        size += len(raw.encode()) if kind == "S" else len(raw) // 2 + 1
    return size


# ---- writing both sides --------------------------------------------------------------------


def write_dynamodb(settings: Any, found: list[dict[str, Any]]) -> dict[str, float]:
    """Every record as an event item, BatchWriteItem of 25 from a few threads."""
    from pipeline import aws
    from pipeline.store.storage import BatchWriter, event_item

    items = [event_item(record, RETENTION_DAYS) for record in found]
    client = aws.client("dynamodb", settings)
    chunks = [items[i : i + 2_500] for i in range(0, len(items), 2_500)]
    began = time.perf_counter()

    def write(chunk: list[dict[str, Any]]) -> int:
        writer = BatchWriter(client, settings.events_table)
        if writer.write(chunk):
            raise RuntimeError("moto refused some items")
        return writer.requests

    with ThreadPoolExecutor(WRITE_THREADS) as pool:
        requests_made = sum(pool.map(write, chunks))
    seconds = time.perf_counter() - began
    return {
        "items": len(items),
        "seconds": seconds,
        "items_per_s": len(items) / seconds,
        "requests": requests_made,
        "item_bytes_mean": statistics.fmean(item_bytes(item) for item in items),
    }


def write_parquet(settings: Any, days: dict[date, list[dict[str, Any]]]) -> dict[str, float]:
    from pipeline import aws
    from pipeline.store import archive

    s3 = aws.client("s3", settings)
    began = time.perf_counter()
    written = sum(
        archive.write_day(settings, SITE, day, day_records, s3=s3)
        for day, day_records in days.items()
    )
    seconds = time.perf_counter() - began
    return {"files": len(days), "bytes": written, "seconds": seconds}


# ---- moto and a counting proxy ------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def moto() -> Iterator[str]:
    """moto's HTTP server in its own process until the block ends; its endpoint URL."""
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


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.totals: dict[str, int] = {}

    def add(self, service: str, requests_made: int, size: int) -> None:
        with self.lock:
            self.totals[f"{service}_requests"] = (
                self.totals.get(f"{service}_requests", 0) + requests_made
            )
            self.totals[f"{service}_bytes"] = self.totals.get(f"{service}_bytes", 0) + size

    def take(self) -> dict[str, int]:
        with self.lock:
            found, self.totals = self.totals, {}
        return found


_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}


def proxy_handler(upstream: str, counter: Counter) -> type[BaseHTTPRequestHandler]:
    """Forwards every request to moto and counts each response's bytes (status line and
    headers included), DynamoDB's (an X-Amz-Target header) apart from S3's."""
    target = urlsplit(upstream)
    local = threading.local()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if getattr(local, "conn", None) is None:
                local.conn = http.client.HTTPConnection(target.hostname, target.port, timeout=600)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            try:
                local.conn.request(self.command, self.path, body=body, headers=headers)
                answer = local.conn.getresponse()
                data = answer.read()
            except (http.client.HTTPException, OSError):
                local.conn.close()
                local.conn = None
                raise
            service = "dynamodb" if "X-Amz-Target" in self.headers else "s3"
            self.send_response(answer.status, answer.reason)
            sent = [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP]
            for key, value in sent:
                if key.lower() != "content-length":
                    self.send_header(key, value)
            if self.command == "HEAD":
                self.send_header("Content-Length", answer.getheader("Content-Length") or "0")
            else:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            header_bytes = sum(len(k) + len(v) + 4 for k, v in sent) + 17
            counter.add(service, 1, header_bytes + len(data))

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward  # noqa: N815

    return Handler


@contextmanager
def counting_proxy(upstream: str) -> Iterator[tuple[str, Counter]]:
    counter = Counter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), proxy_handler(upstream, counter))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counter
    finally:
        server.shutdown()
        server.server_close()


# ---- one view, in a child process ---------------------------------------------------------


def read_units(items: list[dict[str, Any]]) -> float:
    """A Query page's eventually consistent read units: its item bytes rounded up to 4 KB, half
    a unit per 4 KB (attribute values as botocore parsed them: {"S": ...} or {"N": ...})."""
    size = sum(item_bytes(item) for item in items)
    return max(1, -(-size // 4096)) / 2


def peak_memory_mb() -> float:
    """This process's peak resident memory since its exec (VmHWM): `ru_maxrss` would carry
    the parent's peak over fork and exec, and the parent holds the whole data set."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def view(request_json: str) -> dict[str, Any]:
    """The filtered view as the dashboard computes it (every column, unless `columns`
    names fewer), and what it cost this process."""
    from pipeline import aws
    from pipeline.config import Settings
    from pipeline.stats import metrics
    from pipeline.store.query import load_events

    request = json.loads(request_json)
    settings = Settings(**request["settings"])
    baseline_mb = peak_memory_mb()
    dynamodb = aws.client("dynamodb", settings)
    units = {"rcu": 0.0, "pages": 0}
    lock = threading.Lock()  # load_events queries the days from a thread pool

    def count(parsed: dict[str, Any], **_: Any) -> None:
        found = read_units(parsed.get("Items", []))
        with lock:
            units["rcu"] += found
            units["pages"] += 1

    dynamodb.meta.events.register("after-call.dynamodb.Query", count)
    filters = [
        metrics.filter_from("path", "is", PAGE),
        metrics.filter_from("country", "is", COUNTRY),
    ]
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    frame = load_events(
        SITE,
        START,
        END,
        settings=settings,
        dynamodb=dynamodb,
        columns=request["columns"],
        filters=request.get("filters"),
        people_matching=filters if request.get("narrow") else None,
    )
    loaded = time.perf_counter()
    numbers = metrics.summary(metrics.select(frame, filters))
    done = time.perf_counter()
    used = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_s": used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime,
        "rows": len(frame),
        "load_s": loaded - began,
        "metrics_s": done - loaded,
        "total_s": done - began,
        "peak_rss_mb": peak_memory_mb(),
        "baseline_rss_mb": baseline_mb,
        "frame_mb": frame.memory_usage(deep=True).sum() / 1e6,
        "query_pages": units["pages"],
        "read_units": units["rcu"],
        "summary": numbers.as_dict(),
    }


def run_view(
    settings: Any, endpoint: str, columns: list[str] | None, narrow: bool = True
) -> dict[str, Any]:
    from dataclasses import asdict

    request = {
        "settings": asdict(replace(settings, endpoint_url=endpoint)),
        "columns": columns,
        "narrow": narrow,
    }
    command = [sys.executable, "-m", "bench.archive_scale", "--child", json.dumps(request)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode:
        raise RuntimeError(f"the view failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the whole benchmark ------------------------------------------------------------------


def setup(endpoint: str, prefix: str) -> Any:
    from pipeline import aws
    from pipeline.config import Settings
    from pipeline.resources import create_resources

    settings = Settings.for_prefix(prefix, endpoint_url=endpoint)
    create_resources(settings)
    s3 = aws.client("s3", settings)
    for bucket in (settings.archive_bucket, f"{settings.archive_bucket}-empty"):
        with suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket)
    return settings


def measure(
    label: str,
    reader: Any,
    endpoints: tuple[str, str],
    counter: Counter,
    runs: int,
    columns: list[str] | None,
    narrow: bool = True,
) -> dict[str, Any]:
    """One metered run through the proxy (bytes), then `runs` timed runs straight to moto."""
    endpoint, proxied = endpoints
    counter.take()
    metered = run_view(reader, proxied, columns, narrow)
    metered.update(counter.take())
    print(f"{label}: metered run {json.dumps(metered)}", "|", load(), flush=True)
    timed = []
    for _ in range(runs):
        timed.append(run_view(reader, endpoint, columns, narrow))
        print(f"{label}: run {json.dumps(timed[-1])}", "|", load(), flush=True)
    return {"metered": metered, "runs": timed}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", type=int, nargs="?", default=1_000_000)
    parser.add_argument(
        "--dynamodb-events", type=int, nargs="+", default=None, help="sizes (default: events)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(view(args.child)))
        return
    small = set(args.dynamodb_events or [args.events])
    print(f"# issue 16: filtered 30-day view ({PAGE!r} and {COUNTRY!r}), Parquet vs DynamoDB")
    print("start:", load(), flush=True)
    results: dict[str, Any] = {}
    with moto() as endpoint, counting_proxy(endpoint) as (proxied, counter):
        ends = (endpoint, proxied)
        for n in sorted({args.events} | small, reverse=True):
            began = time.perf_counter()
            found = records(n)
            print(f"{n:,} records made in {time.perf_counter() - began:.1f} s", flush=True)
            settings = setup(endpoint, f"bench{n}")
            wrote = write_parquet(settings, by_day(found))
            print(f"parquet {n:,}: wrote {json.dumps(wrote)}", "|", load(), flush=True)
            if n in small:
                wrote_items = write_dynamodb(settings, found)
                print(f"dynamodb {n:,}: wrote {json.dumps(wrote_items)}", "|", load(), flush=True)
            del found
            variants = [
                # What the dashboard does: the people who could match, then their events.
                ("parquet, narrowed to people (the dashboard)", None, True),
                # Every row of the range, every column (a notebook's `load_events`).
                ("parquet, every row", None, False),
            ]
            for label, columns, narrow in variants[: 2 if n == args.events else 1]:
                key = f"{label} @ {n:,}"
                results[key] = {"events": n, "wrote": wrote, "source": "s3"}
                results[key] |= measure(key, settings, ends, counter, args.runs, columns, narrow)
            if n in small:
                empty = replace(settings, archive_bucket=f"{settings.archive_bucket}-empty")
                key = f"dynamodb @ {n:,}"
                results[key] = {"events": n, "wrote": wrote_items, "source": "dynamodb"}
                results[key] |= measure(key, empty, ends, counter, args.runs, None)
    report(results)
    print("end:", load())


def report(results: dict[str, Any]) -> None:
    print(
        "\n| source | events | rows read | bytes read | read units | wall (median) | load_events "
        "| select+summary | client CPU | peak RSS (median) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key, found in results.items():
        runs, metered = found["runs"], found["metered"]
        keys = ("total_s", "load_s", "metrics_s", "cpu_s", "peak_rss_mb")
        med = {k: statistics.median(r[k] for r in runs) for k in keys}
        read = metered.get(f"{found['source']}_bytes", 0)
        print(
            f"| {key} | {found['events']:,} | {metered['rows']:,} | {read / 1e6:,.2f} MB | "
            f"{metered['read_units']:,.0f} | {med['total_s']:.2f} s | {med['load_s']:.2f} s | "
            f"{med['metrics_s']:.2f} s | {med['cpu_s']:.2f} s | {med['peak_rss_mb']:.0f} MB |"
        )
    project(results)
    for key, found in results.items():
        print(
            key,
            "summary:",
            found["runs"][0]["summary"] if found["runs"] else found["metered"]["summary"],
        )


def project(results: dict[str, Any]) -> None:
    """DynamoDB's figures at the largest Parquet size, from the measured DynamoDB sizes: bytes
    and read units per event (the same items, so exactly linear), client CPU and memory above
    the imports by a line through the two largest sizes (one size: through zero)."""
    target = max(found["events"] for found in results.values())
    measured = sorted(
        (found["events"], found) for key, found in results.items() if key.startswith("dynamodb")
    )
    if not measured or measured[-1][0] == target:
        return
    n, largest = measured[-1]
    scale = target / n

    def median(found: dict[str, Any], key: str) -> float:
        return statistics.median(r[key] for r in found["runs"] or [found["metered"]])

    def line(key: str, base: str | None = None) -> float:
        def at(found: dict[str, Any]) -> float:
            return median(found, key) - (median(found, base) if base else 0.0)

        if len(measured) == 1:
            return at(largest) * scale
        (n0, first), (n1, last) = measured[-2], measured[-1]
        slope = (at(last) - at(first)) / (n1 - n0)
        return at(last) + slope * (target - n1)

    imports = median(largest, "baseline_rss_mb")
    sizes = ", ".join(f"{m:,}" for m, _ in measured)
    print(
        f"\nDynamoDB projected to {target:,} events from {sizes}: "
        f"{largest['metered']['dynamodb_bytes'] * scale / 1e6:,.0f} MB read, "
        f"{largest['metered']['read_units'] * scale:,.0f} read units, "
        f"client CPU {line('cpu_s'):,.0f} s, "
        f"peak RSS {imports + line('peak_rss_mb', 'baseline_rss_mb'):,.0f} MB "
        f"(imports {imports:.0f} MB)"
    )


if __name__ == "__main__":
    main()
